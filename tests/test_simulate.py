"""The demo simulator: NWB layout, reproducibility, and that its ground truth holds."""

import json

import numpy as np
import pynwb
import pytest

from neuroseq.psychometric import MODELS
from neuroseq.simulate import LEVELS, simulate_demo, simulate_session


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Three 5-minute sessions: one per lapse model in the cycle."""
    return simulate_demo(tmp_path_factory.mktemp("demo"), n_sessions=3, duration_s=300, seed=7)


def truth_of(nwb):
    return json.loads(nwb.scratch["neuroseq_ground_truth"].data)


def read(path):
    io = pynwb.NWBHDF5IO(str(path), "r")
    return io, io.read()


def test_layout_of_a_demo_file(demo):
    io, nwb = read(demo[0])
    try:
        truth = truth_of(nwb)
        assert truth["lapse_model"] == "exploration"
        assert 60 <= len(nwb.units) <= 130
        assert len(nwb.units) == truth["n_units"]
        locations = set(nwb.electrodes["location"].data[:])
        assert locations == set(truth["regions"])
        assert 2 <= len(locations) <= 4
        trials = nwb.trials.to_dataframe()
        assert {
            "stimulus",
            "choice",
            "condition",
            "reward_left",
            "reward_right",
            "p_right",
        } <= set(trials.columns)
        assert set(trials.stimulus) <= set(LEVELS)
        assert set(trials.choice) <= {-1, 0, 1}
        assert (trials.stop_time > trials.start_time).all()
        assert len(trials) > 150  # ~1.5 s a trial
        behavior = nwb.processing["behavior"]
        wheel = behavior["BehavioralTimeSeries"]["wheel_velocity"]
        assert wheel.rate == 100.0
        assert not np.isnan(wheel.data[:]).any()
        for name in ("nose", "left_forepaw", "right_forepaw"):
            pose = behavior["Position"][name].data[:]
            assert pose.shape[1] == 2
            assert 0.002 < np.isnan(pose[:, 0]).mean() < 0.05  # tracking gaps, ~1 %
        z = nwb.scratch["neuroseq_true_latent"].data[:]
        assert z.shape == (30_000, len(truth["regions"]) + 2)
    finally:
        io.close()


def test_each_session_uses_the_next_lapse_model(demo):
    models = []
    for path in demo:
        io, nwb = read(path)
        models.append(truth_of(nwb)["lapse_model"])
        io.close()
    assert models == ["exploration", "inattention", "psychometric"]


def test_seeded_and_reproducible(tmp_path):
    a = simulate_session(tmp_path / "a.nwb", index=1, duration_s=40, seed=3)
    b = simulate_session(tmp_path / "b.nwb", index=1, duration_s=40, seed=3)
    c = simulate_session(tmp_path / "c.nwb", index=1, duration_s=40, seed=4)
    (ia, na), (ib, nb), (ic, nc) = read(a), read(b), read(c)
    try:
        np.testing.assert_array_equal(na.units.spike_times.data[:], nb.units.spike_times.data[:])
        np.testing.assert_array_equal(na.trials["choice"].data[:], nb.trials["choice"].data[:])
        assert len(nc.units.spike_times.data) != len(na.units.spike_times.data)
    finally:
        for io in (ia, ib, ic):
            io.close()
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_stored_p_right_is_the_model_and_choices_follow_it(demo):
    io, nwb = read(demo[2])  # psychometric
    try:
        truth = truth_of(nwb)
        trials = nwb.trials.to_dataframe()
    finally:
        io.close()
    for cname, theta in truth["lapse_params"].items():
        sel = trials.condition == cname
        p = MODELS["psychometric"].p_right(theta, trials.stimulus[sel].to_numpy(), None, None)[0]
        np.testing.assert_allclose(trials.p_right[sel], p)
    responded = trials[trials.choice >= 0]
    assert responded.choice[responded.stimulus == 3.5].mean() > 0.7
    assert responded.choice[responded.stimulus == -3.5].mean() < 0.3


def test_behaviour_lags_the_latent_by_the_stated_lag(demo):
    io, nwb = read(demo[1])
    try:
        truth = truth_of(nwb)
        z = nwb.scratch["neuroseq_true_latent"].data[:].astype(float)
        wheel = nwb.processing["behavior"]["BehavioralTimeSeries"]["wheel_velocity"].data[:]
    finally:
        io.close()
    drivers = np.flatnonzero(truth["latent_behavior_map"]["wheel_velocity"])
    # Regress the wheel on the driving latents at each candidate lag: the fit peaks at the lag.
    n = min(len(wheel), len(z)) - 50
    scores = []
    for lag in range(30):
        x = np.column_stack([z[: n - lag][:, drivers], np.ones(n - lag)])
        y = wheel[lag:n]
        resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
        scores.append(1 - resid.var() / y.var())
    assert int(np.argmax(scores)) == round(truth["lag_s"] / truth["latent_dt_s"])


def test_each_region_follows_its_own_latent(demo):
    io, nwb = read(demo[0])
    try:
        truth = truth_of(nwb)
        z = nwb.scratch["neuroseq_true_latent"].data[:].astype(float)
        region = np.array(nwb.electrodes["location"].data[:])  # one electrode per unit
        ends = nwb.units.spike_times_index.data[:]
        times = nwb.units.spike_times.data[:]
    finally:
        io.close()
    edges = np.arange(0, 300 + 1e-9, 0.1)
    counts = np.stack(
        [
            np.histogram(times[a:b], edges)[0]
            for a, b in zip(np.r_[0, ends[:-1]], ends, strict=True)
        ]
    )
    zc = z.reshape(-1, 10, z.shape[1]).mean(1)[: edges.size - 1]
    names = truth["regions"]
    active = counts.std(1) > 0
    for r, name in enumerate(names):
        units = counts[(region == name) & active]

        def coupling(q, units=units):
            return np.mean([abs(np.corrcoef(u, zc[:, q])[0, 1]) for u in units])

        others = [coupling(q) for q in range(len(names)) if q != r]
        assert coupling(r) > 2 * max(others), (name, coupling(r), others)
