"""From a session Dataset to decoder arrays: inputs, targets, samples, folds, lags."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from neuroseq.errors import InputError


@dataclass
class DecodingData:
    """Arrays a decoder needs, all on the session's time bins.

    Attributes
    ----------
    X : ndarray (n_bins, n_units), float32
        Spike counts.
    y : ndarray (n_bins, n_features), float64
        Behaviour; NaN where no valid sample exists (masked from training and scoring).
    group : ndarray (n_bins,), int
        Cross-validation group of each bin (trial or block); -1 for bins in none. With
        ``between_trials``, the bins after a trial (up to the next one) join it.
    scored : ndarray (n_bins,), bool
        Bins that are scored: those inside trials (every bin of a session without trials).
    time : ndarray (n_bins,)
    features : list of str
    bin_size : float
    grouping : str
        ``"trial"`` or ``"block"``.
    """

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    scored: np.ndarray
    time: np.ndarray
    features: list[str]
    bin_size: float
    grouping: str


def decoding_data(
    session: xr.Dataset,
    *,
    features: list[str] | None = None,
    n_folds: int = 5,
    block_s: float = 30.0,
    between_trials: bool = False,
    source: object = "session",
) -> DecodingData:
    """Collect inputs and targets and assign every bin to a cross-validation group.

    Sessions with trials are split by trial and scored on the bins inside trials. With
    ``between_trials`` the bins after each trial, up to the next trial's start, join it
    (those before the first trial join the first): they train the decoders when that
    trial is a training trial and go wherever it goes, never scored. Without it they
    are never trained on either; their spikes always serve as the history of the bins
    around them. Sessions without trials are cut into contiguous blocks of ``block_s``
    seconds, every bin scored.
    """
    if "unit" not in session.dims or session.sizes["unit"] == 0:
        raise InputError(source, "spike_counts", "a session with units", "no units")
    if "feature" not in session.dims:
        raise InputError(source, "behavior", "a session with behaviour to decode", "no behaviour")
    names = [str(f) for f in session.feature.values]
    if features:
        missing = sorted(set(features) - set(names))
        if missing:
            raise InputError(
                source,
                "behavior features",
                f"names among {names}",
                f"{missing} (config decoding.features)",
            )
        names = list(features)
    X = session.spike_counts.values.astype(np.float32)
    y = session.behavior.sel(feature=names).values.astype(np.float64)
    trial = session.trial_index.values.astype(np.int64)
    if (trial >= 0).any():
        grouping, scored = "trial", trial >= 0
        group = with_following_bins(trial) if between_trials else trial
    else:
        per_block = max(1, round(block_s / float(session.attrs["bin_size_s"])))
        group, grouping = np.arange(len(X)) // per_block, "block"
        scored = np.ones(len(X), dtype=bool)
    n_groups = np.unique(group[scored & np.isfinite(y).any(1)]).size
    if n_groups < n_folds:
        raise InputError(
            source,
            f"{grouping}s with behaviour",
            f"at least {n_folds} (config decoding.n_folds)",
            f"{n_groups}",
        )
    return DecodingData(
        X,
        y,
        group,
        scored,
        session.time.values,
        names,
        float(session.attrs["bin_size_s"]),
        grouping,
    )


def with_following_bins(trial: np.ndarray) -> np.ndarray:
    """Trial of every bin, the bins after a trial (up to the next) taken into it.

    ``trial`` is -1 outside trials; bins before the first trial join the first one.
    """
    inside = np.flatnonzero(trial >= 0)
    last_inside = np.maximum.accumulate(np.where(trial >= 0, np.arange(trial.size), 0))
    out = trial[last_inside]
    out[: inside[0]] = trial[inside[0]]
    return out


def assign_folds(
    group: np.ndarray, n_folds: int, seed: int, contiguous: bool = False
) -> np.ndarray:
    """Fold of every bin: whole groups dealt to folds; -1 for bins never scored.

    Trials are dealt at random (seeded); with ``contiguous`` (blocks of a session without
    trials), fold k is the k-th stretch of consecutive blocks.
    """
    fold = np.full(group.size, -1, dtype=np.int64)
    ids = np.unique(group[group >= 0])
    if contiguous:
        dealt = np.arange(ids.size) * n_folds // ids.size
    else:
        order = np.random.default_rng(seed).permutation(ids.size)
        dealt = np.empty(ids.size, dtype=np.int64)
        dealt[order] = np.arange(ids.size) % n_folds
    fold[group >= 0] = dealt[np.searchsorted(ids, group[group >= 0])]
    return fold


def train_mask(fold: np.ndarray, k: int, gap: int) -> np.ndarray:
    """Training bins of fold ``k``: other folds' bins, minus ``gap`` bins around the test.

    The gap (at least the history length) keeps training windows from reading the
    neural data right next to test targets.
    """
    test = fold == k
    train = (fold >= 0) & ~test
    if gap > 0 and test.any():
        near = np.convolve(test.astype(float), np.ones(2 * gap + 1), mode="same") > 0
        train &= ~near
    return train


def lagged(X: np.ndarray, lag: int) -> np.ndarray:
    """Inputs shifted so that row t holds the activity of bin t - lag (zeros before t=0)."""
    if lag == 0:
        return X
    out = np.zeros_like(X)
    out[lag:] = X[:-lag]
    return out


def history(X: np.ndarray, n_bins: int) -> np.ndarray:
    """Row t: the activity of bins t - n_bins + 1 ... t, flattened (zeros before t=0)."""
    n, d = X.shape
    out = np.zeros((n, n_bins * d), dtype=X.dtype)
    for h in range(n_bins):  # n_bins shifted copies, never a loop over time bins
        out[h:, h * d : (h + 1) * d] = X[: n - h]
    return out
