"""pruning.nc: run_pruning on a session, the real CA1 file, bad input, CLI, figures."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import xarray as xr
import yaml

from helpers import CA1_OPTIONS, REAL_CA1
from neuroseq.cli import main
from neuroseq.decoding.networks import ARCHITECTURES
from neuroseq.errors import InputError
from neuroseq.io import ingest_file, read_dataset, write_dataset
from neuroseq.pruning import INITS, MLPNet
from neuroseq.pruning import masks as M
from neuroseq.pruning.analysis import SCHEMA, SUMMARY_SCHEMA, run_pruning, summarize_pruning
from neuroseq.report.pruning import pruning_figures, pruning_summary_figure

TINY = {
    "n_folds": 3,
    "test_folds": 1,
    "n_rounds": 2,
    "rate": 0.5,
    "output_rate": 0.25,
    "n_seeds": 2,
    "lags_s": [0.0, 0.06],
    "mlp": {"hidden": [16, 8], "batch_size": 64, "lr": 5e-3, "max_epochs": 12, "patience": 3},
    "transformer": {
        "d_model": 16,
        "n_heads": 2,
        "n_layers": 1,
        "dim_feedforward": 32,
        "window": 32,
        "batch_size": 32,
        "lr": 3e-3,
        "max_epochs": 6,
        "patience": 2,
    },
}


@pytest.fixture(autouse=True)
def deterministic_torch():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    yield
    torch.use_deterministic_algorithms(False)


def session(n_bins=3000, n_units=16, n_trials=30, seed=0, session_id="synthetic"):
    """Poisson units driven by a smooth 2-d latent; behaviour a linear map of it, lag 3 bins."""
    rng = np.random.default_rng(seed)
    z = np.zeros((n_bins, 2))
    for t in range(1, n_bins):
        z[t] = 0.97 * z[t - 1] + 0.243 * rng.standard_normal(2)
    counts = rng.poisson(np.exp(np.log(0.5) + z @ rng.normal(0, 0.8, (2, n_units))))
    behaviour = np.zeros_like(z)
    behaviour[3:] = z[:-3] @ np.array([[1.0, 0.5], [-0.3, 1.0]]) * 10.0
    return xr.Dataset(
        {
            "spike_counts": (("time", "unit"), counts, {"units": "count"}),
            "behavior": (("time", "feature"), behaviour, {"units": "cm"}),
            "trial_index": ("time", np.repeat(np.arange(n_trials), n_bins // n_trials)),
        },
        coords={
            "time": np.arange(n_bins) * 0.02 + 0.01,
            "feature": ["x", "y"],
            "unit": np.arange(n_units),
        },
        attrs={"bin_size_s": 0.02, "session_id": session_id},
    )


def write(ds, path, session_id="synthetic"):
    return write_dataset(
        ds, path, schema=SCHEMA, session_id=session_id, source_file=None, params=TINY, seed=0
    )


def expected_remaining(decoder, n_units, n_features, options):
    """The schedule from the networks' sizes alone."""
    if decoder == "mlp":
        net = MLPNet(n_units * 10, n_features, options["mlp"]["hidden"])  # 0.2 s of 20 ms bins
    else:
        arch = {k: options["transformer"][k] for k in ("d_model", "n_heads", "n_layers")}
        net = ARCHITECTURES["transformer"](
            n_units, n_features, dim_feedforward=options["transformer"]["dim_feedforward"], **arch
        )
    sizes = [p.mask().numel() for p in M.prunable_weights(net)]
    left = M.schedule(sizes, options["n_rounds"], options["rate"], options["output_rate"])
    return left.sum(1) / sum(sizes)


def test_both_decoders_on_a_session_with_a_known_map(tmp_path):
    ds = session()
    out = run_pruning(ds, **TINY)
    path = write(out, tmp_path / "pruning.nc")  # the writer validates the schema
    back = read_dataset(path, schema=SCHEMA)
    assert back.score.dims == ("decoder", "sparsity", "init", "seed")
    assert back.init.values.tolist() == list(INITS)
    assert back.decoder.values.tolist() == ["mlp", "transformer"]
    assert back.seed.values.tolist() == [0, 1]
    for decoder in ("mlp", "transformer"):
        np.testing.assert_allclose(
            back.remaining.sel(decoder=decoder), expected_remaining(decoder, 16, 2, TINY)
        )
    # At 100% of the weights the three lines are one network.
    dense = back.score.sel(sparsity=0)
    assert (dense == dense.sel(init="rewind")).all()
    # Both read the known map (measured: MLP 0.91 and 0.92, transformer 0.67 and 0.67 on
    # seeds 0 and 1 after its 6 short epochs).
    assert (dense.sel(decoder="mlp") > 0.8).all()
    assert (dense.sel(decoder="transformer") > 0.5).all()
    # The transformer's rewound ticket keeps that at 25% of its weights; random pruning
    # does not (measured 0.65, 0.68 against 0.26, 0.21).
    sparsest = back.score.sel(decoder="transformer", sparsity=2)
    assert (sparsest.sel(init="rewind") > dense.sel(decoder="transformer") - 0.05).all()
    assert (sparsest.sel(init="rewind") > sparsest.sel(init="random_prune") + 0.2).all()
    assert np.isfinite(back.r2).all()
    assert (back.early_stop_iteration > 0).all()
    assert (back.early_stop_iteration <= back.steps_trained.mean("fold")).all()
    # Chosen on training folds: both decoders read a history, so they keep its most recent
    # bins (lag 0) rather than shift it by the true lag (0.06 s).
    assert back.lag_s.values.tolist() == [0.0]

    other = write(run_pruning(session(seed=1), **TINY), tmp_path / "b.nc", session_id="b")
    summary = summarize_pruning([back, read_dataset(other)])
    summary_path = write_dataset(
        summary,
        tmp_path / "summary.nc",
        schema=SUMMARY_SCHEMA,
        session_id="all",
        source_file=None,
        params={},
    )
    assert summary.session.values.tolist() == ["synthetic", "b"]
    assert (summary.score_drop.sel(sparsity=0) == 0).all()
    for png in [
        *pruning_figures(path, tmp_path / "figs"),
        *pruning_summary_figure(summary_path, tmp_path / "figs"),
    ]:
        image = plt.imread(png)
        assert image.shape[0] > 300
        assert image[..., :3].std() > 0.01


def test_real_ca1_place_cells(real_data, tmp_path):
    """Lap-wise folds on the real rat CA1 recording; linearised position from 31 units."""
    ds = ingest_file(REAL_CA1, session_id="ca1", **dict(CA1_OPTIONS, bin_size_s=0.05))
    options = {**TINY, "n_folds": 4, "lags_s": [0.0], "history_s": 0.5}
    out = run_pruning(ds, decoders=["mlp"], features=["linearized_position"], **options)
    back = read_dataset(write(out, tmp_path / "ca1.nc", "ca1"), schema=SCHEMA)
    assert back.attrs["grouping"] == "trial"
    left = M.schedule([31 * 10 * 16, 16 * 8, 8], 2, 0.5, 0.25)
    np.testing.assert_allclose(back.remaining.sel(decoder="mlp"), left.sum(1) / left[0].sum())
    # Measured (2 seeds, laps of fold 0): dense R2 0.38 and 0.39; linear read-outs of
    # these place cells reach about 0.3 (the decoding tests).
    assert (back.score.sel(sparsity=0) > 0.3).all()
    assert np.isfinite(back.score).all()


def _no_units(ds):
    return ds.drop_vars("spike_counts").drop_dims("unit")


@pytest.mark.parametrize(
    ("change", "options", "pattern"),
    [
        (None, {"rate": 0.0}, r"pruning.rate: expected a fraction in \(0, 1\); found 0.0"),
        (None, {"rate": 1.5}, r"pruning.rate: expected a fraction in \(0, 1\)"),
        (None, {"output_rate": -0.1}, r"pruning.output_rate: expected a fraction"),
        (None, {"n_rounds": 0}, r"pruning.n_rounds: expected an integer >= 1; found 0"),
        (None, {"n_rounds": 2.5}, r"pruning.n_rounds: expected an integer >= 1"),
        (None, {"scope": "row"}, r"pruning.scope: expected one of \['layer', 'global'\]"),
        (None, {"rewind_step": -1}, r"pruning.rewind_step: expected an integer >= 0"),
        (None, {"rewind_step": 10**6}, r"rewind_step: expected at most the \d+ optimiser steps"),
        (None, {"decoders": ["gru"]}, r"pruning.decoders: expected names among"),
        (None, {"decoders": []}, r"pruning.decoders: expected names among"),
        (None, {"n_seeds": 0}, r"pruning.n_seeds: expected an integer >= 1"),
        (None, {"test_folds": 4}, r"pruning.test_folds: expected an integer in \[1, n_folds=3\]"),
        (None, {"val_fraction": 1.0}, r"pruning.val_fraction: expected a fraction"),
        (None, {"mlp": {"hidden": [8], "depth": 3}}, r"pruning.mlp: .*depth"),
        (None, {"features": ["speed"]}, r"behavior features: expected names among"),
        (_no_units, {}, r"spike_counts: expected a session with units; found no units"),
        (lambda ds: ds.drop_vars("behavior").drop_dims("feature"), {}, r"no behaviour"),
        (lambda ds: ds.assign(trial_index=ds.trial_index % 2), {}, r"trials with behaviour"),
        (
            lambda ds: ds.assign(trial_index=ds.trial_index % 2),
            {"n_folds": 2},
            r"expected at least two training trials per fold; found 1",
        ),
    ],
)
def test_bad_input_is_a_clear_error(change, options, pattern):
    ds = session(n_bins=900)
    if change is not None:
        ds = change(ds)
    with pytest.raises(InputError, match=pattern):
        run_pruning(ds, **{**TINY, "decoders": ["mlp"], **options})


def test_cli_prune_writes_a_valid_file_and_refuses_a_bad_config(tmp_path):
    ds = session(n_bins=1500, n_trials=15)
    ds.attrs["session_id"] = "s1"
    source = write_dataset(
        ds.assign(
            unit_region=("unit", np.array(["CA1"] * 16)),
            feature_group=("feature", np.array(["x", "y"])),
            behavior_missing=("feature", np.zeros(2, dtype=np.int64), {"units": "count"}),
            trial_index=ds.trial_index.assign_attrs(units="1"),
        ),
        tmp_path / "session.nc",
        schema="neuroseq.session/1",
        session_id="s1",
        source_file=None,
        params={},
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"pruning": {**TINY, "decoders": ["mlp"]}}))
    out = tmp_path / "pruning.nc"
    assert main(["prune", str(source), "-o", str(out), "-c", str(config)]) == 0
    result = read_dataset(out, schema=SCHEMA)
    assert json.loads(result.attrs["params"])["rate"] == 0.5
    assert result.attrs["session_id"] == "s1"
    assert main(["pruning-figures", str(out), "-o", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "pruning_tickets.png").stat().st_size > 5_000
    config.write_text(yaml.safe_dump({"pruning": {"rate": 1.5}}))
    assert main(["prune", str(source), "-o", str(tmp_path / "bad.nc"), "-c", str(config)]) == 2
    assert not (tmp_path / "bad.nc").exists()
