"""NNGP against finite-width networks on one session: session.nc -> nngp.nc.

Each trial is one sample (the population vector in a window around an alignment time)
with one target (a trial variable or a behaviour feature). Folds hold trials (stratified
by class for classification). In every fold the NNGP's hyperparameters (depth,
weight_var, bias_var, noise) are chosen on the training trials alone; finite networks of
the chosen depth, activation and prior variances, at every configured width and seed, are
trained on the same trials, and everything is scored on the held-out trials.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.stats import pearsonr, spearmanr
from sklearn.model_selection import KFold, StratifiedKFold

from neuroseq import schema
from neuroseq.errors import InputError
from neuroseq.nngp.data import TrialData, trial_data
from neuroseq.nngp.finite import FiniteMLPClassifier, FiniteMLPRegressor
from neuroseq.nngp.gp import DEFAULT_NOISE, NNGPClassifier, NNGPRegressor
from neuroseq.nngp.training import OPTIMIZERS
from neuroseq.nngp.validation import TARGET_OFF, TARGET_ON
from neuroseq.summary import stack_sessions

log = logging.getLogger(__name__)

SCHEMA = "neuroseq.nngp/1"
SUMMARY_SCHEMA = "neuroseq.summary.nngp/1"
TRANSFORMS = ("none", "sqrt", "log1p")
LEARNING_RATES = {"adam": 1e-3, "sgd": 1e-2}


def preprocess(counts: np.ndarray, train: np.ndarray, transform: str) -> np.ndarray:
    """Transform the counts, then z-score every unit with the training trials' statistics."""
    x = {"none": lambda c: c, "sqrt": np.sqrt, "log1p": np.log1p}[transform](counts)
    mean = x[train].mean(axis=0)
    sd = x[train].std(axis=0)
    return (x - mean) / np.where(sd > 0, sd, 1.0)


def make_folds(data: TrialData, n_folds: int, seed: int) -> np.ndarray:
    """Fold of every sample: stratified by class for classification, shuffled (seeded)."""
    fold = np.empty(len(data.target), dtype=np.int64)
    if data.task == "classification":
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(data.counts, data.target.astype(str))
    else:
        splits = KFold(n_folds, shuffle=True, random_state=seed).split(data.counts)
    for k, (_, test) in enumerate(splits):
        fold[test] = k
    return fold


def _check_sizes(data: TrialData, n_folds: int, min_trials: int, source: object) -> None:
    n = len(data.target)
    if n < max(min_trials, 2 * n_folds):
        raise InputError(
            source,
            "trials",
            f"at least {max(min_trials, 2 * n_folds)} usable trials for nngp",
            f"{n} (dropped: {data.dropped or 'none'})",
        )
    if data.task == "regression" and np.ptp(data.target) == 0:
        raise InputError(
            source, "nngp.target", "a target that varies across trials", "one constant value"
        )
    if data.task == "classification":
        labels, counts = np.unique(data.target.astype(str), return_counts=True)
        if len(labels) < 2 or counts.min() < n_folds:
            raise InputError(
                source,
                "nngp.target",
                f"at least 2 classes with >= n_folds={n_folds} trials each",
                str(dict(zip(labels.tolist(), counts.tolist(), strict=True))),
            )


def score(task: str, target: np.ndarray, prediction: np.ndarray) -> float:
    """Accuracy (classification) or R2 around the targets' mean (regression)."""
    if task == "classification":
        return float(np.mean(prediction == target))
    prediction = np.asarray(prediction, dtype=float)
    if not np.isfinite(prediction).all():
        return float("nan")
    sst = float(np.sum((target - target.mean()) ** 2))
    return 1.0 - float(np.sum((target - prediction) ** 2)) / sst if sst > 0 else float("nan")


def run_nngp(
    session: xr.Dataset,
    *,
    target: str = "choice",
    task: str = "auto",
    align: str = "start_time",
    window_s: Sequence[float] = (0.0, 0.5),
    transform: str = "sqrt",
    n_folds: int = 5,
    min_trials: int = 30,
    depth: int | Sequence[int] = (1, 2, 3),
    activation: str = "relu",
    weight_var: float | Sequence[float] = (1.0, 2.0),
    bias_var: float | Sequence[float] = (0.0, 0.1),
    noise: float | Sequence[float] = DEFAULT_NOISE,
    selection: str = "evidence",
    widths: Sequence[int] = (16, 64, 256),
    n_seeds: int = 3,
    optimizers: Sequence[str] = ("adam",),
    learning_rates: Mapping[str, float] | None = None,
    mlp: Mapping[str, Any] | None = None,
    seed: int = 0,
    source: object = "session",
) -> xr.Dataset:
    """Decode a trial-level target with the NNGP and with finite networks of growing width.

    Parameters
    ----------
    session : xarray.Dataset
        A ``neuroseq.session/1`` Dataset with units and trials.
    target, task, align, window_s : see :func:`neuroseq.nngp.data.trial_data`.
    transform : {"sqrt", "log1p", "none"}
        Applied to the counts before every unit is z-scored with training statistics.
    n_folds, min_trials : int
        Cross-validation by trial; fewer usable trials than ``min_trials`` is an error.
    depth, activation, weight_var, bias_var, noise, selection
        The NNGP (see :class:`neuroseq.nngp.NNGPRegressor`); lists are searched on the
        training trials of each fold.
    widths : sequence of int
        Hidden widths of the finite networks (the NNGP's chosen depth and prior).
    n_seeds : int
        Networks per width and optimiser (seeds ``seed .. seed + n_seeds - 1``).
    optimizers : sequence of {"adam", "sgd"}
        One model per optimiser, named ``mlp_<optimizer>``.
    learning_rates : mapping, optional
        Learning rate per optimiser (default adam 1e-3, sgd 1e-2).
    mlp : mapping, optional
        Other :class:`FiniteMLPClassifier` arguments (batch_size, max_epochs, patience,
        weight_decay, momentum, val_fraction, device).
    seed : int
        Seeds the folds and the networks.

    Returns
    -------
    xarray.Dataset
        ``neuroseq.nngp/1``: ``score`` (model, width, seed) and ``nngp_score``,
        ``predictive_std`` and ``abs_error`` (sample), ``std_error_corr``, and the chosen
        hyperparameters per fold (variables and ``attrs["chosen_hyperparameters"]``).

    Notes
    -----
    Scores are pooled over the held-out trials of every fold: accuracy, or R2 for
    regression. ``abs_error`` is ``|y - m|`` for regression and, for classification, the
    mean over classes of ``|Y_c - m_c|`` with ``Y`` the one-hot (-0.1 / 0.9) target: the
    quantity whose relation to the predictive standard deviation Lee et al. (2018, Fig. 3)
    report. ``std_error_corr`` is Pearson's r between the two over held-out trials.
    """
    data = trial_data(
        session, target=target, align=align, window_s=tuple(window_s), task=task, source=source
    )
    if transform not in TRANSFORMS:
        raise InputError(source, "nngp.transform", f"one of {list(TRANSFORMS)}", repr(transform))
    if not isinstance(n_folds, int) or n_folds < 2:
        raise InputError(source, "nngp.n_folds", "an integer >= 2", repr(n_folds))
    bad = [o for o in optimizers if o not in OPTIMIZERS]
    if bad or not optimizers:
        raise InputError(source, "nngp.optimizers", f"names among {list(OPTIMIZERS)}", f"{bad}")
    if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
        raise InputError(source, "nngp.widths", "a non-empty list of integers >= 1", f"{widths}")
    if not isinstance(n_seeds, int) or n_seeds < 1:
        raise InputError(source, "nngp.n_seeds", "an integer >= 1", repr(n_seeds))
    _check_sizes(data, n_folds, min_trials, source)
    rates = {**LEARNING_RATES, **(learning_rates or {})}
    classify = data.task == "classification"
    y = data.target.astype(str) if classify else data.target
    classes = np.unique(y) if classify else None
    fold = make_folds(data, n_folds, seed)
    widths = sorted(set(widths))
    models = [f"mlp_{o}" for o in optimizers]
    n = len(y)
    shape = (len(models), len(widths), n_seeds)
    mlp_pred = np.empty((*shape, n), dtype=object if classify else float)
    fold_scores = np.full((*shape, n_folds), np.nan)
    best_epoch = np.full((*shape, n_folds), -1, dtype=np.int64)
    fit_seconds = np.zeros(shape[:2])
    gp_pred = np.empty(n, dtype=object if classify else float)
    gp_std, abs_error = np.zeros(n), np.zeros(n)
    gp_fold, chance_pred = np.full(n_folds, np.nan), np.empty(n, dtype=y.dtype)
    chosen: list[dict[str, float]] = []
    gp_seconds = 0.0
    gp_options = dict(
        depth=depth,
        activation=activation,
        weight_var=weight_var,
        bias_var=bias_var,
        noise=noise,
        selection=selection,
    )
    for k in range(n_folds):
        train, test = fold != k, fold == k
        X = preprocess(data.counts, train, transform)
        t0 = time.perf_counter()
        gp = (NNGPClassifier if classify else NNGPRegressor)(**gp_options).fit(X[train], y[train])
        if classify:
            mean, std = gp.predict_mean(X[test], return_std=True)
            gp_pred[test] = gp.classes_[np.argmax(mean, axis=1)]
            onehot = np.where(y[test][:, None] == gp.classes_[None, :], TARGET_ON, TARGET_OFF)
            abs_error[test] = np.mean(np.abs(onehot - mean), axis=1)
            values, counts = np.unique(y[train], return_counts=True)
            chance_pred[test] = values[np.argmax(counts)]
        else:
            mean, std = gp.predict(X[test], return_std=True)
            gp_pred[test] = mean
            abs_error[test] = np.abs(y[test] - mean)
            chance_pred[test] = y[train].mean()
        gp_std[test] = std
        gp_seconds += time.perf_counter() - t0
        gp_fold[k] = score(data.task, y[test], gp_pred[test])
        chosen.append(
            {
                "depth": gp.depth_,
                "weight_var": gp.weight_var_,
                "bias_var": gp.bias_var_,
                "noise": gp.noise_,
                "noise_var": gp.noise_var_,
            }
        )
        log.info("fold %d NNGP %s %.3f (%s)", k, data.task, gp_fold[k], chosen[-1])
        for m, optimizer in enumerate(optimizers):
            for w, width in enumerate(widths):
                for s in range(n_seeds):
                    net = (FiniteMLPClassifier if classify else FiniteMLPRegressor)(
                        width=width,
                        depth=gp.depth_,
                        activation=activation,
                        weight_var=gp.weight_var_,
                        bias_var=gp.bias_var_,
                        optimizer=optimizer,
                        lr=rates[optimizer],
                        random_state=seed + s,
                        **dict(mlp or {}),
                    )
                    t0 = time.perf_counter()
                    net.fit(X[train], y[train])
                    fit_seconds[m, w] += time.perf_counter() - t0
                    pred = net.predict(X[test])
                    if net.diverged_:
                        pred = np.full(test.sum(), None if classify else np.nan)
                    mlp_pred[m, w, s, test] = pred
                    fold_scores[m, w, s, k] = score(data.task, y[test], pred)
                    best_epoch[m, w, s, k] = net.history_.best_epoch
                log.info(
                    "fold %d %s width %d: %s",
                    k,
                    models[m],
                    width,
                    np.round(fold_scores[m, w, :, k], 3),
                )
    scores = np.array([score(data.task, y, mlp_pred[idx]) for idx in np.ndindex(*shape)]).reshape(
        shape
    )
    ds = _dataset(
        data,
        y,
        models,
        widths,
        n_seeds,
        fold,
        scores,
        fold_scores,
        best_epoch,
        fit_seconds,
        gp_pred,
        gp_std,
        abs_error,
        gp_fold,
        score(data.task, y, gp_pred),
        score(data.task, y, chance_pred),
        gp_seconds,
        chosen,
    )
    ds["prediction"] = (
        ("model", "width", "seed", "sample"),
        mlp_pred.astype(str) if classify else mlp_pred.astype(float),
        {"units": ds.target.attrs["units"], "long_name": "held-out prediction of each network"},
    )
    ds.attrs.update(
        target=target,
        task=data.task,
        activation=str(activation),
        selection=selection,
        n_trials_used=int(n),
        dropped_trials=json.dumps(data.dropped),
        classes=json.dumps([str(c) for c in classes] if classify else []),
        chosen_hyperparameters=json.dumps(chosen),
    )
    return ds


def _dataset(
    data,
    y,
    models,
    widths,
    n_seeds,
    fold,
    scores,
    fold_scores,
    best_epoch,
    fit_seconds,
    gp_pred,
    gp_std,
    abs_error,
    gp_fold,
    gp_score,
    chance,
    gp_seconds,
    chosen,
) -> xr.Dataset:
    classify = data.task == "classification"
    metric = "accuracy" if classify else "R2"
    units = data.target_units if not classify else "1"
    pearson = pearsonr(gp_std, abs_error).statistic if np.ptp(gp_std) > 0 else np.nan
    spearman = spearmanr(gp_std, abs_error).statistic if np.ptp(gp_std) > 0 else np.nan
    chosen_units = {"depth": "count", "weight_var": "1", "bias_var": "1", "noise": "1"}
    return xr.Dataset(
        {
            "score": (
                ("model", "width", "seed"),
                scores,
                {"units": "1", "long_name": f"held-out {metric} of the finite network"},
            ),
            "fold_score": (("model", "width", "seed", "fold"), fold_scores, {"units": "1"}),
            "best_epoch": (
                ("model", "width", "seed", "fold"),
                best_epoch,
                {"units": "count", "long_name": "epoch kept by early stopping (0-based)"},
            ),
            "fit_seconds": (
                ("model", "width"),
                fit_seconds,
                {"units": "s", "long_name": "training time summed over seeds and folds"},
            ),
            "nngp_score": ((), gp_score, {"units": "1", "long_name": f"NNGP held-out {metric}"}),
            "nngp_fold_score": ("fold", gp_fold, {"units": "1"}),
            "chance_score": (
                (),
                chance,
                {
                    "units": "1",
                    "long_name": f"held-out {metric} of the training folds' "
                    + ("majority class" if classify else "mean"),
                },
            ),
            "nngp_fit_seconds": ((), gp_seconds, {"units": "s"}),
            "predictive_std": (
                "sample",
                gp_std,
                {"units": units, "long_name": "NNGP predictive std of the latent function"},
            ),
            "abs_error": (
                "sample",
                abs_error,
                {
                    "units": units,
                    "long_name": "|target - NNGP mean|"
                    + (" averaged over the one-hot outputs" if classify else ""),
                },
            ),
            "std_error_corr": (
                (),
                pearson,
                {"units": "1", "long_name": "Pearson r of predictive_std and abs_error"},
            ),
            "std_error_spearman": ((), spearman, {"units": "1"}),
            "target": ("sample", y if classify else y.astype(float), {"units": units}),
            "nngp_prediction": (
                "sample",
                gp_pred.astype(str) if classify else gp_pred.astype(float),
                {"units": units},
            ),
            "test_fold": ("sample", fold, {"units": "1"}),
            **{
                f"chosen_{name}": (
                    "fold",
                    np.array([c[name] for c in chosen]),
                    {"units": u, "long_name": f"{name} chosen on the fold's training trials"},
                )
                for name, u in chosen_units.items()
            },
        },
        coords={
            "model": models,
            "width": np.asarray(widths, dtype=np.int64),
            "seed": np.arange(n_seeds),
            "fold": np.arange(fold.max() + 1),
            "sample": ("sample", data.trial, {"long_name": "trial index in session.nc"}),
        },
    )


def summarize_nngp(results: Sequence[xr.Dataset]) -> xr.Dataset:
    """Scores across sessions: mean and sd over seeds per (session, model, width), NNGP."""
    ids = [str(r.attrs.get("session_id", i)) for i, r in enumerate(results)]
    parts = []
    for r in results:
        parts.append(
            xr.Dataset(
                {
                    "score": r.score.mean("seed"),
                    "score_sd": r.score.std("seed"),
                    "nngp_score": r.nngp_score,
                    "chance_score": r.chance_score,
                    "std_error_corr": r.std_error_corr,
                    "target": ((), str(r.attrs.get("target", ""))),
                    "task": ((), str(r.attrs.get("task", ""))),
                }
            )
        )
    ds = stack_sessions(parts, ids, source="nngp results")
    for name in ("score", "score_sd", "nngp_score", "chance_score", "std_error_corr"):
        ds[name].attrs["units"] = "1"
    ds["score"].attrs["long_name"] = "held-out score (accuracy or R2), mean over seeds"
    return ds


@schema.register(SCHEMA)
def _validate(ds: xr.Dataset) -> None:
    for name, dims in [
        ("score", ("model", "width", "seed")),
        ("nngp_score", ()),
        ("chance_score", ()),
        ("predictive_std", ("sample",)),
        ("abs_error", ("sample",)),
        ("std_error_corr", ()),
        ("test_fold", ("sample",)),
    ]:
        schema.require(ds, SCHEMA, name, dims, "iuf")
    if not np.isfinite(ds.nngp_score):
        raise schema.SchemaError(f"{SCHEMA}: non-finite nngp_score")
    std = ds.predictive_std.values
    if not (np.isfinite(std).all() and (std >= 0).all()):
        raise schema.SchemaError(f"{SCHEMA}: predictive_std must be finite and >= 0")
    if not (ds.width.values >= 1).all():
        raise schema.SchemaError(f"{SCHEMA}: widths must be >= 1")
    for key in ("target", "task", "chosen_hyperparameters"):
        if key not in ds.attrs:
            raise schema.SchemaError(f"{SCHEMA}: attrs {key!r} missing")
    chosen = json.loads(ds.attrs["chosen_hyperparameters"])
    if len(chosen) != ds.sizes["fold"]:
        raise schema.SchemaError(f"{SCHEMA}: one set of chosen hyperparameters per fold")


@schema.register(SUMMARY_SCHEMA)
def _validate_summary(ds: xr.Dataset) -> None:
    schema.require(ds, SUMMARY_SCHEMA, "score", ("session", "model", "width"), "f")
    schema.require(ds, SUMMARY_SCHEMA, "nngp_score", ("session",), "f")
