"""Cross-validated decoding of one session: session.nc -> decoding.nc.

Every decoder sees identical folds. Folds hold whole trials (or, without trials,
contiguous blocks); with ``train_between_trials`` each trial takes the bins after it up
to the next, which train but are never scored. Training bins within the history length
of a test bin are dropped (the gap), and the lag between activity and behaviour is
chosen on the training folds only. Test targets never reach a model: each fit receives
the targets with every non-training bin set to NaN.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from sklearn.linear_model import RidgeCV

from neuroseq import schema
from neuroseq.decoding.baselines import KalmanFilterDecoder, WienerFilter
from neuroseq.decoding.categorical import CategoricalResult, categorical_targets, classify_trials
from neuroseq.decoding.data import assign_folds, decoding_data, history, lagged, train_mask
from neuroseq.decoding.estimators import GRUDecoder, TransformerDecoder
from neuroseq.decoding.training import progress_label
from neuroseq.errors import InputError
from neuroseq.summary import stack_sessions

log = logging.getLogger(__name__)

SCHEMA = "neuroseq.decoding/1"
DECODERS = ("wiener", "kalman", "gru", "transformer")


def make_decoder(name: str, n_history: int, options: Mapping[str, Any], seed: int):
    """A fresh, unfitted decoder from its config section."""
    opts = dict(options.get(name) or {})
    try:
        if name == "wiener":
            return WienerFilter(n_history=n_history, **opts)
        if name == "kalman":
            return KalmanFilterDecoder(**opts)
        cls = {"gru": GRUDecoder, "transformer": TransformerDecoder}[name]
        return cls(random_state=seed, **opts)
    except TypeError as exc:
        raise InputError(
            "config", f"decoding.{name}", "constructor arguments of the decoder", str(exc)
        ) from exc


def choose_lag(X: np.ndarray, y: np.ndarray, lags: Sequence[int], n_history: int = 1) -> int:
    """The lag (bins) at which a ridge readout of ``n_history`` bins scores best by inner CV.

    Only the training targets are given (the rest NaN), so the choice is the training
    folds' alone.
    """
    if len(lags) == 1:
        return int(lags[0])
    scores = [
        WienerFilter(n_history=n_history).fit(lagged(X, lag), y).inner_r2_.mean() for lag in lags
    ]
    return int(lags[int(np.argmax(scores))])


def lag_history(name: str, n_history: int) -> int:
    """Bins of history of the linear readout that chooses decoder ``name``'s lag.

    The Kalman filter reads its state from one bin of activity, so its lag is the one at
    which one bin reads behaviour best (about the true lag of behaviour after the
    activity). The Wiener filter, the GRU and the transformer read a history; shifting it
    by that lag would throw away the most recent bins, which tell most about behaviour
    that lags the activity, so theirs is the lag at which a Wiener filter of the
    configured history reads behaviour best (0 or a bin or two).
    """
    return 1 if name == "kalman" else n_history


def regression_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """R2, RMSE and Pearson r per feature over the bins where the target is finite."""
    out = {k: np.full(y.shape[1], np.nan) for k in ("r2", "rmse", "pearson_r")}
    for j in range(y.shape[1]):
        ok = np.isfinite(y[:, j]) & np.isfinite(pred[:, j])
        if ok.sum() < 2:
            continue
        t, p = y[ok, j], pred[ok, j]
        out["r2"][j] = 1 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2)
        out["rmse"][j] = np.sqrt(np.mean((t - p) ** 2))
        out["pearson_r"][j] = np.corrcoef(t, p)[0, 1]
    return out


def run_decoding(
    session: xr.Dataset,
    *,
    decoders: Sequence[str] = DECODERS,
    features: Sequence[str] | None = None,
    n_folds: int = 5,
    history_s: float = 0.2,
    lags_s: Sequence[float] = (0.0, 0.05, 0.1, 0.15, 0.2),
    block_s: float = 30.0,
    train_between_trials: bool = False,
    seed: int = 0,
    categorical: Sequence[str] | None = None,
    n_permutations: int = 100,
    source: object = "session",
    weights_dir: str | Path | None = None,
    **decoder_options: Any,
) -> xr.Dataset:
    """Decode behaviour with every decoder on identical folds; return ``decoding.nc``'s data.

    Parameters
    ----------
    session : xarray.Dataset
        A ``neuroseq.session/1`` Dataset with units and behaviour.
    decoders : sequence of {"wiener", "kalman", "gru", "transformer"}
    features : sequence of str, optional
        Behaviour features to decode (default all).
    n_folds : int
    history_s : float
        History of the Wiener filter and the gap between training and test bins (s).
    lags_s : sequence of float
        Candidate lags of behaviour after activity (s), chosen per decoder and fold on
        training data (see `lag_history`).
    block_s : float
        Block length of sessions without trials (s).
    train_between_trials : bool
        Train on the bins between trials too: each joins the trial before it, and with it
        its fold (see `decoding_data`); only bins inside trials are scored.
    seed : int
    categorical : sequence of str, optional
        Trial variables to classify from trial population vectors (balanced accuracy with
        a permutation chance level, same trial folds); default ``choice`` when the
        session has choices, ``[]`` for none.
    n_permutations : int
        Label permutations for the chance level of every categorical target.
    source : object
        Named in error messages (the input file).
    weights_dir : path, optional
        Where to save every fitted torch decoder, one ``{decoder}_fold{k}.pt`` (the
        ``state_dict``) and ``.pt.json`` (parameters, input scaling, the fold's lag and
        training bins) per decoder and fold, so they can be reloaded without retraining.
    **decoder_options
        Per-decoder constructor arguments, e.g. ``transformer={"d_model": 64}``.
    """
    unknown = sorted(set(decoders) - set(DECODERS))
    if unknown or not decoders:
        raise InputError(
            "config", "decoding.decoders", f"names among {list(DECODERS)}", f"{unknown or 'none'}"
        )
    data = decoding_data(
        session,
        features=list(features or []) or None,
        n_folds=n_folds,
        block_s=block_s,
        between_trials=train_between_trials,
        source=source,
    )
    bin_s = data.bin_size
    n_history = max(1, round(history_s / bin_s))
    lags = sorted({round(lag / bin_s) for lag in lags_s})
    fold = assign_folds(data.group, n_folds, seed, contiguous=data.grouping == "block")
    targets = categorical_targets(session, categorical, source)
    if targets and data.grouping != "trial":
        raise InputError(
            source, "trials", "trials for categorical targets (decoding.categorical)", "none"
        )
    scored = np.flatnonzero((fold >= 0) & data.scored)
    log.info(
        "%s: %d bins x %d units -> %s; %d folds by %s (%d %ss scored), decoders %s",
        source,
        len(data.X),
        data.X.shape[1],
        ", ".join(data.features),
        n_folds,
        data.grouping,
        np.unique(data.group[scored]).size,
        data.grouping,
        ", ".join(decoders),
    )
    if weights_dir is not None:
        weights_dir = Path(weights_dir)
        weights_dir.mkdir(parents=True, exist_ok=True)
    prediction = np.full((len(decoders), scored.size, len(data.features)), np.nan)
    metrics = {
        k: np.full((len(decoders), n_folds, len(data.features)), np.nan)
        for k in ("r2", "rmse", "pearson_r")
    }
    fit_seconds = np.zeros((len(decoders), n_folds))
    curves: dict[tuple[int, int], tuple[list[float], list[float]]] = {}
    chosen = np.zeros((len(decoders), n_folds))
    for k in range(n_folds):
        train = train_mask(fold, k, gap=n_history)
        test = (fold == k) & data.scored
        y_train = np.where(train[:, None], data.y, np.nan)
        lag_of = {
            h: choose_lag(data.X, y_train, lags, h)
            for h in {lag_history(name, n_history) for name in decoders}
        }
        log.info(
            "fold %d/%d: %d training bins, %d test bins, lag %s s (chosen on training bins)",
            k + 1,
            n_folds,
            int((train & np.isfinite(data.y).any(1)).sum()),
            int((test & np.isfinite(data.y).any(1)).sum()),
            ", ".join(
                f"{name} {lag_of[lag_history(name, n_history)] * bin_s:.3f}" for name in decoders
            ),
        )
        for d, name in enumerate(decoders):
            lag = lag_of[lag_history(name, n_history)]
            chosen[d, k] = lag * bin_s
            X = lagged(data.X, lag)
            est = make_decoder(name, n_history, decoder_options, seed)
            t0 = time.perf_counter()
            if name in ("gru", "transformer"):
                with progress_label(f"fold {k + 1}/{n_folds} {name}"):
                    est.fit(X, y_train, groups=np.where(train, data.group, -1))
                curves[d, k] = (est.history_.train_loss, est.history_.val_loss)
                if weights_dir is not None:
                    est.save(
                        weights_dir / f"{name}_fold{k}.pt",
                        context={
                            "session_id": str(session.attrs.get("session_id", "")),
                            "decoder": name,
                            "fold": k,
                            "lag_bins": int(lag),
                            "features": data.features,
                            "bin_size_s": bin_s,
                            "inputs": "spike_counts shifted by lag_bins (neuroseq.decoding."
                            "data.lagged); trained on the other folds' trials (with "
                            "train_between_trials, also the bins after each up to the next "
                            "trial), minus n_history_bins around this fold's",
                        },
                    )
            else:
                est.fit(X, y_train)
            fit_seconds[d, k] = time.perf_counter() - t0
            pred = est.predict(X)
            for key, value in regression_scores(data.y[test], pred[test]).items():
                metrics[key][d, k] = value
            prediction[d, np.isin(scored, np.flatnonzero(test))] = pred[test]
            log.info(
                "fold %d/%d %-12s R2 %s (fit %.1f s)",
                k + 1,
                n_folds,
                name,
                np.round(metrics["r2"][d, k], 3),
                fit_seconds[d, k],
            )
    ds = _dataset(
        data, decoders, scored, fold, prediction, metrics, fit_seconds, curves, chosen, n_folds
    )
    for name in targets:
        trials = session.trial.values
        trial_fold = np.full(trials.size, -1)
        in_fold = data.group >= 0
        trial_fold[np.searchsorted(trials, data.group[in_fold])] = fold[in_fold]
        result = classify_trials(
            data.X,
            np.where(data.scored, data.group, -1),  # each trial's own bins
            trials,
            session[name].values,
            trial_fold,
            n_folds=n_folds,
            n_permutations=n_permutations,
            seed=seed,
            source=source,
            name=name,
        )
        ds.update(_categorical_variables(name, result, n_permutations))
    ceiling = ceiling_r2(session, data, fold, n_folds)
    if ceiling is not None:
        ds["ceiling_r2"] = (
            "feature",
            ceiling,
            {
                "units": "1",
                "long_name": "cross-validated R2 of a ridge readout of the "
                "simulator's true latents that drive units, at the true lag (same folds)",
            },
        )
    ds.attrs.update(
        grouping=data.grouping,
        bin_size_s=bin_s,
        n_history_bins=n_history,
        missing_targets=json.dumps(
            {f: int(np.isnan(data.y[scored, j]).sum()) for j, f in enumerate(data.features)}
        ),
    )
    return ds


def _dataset(
    data, decoders, scored, fold, prediction, metrics, fit_seconds, curves, chosen, n_folds
) -> xr.Dataset:
    n_epochs = max((len(c[0]) for c in curves.values()), default=0)
    losses = {k: np.full((len(decoders), n_folds, n_epochs), np.nan) for k in ("train", "val")}
    for (d, k), (tr, va) in curves.items():
        losses["train"][d, k, : len(tr)] = tr
        losses["val"][d, k, : len(va)] = va
    units = "behaviour units (see feature_units)"
    return xr.Dataset(
        {
            "r2": (("decoder", "fold", "feature"), metrics["r2"], {"units": "1"}),
            "rmse": (("decoder", "fold", "feature"), metrics["rmse"], {"units": units}),
            "pearson_r": (("decoder", "fold", "feature"), metrics["pearson_r"], {"units": "1"}),
            "prediction": (
                ("decoder", "time", "feature"),
                prediction,
                {"units": units, "long_name": "held-out prediction of each scored bin"},
            ),
            "target": (
                ("time", "feature"),
                data.y[scored],
                {
                    "units": units,
                    "long_name": "behaviour; NaN where tracking was lost "
                    "(never trained on nor scored)",
                },
            ),
            "test_fold": (
                "time",
                fold[scored],
                {"units": "1", "long_name": "fold in which the bin was held out"},
            ),
            "train_loss": (
                ("decoder", "fold", "epoch"),
                losses["train"],
                {
                    "units": "1",
                    "long_name": "masked MSE on standardised targets; NaN for "
                    "decoders fitted in closed form",
                },
            ),
            "val_loss": (("decoder", "fold", "epoch"), losses["val"], {"units": "1"}),
            "fit_seconds": (("decoder", "fold"), fit_seconds, {"units": "s"}),
            "lag_s": (
                ("decoder", "fold"),
                chosen,
                {
                    "units": "s",
                    "long_name": "lag chosen on training folds (behaviour after activity)",
                },
            ),
        },
        coords={
            "decoder": list(decoders),
            "fold": np.arange(n_folds),
            "feature": data.features,
            "time": data.time[scored],
            "epoch": np.arange(n_epochs),
        },
    )


def _categorical_variables(
    name: str, result: CategoricalResult, n_permutations: int
) -> xr.Dataset:
    model = ["ridge_classifier"]
    about = {
        "classes": json.dumps(result.classes),
        "n_trials": result.n_trials,
        "n_trials_dropped": result.n_dropped,
        "population_vector": "mean spike count per bin of each unit over the trial",
    }
    return xr.Dataset(
        {
            f"{name}_balanced_accuracy": (
                ("model", "fold"),
                result.balanced_accuracy[None],
                {
                    "units": "1",
                    "long_name": f"balanced accuracy of {name} on held-out trials "
                    "(ridge classifier, penalty by leave-one-out CV on training trials)",
                    **about,
                },
            ),
            f"{name}_alpha": (
                ("model", "fold"),
                result.alpha[None],
                {"units": "1", "long_name": "ridge penalty chosen by leave-one-out CV"},
            ),
            f"{name}_chance": (
                "model",
                [result.chance],
                {
                    "units": "1",
                    "long_name": f"mean balanced accuracy over {n_permutations} label "
                    "permutations (whole CV rerun each time)",
                },
            ),
            f"{name}_chance_q95": (
                "model",
                [np.quantile(result.null, 0.95) if result.null.size else np.nan],
                {"units": "1", "long_name": "95th percentile of the permutation null"},
            ),
            f"{name}_p_value": (
                "model",
                [result.p_value],
                {"units": "1", "long_name": "(1 + #null >= observed) / (1 + permutations)"},
            ),
        },
        coords={"model": model},
    )


def ceiling_r2(session: xr.Dataset, data, fold: np.ndarray, n_folds: int) -> np.ndarray | None:
    """R2 of the best linear readout of the ground-truth latent (demo sessions only)."""
    if "true_latent" not in session or "ground_truth" not in session.attrs:
        return None
    truth = json.loads(session.attrs["ground_truth"])
    visible = np.asarray(truth["latent_region_map"]).any(1)  # latents some unit carries
    z = session.true_latent.values[:, visible]
    lag = round(truth["lag_s"] / data.bin_size)
    Z = history(lagged(z, lag), 3)
    pred = np.full(data.y.shape, np.nan)
    for k in range(n_folds):
        train = (fold >= 0) & (fold != k) & np.isfinite(data.y).all(1)
        model = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(Z[train], data.y[train])
        pred[fold == k] = model.predict(Z[fold == k])
    scored = (fold >= 0) & data.scored
    return regression_scores(data.y[scored], pred[scored])["r2"]


def summarize_decoding(results: Sequence[xr.Dataset]) -> xr.Dataset:
    """Mean R2 over folds per session, decoder and feature, stacked along ``session``."""
    ids = [str(r.attrs.get("session_id", i)) for i, r in enumerate(results)]
    parts = []
    for r in results:
        part = xr.Dataset(
            {
                "r2": r.r2.mean("fold"),
                "r2_sd": r.r2.std("fold"),
                "fit_seconds": r.fit_seconds.sum("fold"),
            }
        )
        if "ceiling_r2" in r:
            part["ceiling_r2"] = r.ceiling_r2
        parts.append(part)
    ds = stack_sessions(parts, ids, source="decoding results")
    for name, units in (("r2", "1"), ("r2_sd", "1"), ("fit_seconds", "s"), ("ceiling_r2", "1")):
        if name in ds:
            ds[name].attrs["units"] = units
    ds["mean_r2"] = ds.r2.mean("feature")
    ds["mean_r2"].attrs["units"] = "1"
    return ds


@schema.register(SCHEMA)
def _validate(ds: xr.Dataset) -> None:
    for name, dims in [
        ("r2", ("decoder", "fold", "feature")),
        ("rmse", ("decoder", "fold", "feature")),
        ("prediction", ("decoder", "time", "feature")),
        ("target", ("time", "feature")),
        ("test_fold", ("time",)),
        ("fit_seconds", ("decoder", "fold")),
    ]:
        schema.require(ds, SCHEMA, name, dims, "iuf")
    if not np.isfinite(ds.r2).any("feature").all():
        raise schema.SchemaError(f"{SCHEMA}: a decoder has no finite R2 in some fold")
    suffix = "_balanced_accuracy"
    for var in [str(v) for v in ds.data_vars if str(v).endswith(suffix)]:
        name = var[: -len(suffix)]
        schema.require(ds, SCHEMA, var, ("model", "fold"), "f")
        for part in ("chance", "chance_q95", "p_value"):
            schema.require(ds, SCHEMA, f"{name}_{part}", ("model",), "f")
        for part in ("balanced_accuracy", "chance", "p_value"):
            values = ds[f"{name}_{part}"].values
            finite = values[np.isfinite(values)]
            if not ((finite >= 0) & (finite <= 1)).all():
                raise schema.SchemaError(f"{SCHEMA}: {name}_{part} outside [0, 1]")


@schema.register("neuroseq.summary.decoding/1")
def _validate_summary(ds: xr.Dataset) -> None:
    schema.require(ds, "neuroseq.summary.decoding/1", "r2", ("session", "decoder", "feature"), "f")
