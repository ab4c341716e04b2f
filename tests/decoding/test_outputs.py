"""decoding.nc beyond the regression scores: choice decoding, saved weights, progress log,
report traces broken at gaps, the report's tables."""

import json
import logging

import numpy as np
import pytest
import torch
import xarray as xr

from neuroseq import schema
from neuroseq.cli import main
from neuroseq.decoding import GRUDecoder, TransformerDecoder
from neuroseq.decoding.categorical import classify_trials
from neuroseq.decoding.data import lagged
from neuroseq.decoding.evaluate import run_decoding, summarize_decoding
from neuroseq.errors import InputError
from neuroseq.io import read_dataset, write_dataset
from neuroseq.report.decoding import decoding_figures, decoding_summary_figure, with_gaps

FAST = {"max_epochs": 3, "patience": 2, "window": 16, "d_model": 16, "dim_feedforward": 32}


@pytest.fixture(autouse=True)
def deterministic_torch():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    yield
    torch.use_deterministic_algorithms(False)


def choice_session(n_trials=40, bins_per_trial=50, n_units=20, seed=0, coding=True):
    """Trials separated by 10 inter-trial bins; 5 units fire more on right-choice trials."""
    rng = np.random.default_rng(seed)
    n_bins = n_trials * (bins_per_trial + 10)
    z = np.zeros(n_bins)
    for t in range(1, n_bins):
        z[t] = 0.97 * z[t - 1] + 0.243 * rng.standard_normal()
    trial = np.full(n_bins, -1)
    for i in range(n_trials):
        trial[i * 60 + 10 : (i + 1) * 60] = i
    choice = rng.permutation(np.repeat([0, 1], n_trials // 2)).astype(np.int8)
    choice[:2] = -1  # no response: dropped and counted
    rate = np.exp(np.log(0.4) + z[:, None] * rng.normal(0, 0.8, n_units))
    if coding:
        right = np.where(trial >= 0, choice[np.maximum(trial, 0)] == 1, False)
        rate[:, :5] *= np.where(right, 3.0, 1.0)[:, None]
    return xr.Dataset(
        {
            "spike_counts": (("time", "unit"), rng.poisson(rate), {"units": "count"}),
            "behavior": (("time", "feature"), 10 * lagged(z[:, None], 2), {"units": "cm"}),
            "trial_index": ("time", trial, {"units": "1"}),
            "choice": ("trial", choice, {"units": "1"}),
            "unit_region": ("unit", ["CA1"] * n_units, {"units": "1"}),
            "feature_group": ("feature", ["x"], {"units": "1"}),
            "behavior_missing": ("feature", [0], {"units": "1"}),
        },
        coords={
            "time": np.arange(n_bins) * 0.02 + 0.01,
            "feature": ["x"],
            "unit": np.arange(n_units),
            "trial": np.arange(n_trials),
        },
        attrs={"bin_size_s": 0.02, "session_id": "choice"},
    )


def test_choice_is_decoded_above_its_permutation_chance_and_validated(tmp_path):
    ds = choice_session()
    out = run_decoding(ds, decoders=["wiener"], n_folds=3, lags_s=[0.04], n_permutations=19)
    acc = out.choice_balanced_accuracy.values
    assert acc.shape == (1, 3)
    assert acc.mean() > 0.9  # 5 of 20 units fire 3x on right choices
    assert 0.3 < out.choice_chance.item() < 0.7  # permuted labels: about 1/2
    assert out.choice_p_value.item() == pytest.approx(1 / 20)  # beats every permutation
    assert out.choice_balanced_accuracy.attrs["n_trials_dropped"] == 2
    assert json.loads(out.choice_balanced_accuracy.attrs["classes"]) == ["0", "1"]
    path = write_dataset(
        out,
        tmp_path / "d.nc",
        schema="neuroseq.decoding/1",
        session_id="c",
        source_file=None,
        params={},
    )
    back = read_dataset(path, schema="neuroseq.decoding/1")  # validated on write and read
    np.testing.assert_allclose(back.choice_balanced_accuracy, acc)
    broken = back.assign(choice_chance=("model", [1.5], {"units": "1"}))
    with pytest.raises(schema.SchemaError, match="choice_chance outside"):
        schema.validate(broken, "neuroseq.decoding/1")
    assert [p.name for p in decoding_figures(path, tmp_path / "figs")][1] == "decoding_r2.png"
    page = (tmp_path / "figs" / "decoding_table.html").read_text()
    for r2 in back.r2.sel(decoder="wiener").mean("feature").values:  # every fold's R2
        assert f"<td>{r2:.3f}</td>" in page
    assert f"<b>{back.r2.mean():.3f}</b>" in page  # the best (only) decoder's mean, bold
    assert "<td>0.04, 0.04, 0.04</td>" in page  # its lag in each fold
    assert "choice (ridge_classifier)" in page


def test_summary_table_bolds_the_best_decoder_of_each_session(tmp_path):
    results = []
    for seed in (0, 1):
        out = run_decoding(
            choice_session(seed=seed), decoders=["wiener", "kalman"], n_folds=3, lags_s=[0.04],
            n_permutations=0,
        )  # fmt: skip
        results.append(out.assign_attrs(session_id=f"s{seed}"))
    path = write_dataset(
        summarize_decoding(results),
        tmp_path / "summary.nc",
        schema="neuroseq.summary.decoding/1",
        session_id="summary",
        source_file=None,
        params={},
    )
    names = [p.name for p in decoding_summary_figure(path, tmp_path / "figs")]
    assert names == ["decoding.png", "decoding_table.html"]
    page = (tmp_path / "figs" / "decoding_table.html").read_text()
    for out, session in zip(results, ("s0", "s1"), strict=True):
        mean = out.r2.mean(("fold", "feature"))
        best, other = mean.argmax().item(), mean.argmin().item()
        row = page.split(f"<td>{session}</td>")[1].split("</tr>")[0]
        assert f"<b>{float(mean[best]):.3f}</b>" in row
        assert f"<td>{float(mean[other]):.3f}</td>" in row


def test_choice_without_coding_units_stays_at_chance():
    ds = choice_session(coding=False, seed=1)
    V = ds.spike_counts.values
    fold = np.arange(40) % 3
    result = classify_trials(
        V, ds.trial_index.values, ds.trial.values, ds.choice.values, fold, n_folds=3,
        n_permutations=19,
    )  # fmt: skip
    assert result.n_trials == 38
    assert result.p_value > 0.05
    assert abs(np.nanmean(result.balanced_accuracy) - result.chance) < 0.2


def test_too_few_labelled_trials_is_a_clear_error():
    ds = choice_session(n_trials=6)
    with pytest.raises(InputError, match=r"trial variable choice: expected at least 2 classes"):
        run_decoding(ds, decoders=["wiener"], n_folds=3, lags_s=[0.0], n_permutations=0)
    with pytest.raises(InputError, match=r"trial variable nope"):
        run_decoding(ds, decoders=["wiener"], n_folds=3, lags_s=[0.0], categorical=["nope"])


def test_decode_weights_reload_with_weights_only_and_predict_the_same(tmp_path, caplog):
    ds = choice_session(n_trials=12)
    session = write_dataset(
        ds,
        tmp_path / "s.nc",
        schema="neuroseq.session/1",
        session_id="c",
        source_file=None,
        params={},
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        "decoding:\n  decoders: [gru, transformer]\n  n_folds: 3\n  lags_s: [0.04]\n"
        f"  categorical: []\n  gru: {json.dumps(FAST)}\n  transformer: {json.dumps(FAST)}\n"
    )
    weights = tmp_path / "weights"
    with caplog.at_level(logging.INFO):
        main(["decode", str(session), "-o", str(tmp_path / "d.nc"), "-c", str(config),
              "--weights", str(weights)])  # fmt: skip
    saved = sorted(p.name for p in weights.glob("*.pt"))
    assert saved == [f"{d}_fold{k}.pt" for d in ("gru", "transformer") for k in range(3)]
    out = read_dataset(tmp_path / "d.nc", schema="neuroseq.decoding/1")
    meta = json.loads((weights / "transformer_fold1.pt.json").read_text())
    assert meta["context"]["fold"] == 1
    lag = meta["context"]["lag_bins"]
    est = TransformerDecoder.load(weights / "transformer_fold1.pt")
    test = out.test_fold.values == 1
    rows = np.isin(ds.time.values, out.time.values[test])
    pred = est.predict(lagged(ds.spike_counts.values.astype(np.float32), lag))[rows]
    np.testing.assert_allclose(
        pred, out.prediction.sel(decoder="transformer").values[test], rtol=1e-5, atol=1e-5
    )
    with pytest.raises(InputError, match="architecture"):
        GRUDecoder.load(weights / "transformer_fold0.pt")
    # progress: one line per fold, decoder and epoch
    lines = caplog.messages
    assert any(m.startswith("fold 2/3 transformer  epoch 1/3  train ") for m in lines)
    assert any(m.startswith("fold 3/3 gru  epoch ") for m in lines)
    assert any(
        m.startswith("fold 1/3: ") and "lag gru 0.040, transformer 0.040 s" in m for m in lines
    )


def test_traces_break_where_time_jumps():
    t = np.array([0.0, 0.02, 0.04, 1.0, 1.02, 3.0])
    tt, yy = with_gaps(t, np.arange(6.0), 0.02)
    np.testing.assert_array_equal(np.isnan(tt), [0, 0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(yy[~np.isnan(yy)], np.arange(6.0))


def test_causal_smoothing_reads_only_the_past_and_keeps_the_counts():
    from neuroseq.decoding.estimators import smooth_counts

    X = np.random.default_rng(0).poisson(1.0, (400, 3)).astype(np.float32)
    later = X.copy()
    later[200:] += 5
    a, b = smooth_counts(X, 3.0, causal=True), smooth_counts(later, 3.0, causal=True)
    np.testing.assert_array_equal(a[:200], b[:200])
    assert not np.allclose(a[200:], b[200:])
    np.testing.assert_allclose(a[20:380].sum(0), X[20:380].sum(0), rtol=0.05)
    acausal = smooth_counts(X, 3.0, causal=False)
    assert not np.allclose(acausal[:200], smooth_counts(later, 3.0, causal=False)[:200])
