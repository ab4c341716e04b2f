"""Demo NWB sessions from a documented generative model with known ground truth.

Every later analysis has something to recover: the lapse model and its parameters
(psychometric fits), the latent dynamics and their lag to behaviour (decoders), and which
latent drives which brain region and which body part (oi-VAE latent-to-region maps).

Notes
-----
Each session draws everything from one generator seeded with
``np.random.SeedSequence([seed, index])``. ``R = 2 + index % 3`` regions, named in order
from ``MOs, VISp, CA1, STR``; the lapse model cycles with ``index`` through
``exploration, inattention, psychometric, fixed_error``.

**Latents.** ``K = R + 2`` Ornstein-Uhlenbeck processes on a grid ``dt = 0.01`` s, each an
AR(1) recursion with unit stationary variance,

.. math:: z_k(t + dt) = a_k z_k(t) + \\sqrt{1 - a_k^2}\\,\\varepsilon_k(t),
          \\quad a_k = e^{-dt/\\tau_k}, \\quad \\tau_k \\sim U(0.15, 0.6)\\ \\mathrm{s},

started from the stationary law. The latent-to-region map ``M`` (``K x R``, 0/1): latent
``r < R`` is private to region ``r``, latent ``R`` is shared by all regions, latent
``R + 1`` drives behaviour only.

**Spikes.** ``N ~ U{60, ..., 129}`` units, at least 12 per region. Unit ``i`` in region
``r`` fires as an inhomogeneous Poisson process with

.. math:: \\log \\lambda_i(t) = \\log b_i + \\sum_k C_{ik} z_k(t),
          \\quad C_{ik} \\sim N(0, 0.45^2)\\ \\text{if}\\ M_{kr} = 1\\ \\text{else}\\ 0,

``b_i`` lognormal with median 5 Hz (clipped to 0.5-40 Hz), ``lambda_i`` clipped at 200 Hz.
Counts are Poisson per ``dt`` step; spike times are uniform within the step.

**Behaviour** lags the latents by ``lag_s ~ U(0.05, 0.15)`` s (rounded to ``dt``):

.. math:: b(t) = D z(t - \\mathrm{lag}) + \\eta(t).

``wheel_velocity`` (rad/s, 100 Hz) reads latents ``0, R, R + 1`` with weights
``N(0, 2^2)`` and noise ``N(0, 0.1^2)``. Pose keypoints (pixels, 60 Hz camera), two
columns (x, y) each: ``position = centre + 25 (D z) + N(0, 1)`` with ``D ~ N(0, 1)``;
``nose`` reads ``R, R + 1``, ``left_forepaw`` latent 0, ``right_forepaw`` latent 1. About
1 % of keypoint samples are lost (NaN) in runs of 5-30 frames, as trackers lose the animal.

**Task.** A two-alternative forced choice task after Pisupati et al. (2021): trials back to
back from 1 s to ``duration_s - 3`` s; stimulus onset 0.2 s after the start, response
0.3-0.8 s after onset, stop 0.2 s after the response, inter-trial interval 0.3-0.8 s.
Signed evidence ``s`` (event-rate difference from the category boundary, Hz, + = right) is
uniform on ``+-0.5, +-1.5, +-2.5, +-3.5``; the condition is uniform on ``auditory, visual,
multisensory_matched, multisensory_neutral`` with sensory noise ``sigma_c`` (2.0, 2.6, 1.3,
2.0, times a session factor ``U(0.85, 1.15)``) and bias ``mu_c ~ N(0, 0.3^2)``. Rewards
come in blocks of 60-100 trials cycling through ``(r_L, r_R)`` = (2, 2), (2, 3), (2, 2),
(3, 2) uL. With ``Phi`` the standard normal CDF, p(right | s) is

- ``psychometric`` (Wichmann & Hill 2001):
  ``gamma + (1 - gamma - lambda) Phi((s - mu) / sigma)``, ``gamma, lambda ~ U(0.02, 0.15)``;
- ``inattention``: ``p_attend Phi((s - mu) / sigma) + (1 - p_attend) p_bias``,
  ``p_attend ~ U(0.75, 0.95)`` per condition, ``p_bias ~ U(0.3, 0.7)`` shared, so
  ``gamma = p_bias (1 - p_attend)``, ``lambda = (1 - p_bias)(1 - p_attend)``;
- ``exploration``: ``E_x[1 / (1 + exp(-beta (Q_R - Q_L)))]`` with ``x ~ N(s, sigma^2)``,
  ``Q_R = Phi(x / sigma) r_R``, ``Q_L = (1 - Phi(x / sigma)) r_L``, ``beta ~ U(0.8, 1.4)`` per uL
  shared; ``x`` is integrated out by Gauss-Hermite quadrature. Asymptotically
  ``gamma = 1 / (1 + exp(beta r_L))``, ``lambda = 1 / (1 + exp(beta r_R))``, about
  0.06-0.17 at 2 uL, so the lapses are visible and fall on the poorer side (reported at the
  baseline rewards 2, 2 uL);
- ``fixed_error``: ``epsilon + (1 - 2 epsilon) Phi((s - mu) / sigma)``,
  ``epsilon ~ U(0.03, 0.12)`` shared, ``gamma = lambda = epsilon``.

2 % of trials, chosen at random, get no response (choice -1).

**Ground truth** travels in NWB ``scratch``: ``neuroseq_ground_truth`` (JSON text) and
``neuroseq_true_latent`` (``n_steps x K`` float32, ``latent_dt_s`` apart from t = 0).

References
----------
.. [1] Pisupati S, Chartarifsky-Lynn L, Khanal A, Churchland AK (2021). Lapses in
   perceptual decisions reflect exploration. eLife 10:e55490.
.. [2] Wichmann FA, Hill NJ (2001). The psychometric function: I. Fitting, sampling, and
   goodness of fit. Perception & Psychophysics 63(8):1293-1313.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pynwb
from hdmf.common import VectorData
from numpy.polynomial.hermite_e import hermegauss
from pynwb.behavior import BehavioralTimeSeries, Position, SpatialSeries
from pynwb.epoch import TimeIntervals
from pynwb.file import Subject
from scipy.signal import lfilter
from scipy.special import expit, ndtr

__all__ = ["LAPSE_MODELS", "LEVELS", "simulate_demo", "simulate_session"]

GENERATOR = "neuroseq.simulate/1"
DT = 0.01  # latent grid, s
WHEEL_RATE = 100.0  # Hz
CAMERA_RATE = 60.0  # Hz
MAX_LAG_STEPS = 15  # lag_s <= 0.15 s
REGIONS = ("MOs", "VISp", "CA1", "STR")
LEVELS = np.array([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])
CONDITIONS = ("auditory", "visual", "multisensory_matched", "multisensory_neutral")
BASE_SIGMA = np.array([2.0, 2.6, 1.3, 2.0])  # in the order of CONDITIONS
LAPSE_MODELS = ("exploration", "inattention", "psychometric", "fixed_error")
REWARD_CYCLE = np.array([(2.0, 2.0), (2.0, 3.0), (2.0, 2.0), (3.0, 2.0)])
NO_RESPONSE_FRACTION = 0.02
KEYPOINTS = ("nose", "left_forepaw", "right_forepaw")
BEHAVIOR_GROUPS = {
    "wheel_velocity": "wheel",
    "nose": "head",
    "left_forepaw": "left_forelimb",
    "right_forepaw": "right_forelimb",
}
# Probabilists' Hermite nodes: E[g(Z)] = sum_j w_j g(node_j) for Z ~ N(0, 1).
_NODES, _WEIGHTS = hermegauss(40)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def simulate_demo(
    output_dir: str | os.PathLike[str],
    *,
    n_sessions: int = 3,
    duration_s: float = 720.0,
    seed: int = 0,
) -> list[Path]:
    """Write the demo sessions ``demo_01.nwb`` ... ``demo_{n:02d}.nwb``.

    Parameters
    ----------
    output_dir : str or path-like
        Directory to write into (created if missing).
    n_sessions : int, default 3
        Number of sessions; session ``i`` (0-based) uses lapse model
        ``LAPSE_MODELS[i % 4]`` and the seed ``SeedSequence([seed, i])``.
    duration_s : float, default 720.0
        Length of each session in seconds (at least 30).
    seed : int, default 0
        Base seed.

    Returns
    -------
    list of pathlib.Path
        The files written, in session order.

    Notes
    -----
    The generative model is documented in :mod:`neuroseq.simulate`.
    """
    if isinstance(n_sessions, bool) or not isinstance(n_sessions, int | np.integer):
        raise TypeError(f"n_sessions must be an int, got {type(n_sessions).__name__}")
    if n_sessions < 1:
        raise ValueError(f"n_sessions must be at least 1, got {n_sessions}")
    output_dir = Path(output_dir)
    return [
        simulate_session(
            output_dir / f"demo_{i + 1:02d}.nwb", index=i, duration_s=duration_s, seed=seed
        )
        for i in range(n_sessions)
    ]


def simulate_session(
    path: str | os.PathLike[str],
    *,
    index: int = 0,
    duration_s: float = 720.0,
    seed: int = 0,
) -> Path:
    """Simulate one demo session and write it to ``path`` as NWB, atomically.

    Parameters
    ----------
    path : str or path-like
        Output NWB file; its directory is created if missing.
    index : int, default 0
        Session index (0-based): picks the number of regions (``2 + index % 3``), the
        lapse model (``LAPSE_MODELS[index % 4]``) and, with ``seed``, the random stream.
    duration_s : float, default 720.0
        Session length in seconds (at least 30).
    seed : int, default 0
        Base seed; the session's generator is seeded with ``SeedSequence([seed, index])``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    The generative model is documented in :mod:`neuroseq.simulate`.
    """
    for name, value in (("index", index), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    duration_s = float(duration_s)
    if not np.isfinite(duration_s) or duration_s < 30.0:
        raise ValueError(f"duration_s must be a finite number >= 30 s, got {duration_s}")
    index, seed = int(index), int(seed)

    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    n_steps = round(duration_s / DT)
    n_regions = 2 + index % 3
    n_latents = n_regions + 2
    # MAX_LAG_STEPS steps before t = 0 so that the lagged behaviour at t < lag is defined.
    latent_ext = _latents(rng, n_steps + MAX_LAG_STEPS, n_latents)
    latent = latent_ext[MAX_LAG_STEPS:]
    region_map = np.zeros((n_latents, n_regions), dtype=int)
    region_map[np.arange(n_regions), np.arange(n_regions)] = 1
    region_map[n_regions] = 1  # the shared latent

    units = _units(rng, latent, region_map)
    lag_s = round(float(rng.uniform(0.05, 0.15)), 2)
    lag = round(lag_s / DT)
    behavior, behavior_map = _behavior(rng, latent_ext, n_steps, n_regions, lag)
    model = LAPSE_MODELS[index % len(LAPSE_MODELS)]
    trials, lapse_params = _trials(rng, duration_s, model)

    truth = {
        "generator": GENERATOR,
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
        "behavior_groups": dict(BEHAVIOR_GROUPS),
        "n_units": len(units["region"]),
    }
    nwb = _nwbfile(index, seed, units, behavior, trials, truth, latent)
    return _write(nwb, Path(path))


def _latents(rng: np.random.Generator, n_steps: int, n_latents: int) -> np.ndarray:
    tau = rng.uniform(0.15, 0.6, n_latents)
    a = np.exp(-DT / tau)
    noise = rng.standard_normal((n_steps, n_latents))
    z0 = rng.standard_normal(n_latents)  # z(-dt) from the stationary law
    z = np.empty_like(noise)
    for k in range(n_latents):  # one linear filter per latent; the recursion is in lfilter
        z[:, k] = lfilter(
            [np.sqrt(1.0 - a[k] ** 2)], [1.0, -a[k]], noise[:, k], zi=[a[k] * z0[k]]
        )[0]
    return z


def _units(rng: np.random.Generator, latent: np.ndarray, region_map: np.ndarray) -> dict:
    n_steps = latent.shape[0]
    n_latents, n_regions = region_map.shape
    n_units = int(rng.integers(60, 130))
    extra = rng.multinomial(n_units - 12 * n_regions, np.full(n_regions, 1.0 / n_regions))
    region = np.repeat(np.arange(n_regions), 12 + extra)
    base = np.clip(np.exp(rng.normal(np.log(5.0), 0.8, n_units)), 0.5, 40.0)
    loading = rng.normal(0.0, 0.45, (n_units, n_latents)) * region_map[:, region].T
    rate = np.minimum(base * np.exp(latent @ loading.T), 200.0)  # (time, unit), Hz
    counts = rng.poisson(rate.T * DT)  # (unit, time)
    flat = np.repeat(np.arange(counts.size), counts.ravel())
    unit, step = np.divmod(flat, n_steps)
    times = (step + rng.random(flat.size)) * DT
    times = times[np.lexsort((times, unit))]  # sorted per unit; units stay in order
    return {
        "spike_times": times,
        "spike_index": np.cumsum(counts.sum(axis=1)),
        "region": region,
        "loading": loading,
        "base_rate": base,
    }


def _behavior(
    rng: np.random.Generator, latent_ext: np.ndarray, n_steps: int, n_regions: int, lag: int
) -> tuple[dict, dict]:
    n_latents = latent_ext.shape[1]
    # lagged[t] = z(t - lag) on the grid from t = 0.
    lagged = latent_ext[MAX_LAG_STEPS - lag : MAX_LAG_STEPS - lag + n_steps]
    drivers = {
        "wheel_velocity": [0, n_regions, n_regions + 1],
        "nose": [n_regions, n_regions + 1],
        "left_forepaw": [0],
        "right_forepaw": [1],
    }
    maps = {name: np.isin(np.arange(n_latents), ks).astype(int) for name, ks in drivers.items()}
    out = {}
    ks = drivers["wheel_velocity"]
    wheel = lagged[:, ks] @ rng.normal(0.0, 2.0, len(ks))
    out["wheel_velocity"] = wheel + rng.normal(0.0, 0.1, n_steps)  # 100 Hz: the latent grid

    t_latent = np.arange(n_steps) * DT
    t_cam = np.arange(int(np.floor((n_steps - 1) * DT * CAMERA_RATE)) + 1) / CAMERA_RATE
    for name in KEYPOINTS:
        ks = drivers[name]
        signal = lagged[:, ks] @ rng.normal(0.0, 1.0, (len(ks), 2))
        centre = rng.uniform(100.0, 400.0, 2)
        xy = np.column_stack([np.interp(t_cam, t_latent, signal[:, j]) for j in range(2)])
        xy = centre + 25.0 * xy + rng.normal(0.0, 1.0, xy.shape)
        xy[_tracking_lost(rng, t_cam.size)] = np.nan
        out[name] = (t_cam, xy)
    return out, maps


def _tracking_lost(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mask of lost frames: about 1 % of ``n`` in runs of 5-30 frames."""
    n_runs = max(1, round(0.01 * n / 17.5))
    starts = rng.integers(0, n - 30, n_runs)
    ends = starts + rng.integers(5, 31, n_runs)
    edges = np.zeros(n + 1, dtype=int)
    np.add.at(edges, starts, 1)
    np.add.at(edges, ends, -1)
    return np.cumsum(edges[:n]) > 0


def _trials(rng: np.random.Generator, duration_s: float, model: str) -> tuple[dict, dict]:
    # Every trial with its ITI lasts at least 1 s, so this many draws always suffice.
    n_max = int(np.ceil(duration_s)) + 1
    rt = rng.uniform(0.3, 0.8, n_max)
    iti = rng.uniform(0.3, 0.8, n_max)
    length = 0.2 + rt + 0.2
    start_all = 1.0 + np.concatenate([[0.0], np.cumsum(length + iti)[:-1]])
    n = int(np.count_nonzero(start_all + length <= duration_s - 3.0))
    start, rt = start_all[:n], rt[:n]
    stim_on = start + 0.2
    response = stim_on + rt

    stimulus = rng.choice(LEVELS, n)
    cond = rng.integers(0, len(CONDITIONS), n)
    block_sizes = rng.integers(60, 101, n // 60 + 1)
    block = np.repeat(np.arange(block_sizes.size), block_sizes)[:n]
    reward_left, reward_right = REWARD_CYCLE[block % len(REWARD_CYCLE)].T

    # Every parameter is drawn whatever the model, so the stream does not depend on it.
    factor = rng.uniform(0.85, 1.15)
    n_cond = len(CONDITIONS)
    draws = {
        "mu": rng.normal(0.0, 0.3, n_cond),
        "sigma": BASE_SIGMA * factor,
        "gamma": rng.uniform(0.02, 0.15, n_cond),
        "lambda": rng.uniform(0.02, 0.15, n_cond),
        "p_attend": rng.uniform(0.75, 0.95, n_cond),
        "p_bias": np.full(n_cond, rng.uniform(0.3, 0.7)),
        "beta": np.full(n_cond, rng.uniform(0.8, 1.4)),
        "epsilon": np.full(n_cond, rng.uniform(0.03, 0.12)),
    }
    theta = {k: v[cond] for k, v in draws.items()}  # per trial
    p_right = _p_right(model, theta, stimulus, reward_left, reward_right)
    choice = (rng.random(n) < p_right).astype(np.int64)
    choice[rng.choice(n, round(NO_RESPONSE_FRACTION * n), replace=False)] = -1

    params = {
        cname: _reported_params(model, {k: float(v[c]) for k, v in draws.items()})
        for c, cname in enumerate(CONDITIONS)
    }
    trials = {
        "start_time": start,
        "stop_time": response + 0.2,
        "stimulus": stimulus,
        "choice": choice,
        "condition": np.array(CONDITIONS)[cond],
        "reward_left": reward_left,
        "reward_right": reward_right,
        "stim_on_time": stim_on,
        "response_time": response,
        "p_right": p_right,
    }
    return trials, params


def _p_right(
    model: str,
    theta: dict[str, np.ndarray | float],
    stimulus: np.ndarray,
    reward_left: np.ndarray,
    reward_right: np.ndarray,
) -> np.ndarray:
    """p(rightward choice) under one of the generative lapse models, per trial.

    Parameters
    ----------
    model : {"exploration", "inattention", "psychometric", "fixed_error"}
        The lapse model.
    theta : dict
        Parameters by name, scalars or arrays broadcasting with ``stimulus``.
    stimulus : numpy.ndarray
        Signed evidence, + = rightward.
    reward_left, reward_right : numpy.ndarray
        Each trial's reward for a correct left / right choice (used by ``exploration``).

    Returns
    -------
    numpy.ndarray
        p(right) for each trial.

    Notes
    -----
    The equations are in :mod:`neuroseq.simulate`.
    """
    s = np.asarray(stimulus, dtype=float)
    if model == "exploration":
        beta, sigma, s, r_l, r_r = (
            np.asarray(a, dtype=float)[..., None]
            for a in (theta["beta"], theta["sigma"], s, reward_left, reward_right)
        )
        pc = ndtr(s / sigma + _NODES)  # p(right correct | x) at x = s + sigma * node
        return expit(beta * (pc * r_r - (1.0 - pc) * r_l)) @ _WEIGHTS
    f = ndtr((s - theta["mu"]) / theta["sigma"])
    if model == "psychometric":
        return theta["gamma"] + (1.0 - theta["gamma"] - theta["lambda"]) * f
    if model == "inattention":
        return theta["p_attend"] * f + (1.0 - theta["p_attend"]) * theta["p_bias"]
    if model == "fixed_error":
        return theta["epsilon"] + (1.0 - 2.0 * theta["epsilon"]) * f
    raise ValueError(f"model must be one of {LAPSE_MODELS}, got {model!r}")


def _reported_params(model: str, p: dict[str, float]) -> dict[str, float]:
    """The parameters ``model`` uses, plus its (derived) gamma and lambda."""
    if model == "psychometric":
        return {k: p[k] for k in ("mu", "sigma", "gamma", "lambda")}
    if model == "inattention":
        out = {k: p[k] for k in ("mu", "sigma", "p_attend", "p_bias")}
        lapse = 1.0 - p["p_attend"]
        return out | {"gamma": p["p_bias"] * lapse, "lambda": (1.0 - p["p_bias"]) * lapse}
    if model == "fixed_error":
        out = {k: p[k] for k in ("mu", "sigma", "epsilon")}
        return out | {"gamma": p["epsilon"], "lambda": p["epsilon"]}
    r_l, r_r = (float(r) for r in REWARD_CYCLE[0])
    return {
        "sigma": p["sigma"],
        "beta": p["beta"],
        "r_L": r_l,
        "r_R": r_r,
        "gamma": float(expit(-p["beta"] * r_l)),
        "lambda": float(expit(-p["beta"] * r_r)),
    }


_TRIAL_COLUMNS = {
    "stimulus": "signed evidence: event-rate difference from the category boundary, Hz "
    "(+ = rightward)",
    "choice": "1 right, 0 left, -1 no response",
    "condition": "sensory condition",
    "reward_left": "reward for a correct left choice, uL",
    "reward_right": "reward for a correct right choice, uL",
    "stim_on_time": "stimulus onset, s",
    "response_time": "response, s",
    "p_right": "the generative model's true p(right) on this trial",
}


def _nwbfile(index, seed, units, behavior, trials, truth, latent) -> pynwb.NWBFile:
    nwb = pynwb.NWBFile(
        session_description=f"neuroseq demo session {index}: simulated 2AFC task with "
        f"{truth['lapse_model']} lapses (generative model: neuroseq.simulate)",
        identifier=f"neuroseq-demo-{index:02d}-{seed}",
        session_start_time=datetime(2026, 1, 5, 10, tzinfo=UTC) + timedelta(days=index),
        lab="neuroseq demo",
        subject=Subject(
            subject_id=f"demo-mouse-{index:02d}", species="Mus musculus", age="P90D", sex="U"
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
    nwb.add_unit_column(name="base_rate", description="true baseline firing rate, Hz")
    starts = np.concatenate([[0], units["spike_index"][:-1]])
    for i, (a, b) in enumerate(zip(starts, units["spike_index"], strict=True)):
        r = units["region"][i]
        nwb.add_unit(
            spike_times=units["spike_times"][a:b],
            electrodes=[i],
            electrode_group=groups[r],
            base_rate=float(units["base_rate"][i]),
        )

    columns = [
        VectorData(name=name, description=desc, data=trials[name])
        for name, desc in [
            ("start_time", "start of the trial, s"),
            ("stop_time", "end of the trial, s"),
            *_TRIAL_COLUMNS.items(),
        ]
    ]
    nwb.trials = TimeIntervals(name="trials", description="simulated 2AFC trials", columns=columns)

    module = nwb.create_processing_module("behavior", "simulated behaviour")
    wheel = pynwb.TimeSeries(
        name="wheel_velocity",
        data=behavior["wheel_velocity"],
        unit="rad/s",
        rate=WHEEL_RATE,
        starting_time=0.0,
        description="wheel angular velocity",
    )
    module.add(BehavioralTimeSeries(name="BehavioralTimeSeries", time_series=[wheel]))
    spatial = [
        SpatialSeries(
            name=name,
            data=behavior[name][1],
            timestamps=behavior[name][0],
            reference_frame="camera pixels, origin top-left",
            unit="pixels",
            description=f"{name} keypoint (x, y); NaN where tracking was lost",
        )
        for name in KEYPOINTS
    ]
    module.add(Position(name="Position", spatial_series=spatial))

    nwb.add_scratch(
        json.dumps(truth),
        name="neuroseq_ground_truth",
        description="generative model and true parameters of this session (JSON); "
        "see neuroseq.simulate",
    )
    nwb.add_scratch(
        latent.astype(np.float32),
        name="neuroseq_true_latent",
        description=f"true latent state (time x latent), latent_dt_s = {DT} s apart from t = 0",
    )
    return nwb


def _write(nwb: pynwb.NWBFile, path: Path) -> Path:
    from neuroseq.io.output import atomic_write

    with atomic_write(path, ".tmp.nwb") as tmp, pynwb.NWBHDF5IO(tmp, "w") as io:
        io.write(nwb)
    return path
