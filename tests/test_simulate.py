"""The demo simulator: NWB layout, reproducibility, and that its ground truth holds."""

from __future__ import annotations

import json

import numpy as np
import pynwb
import pytest
from scipy.special import ndtr

from neuroseq.simulate import LAPSE_MODELS, LEVELS, simulate_demo, simulate_session

TRUTH_KEYS = {
    "generator",
    "index",
    "seed",
    "duration_s",
    "lapse_model",
    "lapse_params",
    "lag_s",
    "latent_dt_s",
    "regions",
    "latent_region_map",
    "latent_behavior_map",
    "behavior_groups",
    "n_units",
}
TRIAL_COLUMNS = {
    "start_time",
    "stop_time",
    "stimulus",
    "choice",
    "condition",
    "reward_left",
    "reward_right",
    "stim_on_time",
    "response_time",
    "p_right",
}
KEYPOINTS = ("nose", "left_forepaw", "right_forepaw")


def load(path):
    """Everything the tests need from one file, read back with pynwb."""
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        behavior = nwb.processing["behavior"]
        wheel = behavior["BehavioralTimeSeries"]["wheel_velocity"]
        ends = nwb.units.spike_times_index.data[:]
        return {
            "truth": json.loads(nwb.scratch["neuroseq_ground_truth"].data),
            "latent": np.asarray(nwb.scratch["neuroseq_true_latent"].data[:], dtype=float),
            "trials": nwb.trials.to_dataframe(),
            "unit_location": np.asarray(nwb.electrodes["location"].data[:])[
                [int(e.index[0]) for e in nwb.units["electrodes"][:]]
            ],
            "spike_times": np.split(nwb.units.spike_times.data[:], ends[:-1]),
            "wheel": np.asarray(wheel.data[:]),
            "wheel_rate": wheel.rate,
            "wheel_start": wheel.starting_time,
            "wheel_unit": wheel.unit,
            "pose": {k: np.asarray(behavior["Position"][k].data[:]) for k in KEYPOINTS},
            "pose_t": {k: np.asarray(behavior["Position"][k].timestamps[:]) for k in KEYPOINTS},
            "identifier": nwb.identifier,
            "subject_id": nwb.subject.subject_id,
        }


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """One 60 s session (index 0, exploration, 2 regions)."""
    path = simulate_session(tmp_path_factory.mktemp("short") / "s.nwb", duration_s=60, seed=5)
    return load(path)


@pytest.fixture(scope="module")
def long_psychometric(tmp_path_factory):
    """A 300 s psychometric session (index 2, 4 regions)."""
    path = tmp_path_factory.mktemp("long") / "p.nwb"
    return load(simulate_session(path, index=2, duration_s=300, seed=11))


def test_file_layout(short):
    truth = short["truth"]
    assert set(truth) >= TRUTH_KEYS
    assert truth["generator"] == "neuroseq.simulate/1"
    assert truth["lapse_model"] == "exploration"
    assert short["identifier"] == "neuroseq-demo-00-5"
    assert short["subject_id"] == "demo-mouse-00"

    trials = short["trials"]
    assert set(trials.columns) >= TRIAL_COLUMNS
    assert 25 <= len(trials) <= 60  # 56 s of trials at 1.0-2.1 s each
    assert set(trials.stimulus) <= set(LEVELS)
    assert set(trials.choice) <= {-1, 0, 1}
    assert (trials.start_time >= 1.0).all()
    assert (trials.stop_time <= 57.0).all()
    np.testing.assert_allclose(trials.stim_on_time - trials.start_time, 0.2)
    assert (trials.start_time.to_numpy()[1:] > trials.stop_time.to_numpy()[:-1]).all()
    assert set(trials.reward_left) | set(trials.reward_right) <= {2.0, 3.0}
    assert trials.p_right.between(0, 1).all()

    assert 50 <= len(short["spike_times"]) <= 150
    assert len(short["spike_times"]) == truth["n_units"]
    assert set(short["unit_location"]) == set(truth["regions"])
    for region in truth["regions"]:
        assert (short["unit_location"] == region).sum() >= 12
    for times in short["spike_times"]:
        assert (np.diff(times) >= 0).all()
        assert times.size == 0 or (times[0] >= 0 and times[-1] < 60)

    assert short["wheel_rate"] == 100.0
    assert short["wheel_start"] == 0.0
    assert short["wheel_unit"] == "rad/s"
    assert short["wheel"].shape == (6000,)
    assert not np.isnan(short["wheel"]).any()
    for name in KEYPOINTS:
        pose, t = short["pose"][name], short["pose_t"][name]
        assert pose.shape == (t.size, 2)
        np.testing.assert_allclose(np.diff(t), 1 / 60)
        lost = np.isnan(pose)
        assert (lost[:, 0] == lost[:, 1]).all()
        assert 0.001 < lost[:, 0].mean() < 0.05  # tracking gaps, ~1 %

    k = len(truth["regions"]) + 2
    assert short["latent"].shape == (6000, k)
    assert np.array(truth["latent_region_map"]).shape == (k, len(truth["regions"]))
    assert set(truth["latent_behavior_map"]) == set(truth["behavior_groups"])
    assert all(len(v) == k for v in truth["latent_behavior_map"].values())
    for cname, theta in truth["lapse_params"].items():
        assert {"sigma", "beta", "gamma", "lambda"} <= set(theta), cname


def test_demo_names_files_and_cycles_the_lapse_models(tmp_path):
    paths = simulate_demo(tmp_path, n_sessions=4, duration_s=30, seed=1)
    assert [p.name for p in paths] == [f"demo_{i:02d}.nwb" for i in range(1, 5)]
    truths = [load(p)["truth"] for p in paths]
    assert [t["lapse_model"] for t in truths] == list(LAPSE_MODELS)
    assert [len(t["regions"]) for t in truths] == [2, 3, 4, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]  # no temp


def test_seeded_and_reproducible(tmp_path):
    a = load(simulate_session(tmp_path / "a.nwb", index=1, duration_s=60, seed=3))
    b = load(simulate_session(tmp_path / "b.nwb", index=1, duration_s=60, seed=3))
    c = load(simulate_session(tmp_path / "c.nwb", index=1, duration_s=60, seed=4))
    for x, y in zip(a["spike_times"], b["spike_times"], strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a["trials"].choice, b["trials"].choice)
    np.testing.assert_array_equal(a["latent"], b["latent"])
    assert a["truth"] == b["truth"]
    assert not np.array_equal(
        np.concatenate(a["spike_times"])[:1000], np.concatenate(c["spike_times"])[:1000]
    )
    n = min(len(a["trials"]), len(c["trials"]))
    assert not np.array_equal(a["trials"].choice[:n], c["trials"].choice[:n])


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pynwb.NWBHDF5IO, "write", fail)
    with pytest.raises(OSError, match="disk full"):
        simulate_session(tmp_path / "x.nwb", duration_s=30)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"duration_s": 10}, ValueError, "duration_s must be"),
        ({"duration_s": float("nan")}, ValueError, "duration_s must be"),
        ({"index": -1}, ValueError, "index must be a non-negative int"),
        ({"seed": 1.5}, ValueError, "seed must be a non-negative int"),
    ],
)
def test_bad_session_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        simulate_session(tmp_path / "x.nwb", **kwargs)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("n_sessions", "error", "match"),
    [(0, ValueError, "n_sessions must be at least 1"), (2.0, TypeError, "n_sessions")],
)
def test_bad_demo_arguments(tmp_path, n_sessions, error, match):
    with pytest.raises(error, match=match):
        simulate_demo(tmp_path, n_sessions=n_sessions, duration_s=30)


def test_behaviour_lags_the_latent_by_the_stated_lag(short):
    truth, z, wheel = short["truth"], short["latent"], short["wheel"]
    drivers = np.flatnonzero(truth["latent_behavior_map"]["wheel_velocity"])
    # Both at 100 Hz from t = 0. At each candidate lag, project the driving latents onto
    # the wheel (least squares) and correlate: the correlation peaks at the true lag.
    first, n = 40, wheel.size
    corr = []
    for lag in range(first):
        x = np.column_stack([z[first - lag : n - lag][:, drivers], np.ones(n - first)])
        y = wheel[first:]
        projection = x @ np.linalg.lstsq(x, y, rcond=None)[0]
        corr.append(np.corrcoef(projection, y)[0, 1])
    expected = round(truth["lag_s"] / truth["latent_dt_s"])
    assert 5 <= expected <= 15
    assert abs(int(np.argmax(corr)) - expected) <= 1


def psychometric_p(theta, s):
    z = (s - theta["mu"]) / theta["sigma"]
    return theta["gamma"] + (1 - theta["gamma"] - theta["lambda"]) * ndtr(z)


def test_stored_p_right_is_the_psychometric_model(long_psychometric):
    truth, trials = long_psychometric["truth"], long_psychometric["trials"]
    assert truth["lapse_model"] == "psychometric"
    assert set(trials.condition) == set(truth["lapse_params"])
    for cname, theta in truth["lapse_params"].items():
        assert set(theta) == {"mu", "sigma", "gamma", "lambda"}
        assert 0.02 <= theta["gamma"] <= 0.15
        assert 0.02 <= theta["lambda"] <= 0.15
        sel = (trials.condition == cname).to_numpy()
        expected = psychometric_p(theta, trials.stimulus.to_numpy()[sel])
        np.testing.assert_allclose(trials.p_right.to_numpy()[sel], expected, rtol=1e-12)
    sigma = {c: t["sigma"] for c, t in truth["lapse_params"].items()}
    assert sigma["multisensory_matched"] < sigma["auditory"] < sigma["visual"]


def test_choices_follow_the_model(long_psychometric):
    trials = long_psychometric["trials"]
    assert len(trials) > 150
    assert 0.005 < (trials.choice == -1).mean() < 0.04
    responded = trials[trials.choice >= 0]
    assert responded.choice[responded.stimulus == 3.5].mean() > 0.7
    assert responded.choice[responded.stimulus == -3.5].mean() < 0.3
    # Every block of trials carries its block's rewards; both asymmetric blocks appear.
    pairs = set(zip(trials.reward_left, trials.reward_right, strict=True))
    assert {(2.0, 2.0), (2.0, 3.0)} <= pairs


def test_each_region_follows_its_own_latent(long_psychometric):
    truth, z = long_psychometric["truth"], long_psychometric["latent"]
    regions = truth["regions"]
    region_map = np.array(truth["latent_region_map"])
    assert (region_map[: len(regions)] == np.eye(len(regions))).all()
    assert (region_map[len(regions)] == 1).all()
    assert (region_map[len(regions) + 1] == 0).all()

    edges = np.arange(0.0, 300.0 + 1e-9, 0.1)
    counts = np.stack([np.histogram(t, edges)[0] for t in long_psychometric["spike_times"]])
    zc = z.reshape(-1, 10, z.shape[1]).mean(axis=1)  # latent on the same 100 ms bins
    for r, name in enumerate(regions):
        # Loadings have random signs, so a plain sum of the region's counts cancels; read
        # each latent out of the region's population instead (least squares, R^2).
        own = counts[long_psychometric["unit_location"] == name]
        x = np.column_stack([np.log1p(own.T), np.ones(own.shape[1])])
        r2 = []
        for q in range(len(regions)):
            resid = zc[:, q] - x @ np.linalg.lstsq(x, zc[:, q], rcond=None)[0]
            r2.append(1 - resid.var() / zc[:, q].var())
        others = r2[:r] + r2[r + 1 :]
        assert r2[r] > 0.3, (name, r2)
        assert r2[r] > 3 * max(others), (name, r2)
