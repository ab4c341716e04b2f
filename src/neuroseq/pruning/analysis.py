"""Lottery tickets of the decoders of one session: session.nc -> pruning.nc.

The folds are the decoders' (:mod:`neuroseq.decoding.evaluate`): whole trials (or
contiguous blocks) are held out, with the bins after each trial up to the next (which
train but are never scored), training bins within the history length of a test bin
are dropped, and the lag of behaviour after activity is chosen on the training folds.
In every held-out fold, each decoder is pruned iteratively (:func:`find_tickets`) from
several seeds, and every round's network is scored by its held-out R2.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from neuroseq import schema
from neuroseq.decoding.data import assign_folds, decoding_data, history, lagged, train_mask
from neuroseq.decoding.evaluate import choose_lag
from neuroseq.errors import InputError
from neuroseq.pruning.lottery import INITS, check_options, find_tickets
from neuroseq.pruning.tasks import ArrayTask, SequenceTask
from neuroseq.summary import stack_sessions

log = logging.getLogger(__name__)

SCHEMA = "neuroseq.pruning/1"
SUMMARY_SCHEMA = "neuroseq.summary.pruning/1"
DECODERS = ("mlp", "transformer")
#: The MLP decoder's defaults: LeNet-300-100 and Frankle & Carbin's (2019) Adam settings.
MLP_DEFAULTS: dict[str, Any] = {
    "hidden": [300, 100],
    "lr": 1.2e-3,
    "weight_decay": 0.0,
    "batch_size": 60,
    "max_epochs": 50,
    "patience": 5,
}


def run_pruning(
    session: xr.Dataset,
    *,
    decoders: Sequence[str] = DECODERS,
    features: Sequence[str] | None = None,
    n_folds: int = 5,
    test_folds: int | None = None,
    history_s: float = 0.2,
    lags_s: Sequence[float] = (0.0, 0.05, 0.1, 0.15, 0.2),
    block_s: float = 30.0,
    train_between_trials: bool = False,
    val_fraction: float = 0.15,
    n_rounds: int = 5,
    rate: float = 0.2,
    output_rate: float = 0.1,
    scope: str = "layer",
    rewind_step: int = 0,
    n_seeds: int = 3,
    seed: int = 0,
    device: str = "auto",
    mlp: Mapping[str, Any] | None = None,
    transformer: Mapping[str, Any] | None = None,
    source: object = "session",
) -> xr.Dataset:
    """Prune each decoder of one session iteratively; score every round on held-out trials.

    Parameters
    ----------
    session : xarray.Dataset
        A ``neuroseq.session/1`` Dataset with units and behaviour.
    decoders : sequence of {"mlp", "transformer"}
        ``mlp``: a ReLU network on the lagged spike history of every unit (``history_s``),
        one bin at a time; ``transformer``: the transformer decoder of
        :mod:`neuroseq.decoding` (its architecture and training loop).
    features, n_folds, history_s, lags_s, block_s, train_between_trials : as in
        :func:`neuroseq.decoding.evaluate.run_decoding` (same folds, gap and lag choice).
    test_folds : int, optional
        Hold out only the first ``test_folds`` of the ``n_folds`` folds (default: all).
    val_fraction : float
        The last trials (or blocks) of the training folds, this fraction of them, decide
        early stopping.
    n_rounds, rate, output_rate, scope, rewind_step :
        The pruning schedule (see :func:`neuroseq.pruning.find_tickets`).
    n_seeds : int
        Searches from seeds ``seed, seed + 1, ...``; ``seed`` also deals the folds.
    device : {"auto", "cpu", "cuda"}
    mlp : mapping, optional
        ``hidden`` (list of widths), ``lr``, ``weight_decay``, ``batch_size``,
        ``max_epochs``, ``patience`` (defaults: ``MLP_DEFAULTS``).
    transformer : mapping, optional
        :class:`neuroseq.decoding.TransformerDecoder` arguments (architecture, ``window``
        and training; ``val_fraction``, ``device`` and ``random_state`` come from here).

    Returns
    -------
    xarray.Dataset
        Schema ``neuroseq.pruning/1`` (without provenance attrs): ``score`` (decoder,
        sparsity, init, seed), ``early_stop_iteration`` (same dims), ``remaining``
        (decoder, sparsity), ``r2`` per fold and feature, ``weights_remaining``,
        ``lag_s`` (fold), ``fit_seconds`` (decoder).

    Notes
    -----
    Frankle & Carbin (2019): a dense network trained from theta_0 is pruned by magnitude,
    round after round, and its survivors are reset to theta_0 before retraining. A
    "winning ticket" keeps the dense network's score at a small fraction of its weights,
    while the same mask re-initialised (``reinit``) or a random mask of the same size
    (``random_prune``) does not. ``sparsity`` indexes the pruning round (0: dense);
    ``remaining`` gives the fraction of weights left.
    """
    _check(decoders, n_folds, test_folds, val_fraction, n_seeds)
    check_options(n_rounds, rate, output_rate, scope, rewind_step)
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
    held_out = list(range(test_folds or n_folds))
    seeds = [seed + i for i in range(n_seeds)]
    shape = (len(decoders), n_rounds + 1, len(INITS), n_seeds, len(held_out))
    r2 = np.full((*shape, len(data.features)), np.nan)
    early = np.zeros(shape)
    trained = np.zeros(shape, dtype=np.int64)
    counts = np.zeros((len(decoders), n_rounds + 1), dtype=np.int64)
    fit_seconds = np.zeros(len(decoders))
    chosen = np.zeros(len(held_out))
    schedule = dict(
        n_rounds=n_rounds, rate=rate, output_rate=output_rate, scope=scope, rewind_step=rewind_step
    )
    for f, k in enumerate(held_out):
        train = train_mask(fold, k, gap=n_history)
        test = (fold == k) & data.scored & np.isfinite(data.y).any(1)
        y_train = np.where(train[:, None], data.y, np.nan)
        # Both decoders read a history, so the lag is the one a Wiener filter of that
        # history prefers (neuroseq.decoding.evaluate.lag_history), not the true lag.
        lag = choose_lag(data.X, y_train, lags, n_history)
        chosen[f] = lag * bin_s
        train &= np.isfinite(data.y).any(1)
        val = _validation(train, data.group, val_fraction, source)
        X, y = _scale(lagged(data.X, lag), data.y, train)
        for d, name in enumerate(decoders):
            task = _task(name, X, y, train, val, test, n_history, mlp, transformer, device)
            t0 = time.perf_counter()
            for s, search_seed in enumerate(seeds):
                curve = find_tickets(task, seed=search_seed, **schedule)
                r2[d, :, :, s, f] = curve.score
                early[d, :, :, s, f] = curve.early_stop_iteration
                trained[d, :, :, s, f] = curve.steps
                total = curve.counts.sum(1)
                if counts[d].any() and not np.array_equal(counts[d], total):
                    raise RuntimeError(f"{name}: the schedule differs between searches")
                counts[d] = total
            fit_seconds[d] += time.perf_counter() - t0
            log.info(
                "fold %d %-11s rewind R2 by round %s (%.0f s)",
                k,
                name,
                np.round(np.nanmean(r2[d, :, 0, :, f], axis=(1, 2)), 3),
                time.perf_counter() - t0,
            )
    ds = _dataset(data, decoders, seeds, held_out, r2, early, trained, counts, fit_seconds, chosen)
    ds.attrs.update(
        grouping=data.grouping,
        n_history_bins=n_history,
        scope=scope,
        rate=rate,
        output_rate=output_rate,
        rewind_step=rewind_step,
    )
    return ds


def _check(decoders, n_folds, test_folds, val_fraction, n_seeds) -> None:
    unknown = sorted(set(decoders) - set(DECODERS))
    if unknown or not decoders:
        raise InputError(
            "config", "pruning.decoders", f"names among {list(DECODERS)}", f"{unknown or 'none'}"
        )
    if n_folds < 2:
        raise InputError("config", "pruning.n_folds", "an integer >= 2", f"{n_folds}")
    if test_folds is not None and not 1 <= test_folds <= n_folds:
        raise InputError(
            "config",
            "pruning.test_folds",
            f"an integer in [1, n_folds={n_folds}]",
            f"{test_folds}",
        )
    if not 0 < val_fraction < 1:
        raise InputError(
            "config", "pruning.val_fraction", "a fraction in (0, 1)", f"{val_fraction}"
        )
    if n_seeds < 1:
        raise InputError("config", "pruning.n_seeds", "an integer >= 1", f"{n_seeds}")


def _validation(train: np.ndarray, group: np.ndarray, fraction: float, source) -> np.ndarray:
    """The last ``fraction`` of the training trials (or blocks) in time, at least one."""
    ids = np.unique(group[train])
    n_val = max(1, round(fraction * ids.size))
    if ids.size <= n_val:
        raise InputError(
            source, "trials with behaviour", "at least two training trials per fold", f"{ids.size}"
        )
    return train & np.isin(group, ids[-n_val:])


def _scale(X: np.ndarray, y: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log1p and standardisation of the counts, standardisation of behaviour, on training bins.

    R2 is unchanged by the affine map of the targets, so scores need no inverse.
    """
    Z = np.log1p(X.astype(np.float64))
    mean, std = Z[train].mean(0), Z[train].std(0)
    std[std == 0] = 1.0
    y_mean, y_std = np.nanmean(y[train], 0), np.nanstd(y[train], 0)
    y_std[~(y_std > 0)] = 1.0
    return ((Z - mean) / std).astype(np.float32), (y - y_mean) / y_std


def _task(name, X, y, train, val, test, n_history, mlp, transformer, device):
    try:
        if name == "mlp":
            options = {**MLP_DEFAULTS, **dict(mlp or {})}
            return ArrayTask(history(X, n_history), y, train, val, test, device=device, **options)
        options = {k: v for k, v in dict(transformer or {}).items() if k not in _NOT_ARCH}
        return SequenceTask(X, y, train, val, test, options=options, device=device)
    except TypeError as exc:
        raise InputError(
            "config", f"pruning.{name}", "arguments of the decoder", str(exc)
        ) from exc


#: TransformerDecoder arguments that the analysis sets itself.
_NOT_ARCH = ("val_fraction", "device", "random_state")


def _dataset(data, decoders, seeds, held_out, r2, early, trained, counts, seconds, chosen):
    n_rounds = r2.shape[1] - 1
    fraction = counts / counts[:, :1]
    return xr.Dataset(
        {
            "score": (
                ("decoder", "sparsity", "init", "seed"),
                np.nanmean(r2, axis=(4, 5)),
                {
                    "units": "1",
                    "long_name": "held-out R2, mean over test folds and behaviour features",
                },
            ),
            "early_stop_iteration": (
                ("decoder", "sparsity", "init", "seed"),
                early.mean(4),
                {
                    "units": "optimiser steps",
                    "long_name": "step of the lowest validation loss (to the end of its "
                    "epoch), mean over test folds",
                },
            ),
            "steps_trained": (
                ("decoder", "sparsity", "init", "seed", "fold"),
                trained,
                {
                    "units": "optimiser steps",
                    "long_name": "steps trained, to early stopping or the epoch limit",
                },
            ),
            "remaining": (
                ("decoder", "sparsity"),
                fraction,
                {"units": "1", "long_name": "fraction of the prunable weights left"},
            ),
            "weights_remaining": (
                ("decoder", "sparsity"),
                counts,
                {"units": "count", "long_name": "prunable weights left (weight matrices)"},
            ),
            "r2": (
                ("decoder", "sparsity", "init", "seed", "fold", "feature"),
                r2,
                {"units": "1", "long_name": "held-out R2 per test fold and feature"},
            ),
            "fit_seconds": (("decoder",), seconds, {"units": "s"}),
            "lag_s": (
                ("fold",),
                chosen,
                {"units": "s", "long_name": "lag chosen on training folds"},
            ),
        },
        coords={
            "decoder": list(decoders),
            "sparsity": np.arange(n_rounds + 1),
            "init": list(INITS),
            "seed": seeds,
            "fold": held_out,
            "feature": data.features,
        },
    ).assign_attrs(sparsity="pruning round; 0 is the dense network")


def summarize_pruning(results: Sequence[xr.Dataset]) -> xr.Dataset:
    """Per session: score and early-stopping iteration (mean, sd over seeds) and ``remaining``.

    Stacked along ``session``; ``score_drop`` is the mean score minus the dense network's.
    """
    ids = [str(r.attrs.get("session_id", i)) for i, r in enumerate(results)]
    parts = []
    for r in results:
        parts.append(
            xr.Dataset(
                {
                    "score": r.score.mean("seed"),
                    "score_sd": r.score.std("seed"),
                    "score_drop": r.score.mean("seed") - r.score.sel(sparsity=0).mean("seed"),
                    "early_stop_iteration": r.early_stop_iteration.mean("seed"),
                    "remaining": r.remaining,
                }
            )
        )
    ds = stack_sessions(parts, ids, source="pruning results")
    for name, units in (
        ("score", "1"),
        ("score_sd", "1"),
        ("score_drop", "1"),
        ("early_stop_iteration", "optimiser steps"),
        ("remaining", "1"),
    ):
        ds[name].attrs["units"] = units
    return ds


@schema.register(SCHEMA)
def _validate(ds: xr.Dataset) -> None:
    for name in ("score", "early_stop_iteration"):
        schema.require(ds, SCHEMA, name, ("decoder", "sparsity", "init", "seed"), "f")
    schema.require(ds, SCHEMA, "remaining", ("decoder", "sparsity"), "f")
    if set(ds.init.values.tolist()) != set(INITS):
        raise schema.SchemaError(f"{SCHEMA}: init must be {list(INITS)}")
    left = ds.remaining.values
    if not (
        np.allclose(left[:, 0], 1) and (np.diff(left, axis=1) <= 0).all() and (left > 0).all()
    ):
        raise schema.SchemaError(f"{SCHEMA}: remaining must start at 1 and never grow")
    if not np.isfinite(ds.score).all():
        raise schema.SchemaError(f"{SCHEMA}: a score is not finite")


@schema.register(SUMMARY_SCHEMA)
def _validate_summary(ds: xr.Dataset) -> None:
    schema.require(ds, SUMMARY_SCHEMA, "score", ("session", "decoder", "sparsity", "init"), "f")
    schema.require(ds, SUMMARY_SCHEMA, "remaining", ("session", "decoder", "sparsity"), "f")
