"""Test factories: small seeded NWB files built with pynwb, and the real recordings."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pynwb
from pynwb.behavior import BehavioralTimeSeries, Position, SpatialSeries
from pynwb.testing.mock.file import mock_NWBFile

REPO = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("NEUROSEQ_REAL_DATA", REPO.parent / "shared" / "data" / "real"))

REAL_CA1 = REAL / "nelpy_linear_track_rat_ca1.nwb"
REAL_MTL = REAL / "zheng2022_human_mtl_sub-4_ses-4.nwb"
REAL_IBL = REAL / "ibl_SWC_054_trials.csv"
REAL_IBL_DF = REAL / "ibl_trials_df_test.csv"
REAL_QUICKPSY = REAL / "quickpsy_qpdat.csv"

#: Ingest options for the real files (the same a lab would put in its config).
CA1_OPTIONS = {
    "units": {"region": "CA1"},
    "trials": {
        "columns": {
            "stimulus": None,
            "choice": None,
            "condition": None,
            "reward_left": None,
            "reward_right": None,
        },
        "extra_columns": ["direction"],
    },
}
MTL_OPTIONS = {
    "bin_size_s": 0.05,
    "trials": {
        "table": "timediscrimination_table",
        "columns": {
            "stimulus": "leftright",
            "choice": "key",
            "condition": "boundary_type",
            "reward_left": None,
            "reward_right": None,
        },
        "choice_coding": {"left": [1], "right": [2], "no_response": []},
        "stimulus_coding": {1: -1.0, 2: 1.0},
        "extra_columns": ["confidence", "RT"],
    },
}
_NO_TIMES = {"start_time": None, "stop_time": None, "reward_left": None, "reward_right": None}
IBL_TRIALS = {
    "columns": {
        **_NO_TIMES,
        "stimulus": "signed_contrast_pct",
        "choice": "choice",
        "condition": "probabilityLeft",
    },
    # IBL codes a rightward response as -1 and a leftward one as +1; 0 is a no-go.
    "choice_coding": {"right": [-1], "left": [1], "no_response": [0]},
    "extra_columns": ["session_date", "feedbackType"],
}
QUICKPSY_TRIALS = {
    "columns": {**_NO_TIMES, "stimulus": "phase", "choice": "resp", "condition": "cond"},
    "extra_columns": ["participant"],
}


def write_nwb(
    path: Path,
    *,
    seed: int = 0,
    duration: float = 20.0,
    n_units: int = 6,
    silent_units: int = 0,
    n_trials: int = 12,
    choices: list | None = None,
    stimulus: list | None = None,
    wheel_timestamps: np.ndarray | None = None,
    with_behavior: bool = True,
    with_trials: bool = True,
) -> dict:
    """Write a small NWB file with pynwb and return what was put in it (the truth)."""
    rng = np.random.default_rng(seed)
    nwb = mock_NWBFile(
        identifier=f"test-{seed}", session_start_time=datetime(2026, 1, 1, tzinfo=UTC)
    )
    device = nwb.create_device("probe")
    regions = ["VISp", "MOs"]
    groups = {
        r: nwb.create_electrode_group(r, description=r, location=r, device=device) for r in regions
    }
    spikes, unit_regions = [], []
    for i in range(n_units + silent_units):
        region = regions[i % 2]
        nwb.add_electrode(group=groups[region], location=region)
        times = (
            np.sort(rng.uniform(0.0, duration, rng.integers(20, 200)))
            if i < n_units
            else np.array([])
        )
        nwb.add_unit(spike_times=times, electrodes=[i], electrode_group=groups[region])
        spikes.append(times)
        unit_regions.append(region)
    truth = {"spikes": spikes, "regions": unit_regions}
    if with_trials:
        starts = np.linspace(0.5, duration - 2.0, n_trials)
        stim = np.asarray(
            stimulus if stimulus is not None else rng.choice([-2.0, -1.0, 1.0, 2.0], n_trials),
            dtype=object,
        )
        ch = choices if choices is not None else list(rng.choice([1, 0, -1], n_trials))
        conds = [("visual", "auditory")[i % 2] for i in range(n_trials)]
        for name, desc in [
            ("stimulus", "signed"),
            ("choice", "1 R 0 L -1 none"),
            ("condition", "modality"),
            ("reward_left", "uL"),
            ("reward_right", "uL"),
        ]:
            nwb.add_trial_column(name=name, description=desc)
        for i in range(n_trials):
            nwb.add_trial(
                start_time=starts[i],
                stop_time=starts[i] + 1.0,
                stimulus=stim[i],
                choice=ch[i],
                condition=conds[i],
                reward_left=2.0,
                reward_right=3.0,
            )
        truth.update(starts=starts, stimulus=stim, choice=ch, condition=conds)
    if with_behavior:
        module = nwb.create_processing_module("behavior", "behaviour")
        n = int(duration * 100)
        t = wheel_timestamps if wheel_timestamps is not None else np.arange(n) / 100.0
        wheel = np.sin(np.asarray(t) * 2.0)
        module.add(
            BehavioralTimeSeries(
                time_series=[
                    pynwb.TimeSeries(name="wheel_velocity", data=wheel, unit="rad/s", timestamps=t)
                ],
                name="BehavioralTimeSeries",
            )
        )
        pose = np.column_stack([np.arange(n // 10) * 1.0, np.arange(n // 10) * 2.0])
        pose[5:8] = np.nan  # the tracker lost the animal for three frames
        module.add(
            Position(
                spatial_series=[
                    SpatialSeries(
                        name="nose",
                        data=pose,
                        reference_frame="pixels",
                        rate=10.0,
                        starting_time=0.0,
                    )
                ],
                name="Position",
            )
        )
        truth.update(wheel_t=np.asarray(t), wheel=wheel, pose=pose)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return truth
