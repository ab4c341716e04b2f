"""Demo NWB sessions from a documented generative model with known ground truth.

Every later analysis has something to recover: the lapse model and its parameters
(psychometric), the latent dynamics and their lag to behaviour (decoding), which latent
drives which brain region and which body part (oi-VAE).

Notes
-----
Per session (seeded from ``(seed, index)``):

Latents. ``K = R + 2`` Ornstein-Uhlenbeck processes on a 10 ms grid,
``z_k(t + dt) = a_k z_k(t) + sqrt(1 - a_k^2) e``, ``a_k = exp(-dt / tau_k)``,
``tau_k ~ U(0.15, 0.6)`` s, unit stationary variance. Latent ``r < R`` is private to
region ``r``, latent ``R`` is shared by every region, latent ``R + 1`` drives behaviour
only (``latent_region_map`` in the ground truth).

Spikes. ``R`` in {2, 3, 4} regions, 60-130 units in all. Unit ``i`` in region ``r``:
``log rate_i(t) = log b_i + sum_k C_ik z_k(t)``, ``b_i`` lognormal around 5 Hz (clipped to
0.5-40 Hz), ``C_ik ~ N(0, 0.45^2)`` on the region's latents and 0 elsewhere; Poisson
counts per 10 ms step, spike times uniform within the step.

Behaviour lags the latents by ``lag_s ~ U(0.05, 0.15)`` s: ``b(t) = D z(t - lag) + noise``.
``wheel_velocity`` (rad/s) reads latents 0, R and R + 1; pose keypoints (pixels, 60 Hz
camera) ``nose`` reads R and R + 1, ``left_forepaw`` latent 0, ``right_forepaw`` latent 1.
About 1 % of keypoint samples are lost (NaN) in runs of 5-30 frames, as trackers do.

Task. A 2AFC task in the spirit of Pisupati et al. (2021, eLife, "Lapses in perceptual
decisions reflect exploration"): signed evidence on 8 levels (event-rate difference from
the category boundary, Hz), four conditions (auditory, visual, multisensory matched,
multisensory neutral) with their own sensory noise ``sigma``, reward blocks of 60-100
trials where one side's reward rises from 2 to 3 uL. Choices come from one lapse model per
session, cycling with the index through ``exploration``, ``inattention``,
``psychometric`` (Wichmann & Hill 2001) and ``fixed_error``; the equations are those of
:mod:`neuroseq.psychometric.models`. 2 % of trials get no response (choice -1).

Ground truth travels in NWB ``scratch``: ``neuroseq_ground_truth`` (JSON: lapse model and
parameters per condition, lag, latent-to-region and latent-to-behaviour maps, groups) and
``neuroseq_true_latent`` (the latent, ``latent_dt_s`` apart from t = 0).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pynwb
from pynwb.behavior import BehavioralTimeSeries, Position, SpatialSeries
from pynwb.file import Subject
from scipy.signal import lfilter

from neuroseq.io.output import publish
from neuroseq.psychometric.models import MODELS

DT = 0.01
REGIONS = ("MOs", "VISp", "CA1", "STR")
LEVELS = np.array([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])
CONDITIONS = ("auditory", "visual", "multisensory_matched", "multisensory_neutral")
BASE_SIGMA = {
    "auditory": 2.0,
    "visual": 2.6,
    "multisensory_matched": 1.3,
    "multisensory_neutral": 2.0,
}
LAPSE_MODELS = ("exploration", "inattention", "psychometric", "fixed_error")
REWARD_CYCLE = ((2.0, 2.0), (2.0, 3.0), (2.0, 2.0), (3.0, 2.0))
BEHAVIOR_GROUPS = {
    "wheel_velocity": "wheel",
    "nose": "head",
    "left_forepaw": "left_forelimb",
    "right_forepaw": "right_forelimb",
}


def simulate_demo(
    output_dir: str | Path, *, n_sessions: int = 3, duration_s: float = 720.0, seed: int = 0
) -> list[Path]:
    """Write ``demo_01.nwb`` ... ``demo_{n:02d}.nwb`` into ``output_dir``; return the paths."""
    output_dir = Path(output_dir)
    return [
        simulate_session(
            output_dir / f"demo_{i + 1:02d}.nwb", index=i, duration_s=duration_s, seed=seed
        )
        for i in range(n_sessions)
    ]


def simulate_session(
    path: str | Path, *, index: int = 0, duration_s: float = 720.0, seed: int = 0
) -> Path:
    """Simulate one session and write it as NWB (atomically); return the path."""
    if duration_s < 30:
        raise ValueError(f"duration_s must be at least 30 s, got {duration_s}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    n_steps = round(duration_s / DT)
    n_regions = 2 + index % 3
    n_latents = n_regions + 2
    latent = _latents(rng, n_steps, n_latents)
    region_map = np.zeros((n_latents, n_regions), dtype=int)
    region_map[np.arange(n_regions), np.arange(n_regions)] = 1
    region_map[n_regions] = 1  # the shared latent

    units = _units(rng, latent, region_map)
    lag_s = float(np.round(rng.uniform(0.05, 0.15), 2))
    behavior, behavior_map = _behavior(rng, latent, n_regions, round(lag_s / DT))
    model = LAPSE_MODELS[index % len(LAPSE_MODELS)]
    trials, lapse_params = _trials(rng, duration_s, model)

    truth = {
        "generator": "neuroseq.simulate/1",
        "index": index,
        "seed": seed,
        "duration_s": duration_s,
        "lapse_model": model,
        "lapse_params": lapse_params,
        "lag_s": lag_s,
        "latent_dt_s": DT,
        "regions": list(REGIONS[:n_regions]),
        "latent_region_map": region_map.tolist(),
        "latent_behavior_map": {k: v.tolist() for k, v in behavior_map.items()},
        "behavior_groups": BEHAVIOR_GROUPS,
        "n_units": len(units["times"]),
    }
    nwb = _nwbfile(index, seed, units, behavior, trials, truth, latent)
    return _write(nwb, Path(path))


def _latents(rng: np.random.Generator, n_steps: int, n_latents: int) -> np.ndarray:
    tau = rng.uniform(0.15, 0.6, n_latents)
    a = np.exp(-DT / tau)
    noise = rng.standard_normal((n_steps, n_latents))
    z = np.empty_like(noise)
    for k in range(n_latents):  # one linear filter per latent, not a loop over time
        start = [a[k] * rng.standard_normal()]  # z(-dt) drawn from the stationary law
        z[:, k] = lfilter([np.sqrt(1 - a[k] ** 2)], [1.0, -a[k]], noise[:, k], zi=start)[0]
    return z


def _units(rng: np.random.Generator, latent: np.ndarray, region_map: np.ndarray) -> dict:
    n_latents, n_regions = region_map.shape
    n_units = int(rng.integers(60, 131))
    per_region = np.full(n_regions, 12)
    extra = rng.multinomial(n_units - per_region.sum(), np.ones(n_regions) / n_regions)
    region = np.repeat(np.arange(n_regions), per_region + extra)
    base = np.clip(np.exp(rng.normal(np.log(5.0), 0.8, n_units)), 0.5, 40.0)
    loading = rng.normal(0.0, 0.45, (n_units, n_latents)) * region_map[:, region].T
    log_rate = np.log(base) + latent @ loading.T
    rate = np.minimum(np.exp(log_rate), 200.0)
    counts = rng.poisson(rate * DT)
    times = []
    for i in range(n_units):  # one vectorised draw per unit
        steps = np.repeat(np.arange(counts.shape[0]), counts[:, i])
        times.append(np.sort((steps + rng.random(steps.size)) * DT))
    return {"times": times, "region": region, "loading": loading, "base_rate": base}


def _behavior(
    rng: np.random.Generator, latent: np.ndarray, n_regions: int, lag: int
) -> tuple[dict, dict]:
    n_steps, n_latents = latent.shape
    lagged = np.vstack([np.zeros((lag, n_latents)), latent[: n_steps - lag]])
    drivers = {
        "wheel_velocity": [0, n_regions, n_regions + 1],
        "nose": [n_regions, n_regions + 1],
        "left_forepaw": [0],
        "right_forepaw": [1],
    }
    t_latent = np.arange(n_steps) * DT
    out, maps = {}, {}
    for name, ks in drivers.items():
        maps[name] = np.isin(np.arange(n_latents), ks).astype(int)
        cols = 1 if name == "wheel_velocity" else 2
        weights = rng.normal(0.0, 1.0, (len(ks), cols))
        signal = lagged[:, ks] @ weights
        if name == "wheel_velocity":
            t = np.arange(0.0, t_latent[-1], 0.01)  # 100 Hz wheel encoder
            values = np.interp(t, t_latent, signal[:, 0]) * 2.0 + rng.normal(0, 0.1, t.size)
        else:
            t = np.arange(0.0, t_latent[-1], 1 / 60)  # 60 Hz camera
            centre = rng.uniform(100, 400, 2)
            values = np.column_stack([np.interp(t, t_latent, signal[:, j]) for j in range(2)])
            values = centre + 25.0 * values + rng.normal(0, 1.0, values.shape)
            values[_tracking_lost(rng, t.size)] = np.nan
        out[name] = (t, values)
    return out, maps


def _tracking_lost(rng: np.random.Generator, n: int) -> np.ndarray:
    lost = np.zeros(n, dtype=bool)
    runs = max(1, int(0.01 * n / 17))
    starts = rng.integers(0, n - 30, runs)
    for start, length in zip(starts, rng.integers(5, 31, runs), strict=True):
        lost[start : start + length] = True
    return lost


def _trials(rng: np.random.Generator, duration_s: float, model: str) -> tuple[dict, dict]:
    starts, t = [], 1.0
    durations = []
    while True:
        response = 0.2 + rng.uniform(0.3, 0.8)
        if t + response + 0.2 > duration_s - 3.0:
            break
        starts.append(t)
        durations.append(response)
        t += response + 0.2 + rng.uniform(0.3, 0.8)
    n = len(starts)
    start = np.array(starts)
    response_time = start + np.array(durations)
    stimulus = rng.choice(LEVELS, n)
    condition = rng.choice(CONDITIONS, n)
    reward_left, reward_right = np.empty(n), np.empty(n)
    i = block = 0
    while i < n:
        size = int(rng.integers(60, 101))
        reward_left[i : i + size], reward_right[i : i + size] = REWARD_CYCLE[block % 4]
        i, block = i + size, block + 1

    factor = rng.uniform(0.85, 1.15)
    shared = {
        "p_bias": rng.uniform(0.3, 0.7),
        "beta": rng.uniform(0.8, 1.4),
        "epsilon": rng.uniform(0.03, 0.12),
    }
    params = {}
    for cname in CONDITIONS:
        theta = {
            "mu": rng.normal(0.0, 0.3),
            "sigma": BASE_SIGMA[cname] * factor,
            "gamma": rng.uniform(0.02, 0.15),
            "lambda": rng.uniform(0.02, 0.15),
            "p_attend": rng.uniform(0.75, 0.95),
            **shared,
        }
        own = {k: float(theta[k]) for k in MODELS[model].free}
        own.update(MODELS[model].derived(own, *REWARD_CYCLE[0]))
        params[cname] = {k: float(v) for k, v in own.items()}
    p_right = np.empty(n)
    for cname in CONDITIONS:
        sel = condition == cname
        p_right[sel] = MODELS[model].p_right(
            params[cname], stimulus[sel], reward_left[sel], reward_right[sel]
        )[0]
    choice = (rng.random(n) < p_right).astype(np.int64)
    choice[rng.random(n) < 0.02] = -1
    trials = {
        "start_time": start,
        "stop_time": response_time + 0.2,
        "stim_on_time": start + 0.2,
        "response_time": response_time,
        "stimulus": stimulus,
        "choice": choice,
        "condition": condition,
        "reward_left": reward_left,
        "reward_right": reward_right,
        "p_right": p_right,
    }
    return trials, params


def _nwbfile(index, seed, units, behavior, trials, truth, latent) -> pynwb.NWBFile:
    nwb = pynwb.NWBFile(
        session_description=f"neuroseq demo session {index + 1}: simulated 2AFC task with "
        f"{truth['lapse_model']} lapses (see neuroseq.simulate)",
        identifier=f"neuroseq-demo-{index + 1:02d}-{seed}",
        session_start_time=datetime(2026, 1, 5, 10, tzinfo=UTC) + timedelta(days=index),
        lab="neuroseq demo",
        subject=Subject(
            subject_id=f"demo-mouse-{index + 1:02d}", species="Mus musculus", age="P90D", sex="U"
        ),
    )
    device = nwb.create_device("probe", description="simulated silicon probe")
    regions = truth["regions"]
    groups = [
        nwb.create_electrode_group(r, description=f"shank in {r}", location=r, device=device)
        for r in regions
    ]
    for i, r in enumerate(units["region"]):
        nwb.add_electrode(group=groups[r], location=regions[r], x=float(r), y=float(i), z=0.0)
    for i, (times, r) in enumerate(zip(units["times"], units["region"], strict=True)):
        nwb.add_unit(spike_times=times, electrodes=[i], electrode_group=groups[r])

    for name, description in [
        ("stimulus", "signed evidence, Hz (+ = rightward)"),
        ("choice", "1 right, 0 left, -1 no response"),
        ("condition", "sensory condition"),
        ("reward_left", "reward for a correct left choice, uL"),
        ("reward_right", "reward for a correct right choice, uL"),
        ("stim_on_time", "stimulus onset, s"),
        ("response_time", "response, s"),
        ("p_right", "the generative model's p(right) on this trial"),
    ]:
        nwb.add_trial_column(name=name, description=description)
    for k in range(len(trials["start_time"])):
        nwb.add_trial(**{key: values[k] for key, values in trials.items()})

    module = nwb.create_processing_module("behavior", "simulated behaviour")
    wheel = behavior["wheel_velocity"][1]
    module.add(
        BehavioralTimeSeries(
            name="BehavioralTimeSeries",
            time_series=[
                pynwb.TimeSeries(
                    name="wheel_velocity",
                    data=wheel,
                    unit="rad/s",
                    rate=100.0,
                    starting_time=0.0,
                    description="wheel velocity",
                )
            ],
        )
    )
    module.add(
        Position(
            name="Position",
            spatial_series=[
                SpatialSeries(
                    name=name,
                    data=behavior[name][1],
                    timestamps=behavior[name][0],
                    reference_frame="camera pixels, origin top-left",
                    unit="pixels",
                    description=f"{name} keypoint",
                )
                for name in ("nose", "left_forepaw", "right_forepaw")
            ],
        )
    )

    nwb.add_scratch(
        json.dumps(truth),
        name="neuroseq_ground_truth",
        description="generative model and parameters of this session (JSON)",
    )
    nwb.add_scratch(
        latent.astype(np.float32),
        name="neuroseq_true_latent",
        description=f"latent state (time x latent), {DT} s apart from t = 0",
    )
    return nwb


def _write(nwb: pynwb.NWBFile, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.nwb", dir=path.parent)
    os.close(fd)
    try:
        with pynwb.NWBHDF5IO(tmp, "w") as io:
            io.write(nwb)
        publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
