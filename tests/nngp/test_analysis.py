"""run_nngp / summarize_nngp / the CLI: known signals decoded, no leakage, real recordings,
the output schema, bad input."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

from helpers import CA1_OPTIONS, MTL_OPTIONS, REAL_CA1, REAL_MTL
from neuroseq import schema
from neuroseq.cli import main
from neuroseq.errors import InputError
from neuroseq.io import ingest_file, read_dataset, write_dataset
from neuroseq.nngp import run_nngp, summarize_nngp
from neuroseq.nngp.data import trial_data

FAST = dict(
    n_folds=3,
    depth=(1, 2),
    weight_var=(1.0, 2.0),
    bias_var=(0.0, 0.1),
    widths=[8, 32],
    n_seeds=2,
    mlp={"max_epochs": 40, "patience": 8},
)


@pytest.fixture(autouse=True)
def deterministic_torch():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    yield
    torch.use_deterministic_algorithms(False)


def synthetic_session(n_trials=120, n_units=20, seed=0, bin_s=0.02):
    """Poisson units whose rate in the 0.5 s after each trial start depends on the trial's
    condition (three classes) and, monotonically but nonlinearly (tanh), on ``speed``."""
    rng = np.random.default_rng(seed)
    trial_s = 1.0
    n_bins = int(n_trials * trial_s / bin_s) + 50
    time = (np.arange(n_bins) + 0.5) * bin_s
    start = 0.5 + np.arange(n_trials) * trial_s
    condition = np.array(["a", "b", "c"])[rng.integers(0, 3, n_trials)]
    speed = rng.uniform(-2, 2, n_trials)
    tuning = rng.normal(0, 0.8, (3, n_units))
    gain = rng.normal(0, 0.6, n_units)
    rate = np.full((n_bins, n_units), 5.0)
    trial_index = np.full(n_bins, -1)
    for i, t0 in enumerate(start):
        window = (time >= t0) & (time < t0 + 0.5)
        cls = "abc".index(condition[i])
        rate[window] = 5.0 * np.exp(tuning[cls] + gain * np.tanh(1.2 * speed[i]))
        trial_index[(time >= t0) & (time < t0 + trial_s)] = i
    counts = rng.poisson(rate * bin_s)
    choice = rng.integers(0, 2, n_trials).astype(np.int8)
    choice[:5] = -1  # five trials without a response
    return xr.Dataset(
        {
            "spike_counts": (("time", "unit"), counts.astype(np.int32), {"units": "count"}),
            "trial_index": ("time", trial_index, {"units": "1"}),
            "start_time": ("trial", start, {"units": "s"}),
            "stop_time": ("trial", start + trial_s, {"units": "s"}),
            "condition": ("trial", condition),
            "choice": ("trial", choice, {"units": "1"}),
            "stimulus": ("trial", np.round(speed), {"units": "1"}),
            "speed": ("trial", speed, {"units": "cm/s"}),
            "unit_region": ("unit", np.array(["CA1"] * n_units)),
        },
        coords={"time": time, "unit": np.arange(n_units), "trial": np.arange(n_trials)},
        attrs={"bin_size_s": bin_s, "session_id": f"synthetic_{seed}"},
    )


def test_a_class_the_units_carry_is_decoded_and_the_output_validates(tmp_path):
    ds = run_nngp(synthetic_session(), target="condition", **FAST)
    assert ds.attrs["task"] == "classification"
    assert json.loads(ds.attrs["classes"]) == ["a", "b", "c"]
    assert float(ds.nngp_score) > 0.9
    assert float(ds.chance_score) < 0.5
    assert ds.score.dims == ("model", "width", "seed")
    assert ds.score.shape == (1, 2, 2)
    assert (ds.score.sel(width=32) > 0.8).all()
    assert float(ds.nngp_score) >= float(ds.score.max())
    assert ds.sizes["sample"] == 120
    assert (ds.predictive_std > 0).all()
    chosen = json.loads(ds.attrs["chosen_hyperparameters"])
    assert len(chosen) == 3
    assert all(c["depth"] in (1, 2) for c in chosen)
    assert ds.chosen_depth.values.tolist() == [c["depth"] for c in chosen]
    # Pooled score recomputed from the stored predictions.
    assert float(ds.nngp_score) == pytest.approx(float((ds.nngp_prediction == ds.target).mean()))
    path = write_dataset(
        ds,
        tmp_path / "nngp.nc",
        schema="neuroseq.nngp/1",
        session_id="synthetic_0",
        source_file=None,
        params=FAST,
        seed=0,
    )
    back = read_dataset(path, "neuroseq.nngp/1")
    schema.validate(back)
    assert back.target.values.tolist() == ds.target.values.tolist()


def test_a_nonlinear_continuous_target_is_regressed_with_uncertainty():
    ds = run_nngp(synthetic_session(n_trials=150, seed=1), target="speed", **FAST)
    assert ds.attrs["task"] == "regression"
    assert ds.target.attrs["units"] == "cm/s"
    assert float(ds.nngp_score) > 0.6
    assert np.isfinite(float(ds.std_error_corr))
    np.testing.assert_allclose(
        ds.abs_error, np.abs(ds.target - ds.nngp_prediction), rtol=1e-12, atol=1e-12
    )


def test_no_response_trials_are_dropped_and_counted():
    ds = run_nngp(synthetic_session(), target="choice", **FAST)
    assert ds.sizes["sample"] == 115
    assert json.loads(ds.attrs["dropped_trials"]) == {"no_response": 5}
    assert 0.0 <= float(ds.nngp_score) <= 1.0


def test_held_out_targets_never_reach_a_model():
    """Scramble the targets of the trials held out in fold 0: nothing predicted for them moves."""
    session = synthetic_session(n_trials=90, seed=2)
    options = dict(FAST, widths=[8], n_seeds=1)
    clean = run_nngp(session, target="speed", **options)
    held_out = clean.sample.values[clean.test_fold.values == 0]
    scrambled = session.copy(deep=True)
    rng = np.random.default_rng(5)
    scrambled["speed"].values[held_out] = rng.uniform(-50, 50, held_out.size)
    dirty = run_nngp(scrambled, target="speed", **options)
    assert (dirty.test_fold.values == clean.test_fold.values).all()  # same folds
    fold0 = clean.test_fold.values == 0
    np.testing.assert_allclose(dirty.nngp_prediction[fold0], clean.nngp_prediction[fold0])
    np.testing.assert_allclose(dirty.predictive_std[fold0], clean.predictive_std[fold0])
    np.testing.assert_allclose(
        dirty.prediction.values[..., fold0], clean.prediction.values[..., fold0]
    )
    assert (
        dirty.attrs["chosen_hyperparameters"].split("}")[0]
        == (clean.attrs["chosen_hyperparameters"].split("}")[0])
    )
    assert not np.allclose(dirty.nngp_prediction[~fold0], clean.nngp_prediction[~fold0])


def test_window_counts_equal_a_direct_count_and_windows_off_the_recording_are_dropped():
    session = synthetic_session(n_trials=30)
    session["start_time"].values[-1] = session.time.values[-1] + 5.0  # after the recording
    data = trial_data(session, target="speed", window_s=(0.1, 0.3))
    assert data.dropped == {"window_outside_recording": 1}
    t, counts = session.time.values, session.spike_counts.values
    for row, trial in enumerate(data.trial):
        t0 = session.start_time.values[trial]
        inside = (t >= t0 + 0.1) & (t < t0 + 0.3)
        np.testing.assert_array_equal(data.counts[row], counts[inside].sum(0))


@pytest.mark.usefixtures("real_data")
def test_real_ca1_lap_direction_is_decoded_from_place_cells():
    session = ingest_file(REAL_CA1, **CA1_OPTIONS)
    ds = run_nngp(session, target="direction", window_s=(0.0, 4.0), min_trials=20, **FAST)
    assert ds.sizes["sample"] == 48
    assert ds.attrs["task"] == "classification"
    assert float(ds.nngp_score) > 0.85  # place cells fire at opposite ends per direction
    assert float(ds.chance_score) <= 0.6


@pytest.mark.usefixtures("real_data")
def test_real_human_mtl_choice_runs_and_is_scored():
    session = ingest_file(REAL_MTL, **MTL_OPTIONS)
    ds = run_nngp(
        session, target="choice", window_s=(0.0, 1.0), **dict(FAST, widths=[8], n_seeds=1)
    )
    assert ds.sizes["sample"] == 180
    assert 0.0 <= float(ds.nngp_score) <= 1.0
    assert np.isfinite(ds.predictive_std).all()


def test_summary_stacks_sessions():
    results = []
    for seed in (0, 1):
        ds = run_nngp(
            synthetic_session(seed=seed), target="condition", **dict(FAST, widths=[8], n_seeds=1)
        )
        ds.attrs["session_id"] = f"s{seed}"
        results.append(ds)
    summary = summarize_nngp(results)
    assert summary.score.dims == ("session", "model", "width")
    assert summary.session.values.tolist() == ["s0", "s1"]
    assert summary.target.values.tolist() == ["condition", "condition"]
    np.testing.assert_allclose(summary.nngp_score, [float(r.nngp_score) for r in results])


BAD = [
    (
        {"target": "reaction_time"},
        r"nngp.target='reaction_time': expected a trial variable or a behaviour feature",
    ),
    ({"align": "stim_on"}, r"nngp.align='stim_on': expected a trial variable"),
    ({"window_s": (0.5, 0.1)}, r"nngp.window_s: expected \[start, stop\] with stop > start"),
    ({"min_trials": 500}, r"trials: expected at least 500 usable trials"),
    ({"n_folds": 25}, "expected at least 2 classes with >= n_folds=25 trials each"),
    ({"task": "regression"}, "expected numbers for regression"),
    ({"task": "ordinal"}, "nngp.task: expected one of"),
    ({"transform": "log"}, "nngp.transform: expected one of"),
    ({"optimizers": ["rmsprop"]}, r"nngp.optimizers: expected names among \['adam', 'sgd'\]"),
    ({"widths": [0, 8]}, "nngp.widths: expected a non-empty list of integers >= 1"),
    ({"activation": "softplus"}, "activation: expected one of"),
    ({"depth": -1}, "depth: expected a value or a non-empty list of integers >= 0"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_options_name_the_key(change, message):
    options = {**FAST, "target": "condition", **change}
    with pytest.raises(InputError, match=message):
        run_nngp(synthetic_session(n_trials=60), **options)


def test_a_constant_target_is_an_input_error():
    session = synthetic_session(n_trials=60)
    session["speed"].values[:] = 1.5
    with pytest.raises(InputError, match="expected a target that varies across trials"):
        run_nngp(session, target="speed", task="regression", **FAST)


def test_a_session_without_units_is_an_input_error():
    behaviour_only = synthetic_session(n_trials=40).drop_dims("unit")
    with pytest.raises(InputError, match="spike_counts: expected a session with units"):
        run_nngp(behaviour_only, target="condition", **FAST)


def test_cli_writes_validated_results_summary_and_figures(tmp_path):
    paths = []
    for seed in (0, 1):
        session = synthetic_session(n_trials=60, seed=seed)
        paths.append(
            write_dataset(
                session,
                tmp_path / f"s{seed}.nc",
                schema="neuroseq.session/1",
                session_id=f"s{seed}",
                source_file=None,
                params={},
            )
        )
    config = tmp_path / "config.yaml"
    config.write_text(
        "nngp: {target: condition, n_folds: 3, depth: 1, widths: [8], n_seeds: 1, "
        "mlp: {max_epochs: 20}}\n"
    )
    outs = []
    for i, path in enumerate(paths):
        out = tmp_path / f"nngp_{i}.nc"
        assert main(["nngp", str(path), "-o", str(out), "-c", str(config)]) == 0
        ds = read_dataset(out, "neuroseq.nngp/1")
        assert ds.attrs["session_id"] == f"s{i}"
        assert json.loads(ds.attrs["params"])["target"] == "condition"
        outs.append(out)
        assert main(["nngp-figures", str(out), "-o", str(tmp_path / "fig")]) == 0
    for name in ("nngp_width", "nngp_uncertainty"):
        assert (tmp_path / "fig" / f"{name}.png").stat().st_size > 10_000
    summary = tmp_path / "summary.nc"
    assert main(["summarize", *map(str, outs), "-o", str(summary)]) == 0
    assert read_dataset(summary, "neuroseq.summary.nngp/1").sizes["session"] == 2
    assert main(["nngp-figures", "--summary", str(summary), "-o", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "nngp.png").is_file()


def test_cli_bad_input_exits_2_without_output(tmp_path, capsys):
    session = synthetic_session(n_trials=60).drop_dims("unit")
    path = write_dataset(
        session,
        tmp_path / "s.nc",
        schema="neuroseq.session/1",
        session_id="s",
        source_file=None,
        params={},
    )
    config = tmp_path / "config.yaml"
    config.write_text("nngp: {target: condition}\n")
    out = tmp_path / "nngp.nc"
    assert main(["nngp", str(path), "-o", str(out), "-c", str(config)]) == 2
    assert "expected a session with units" in capsys.readouterr().err
    assert not out.exists()
