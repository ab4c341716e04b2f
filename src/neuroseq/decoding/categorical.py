"""Trial-level categorical targets (e.g. choice) from trial-aligned population vectors.

Each trial becomes one sample: the mean spike count per bin of every unit over the
trial's bins (its population vector). A ridge classifier, its penalty chosen by
leave-one-out cross-validation on the training trials only, is scored by balanced accuracy
on the held-out
trials of the same folds as the sequence decoders; chance is what the same procedure
scores after the labels are permuted across trials.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeClassifierCV
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neuroseq.errors import InputError

log = logging.getLogger(__name__)

#: Ridge penalties searched by the inner (leave-one-out) CV; inputs are standardised.
ALPHAS = tuple(np.logspace(-1, 5, 7).tolist())


@dataclass
class CategoricalResult:
    """Cross-validated balanced accuracy of one categorical target and its chance level.

    Attributes
    ----------
    balanced_accuracy : ndarray (n_folds,)
        On each fold's held-out trials.
    alpha : ndarray (n_folds,)
        Ridge penalty chosen by leave-one-out CV on each fold's training trials.
    null : ndarray (n_permutations,)
        Mean balanced accuracy over folds with the labels permuted across trials.
    chance : float
        Mean of ``null``.
    p_value : float
        ``(1 + #{null >= observed}) / (1 + n_permutations)`` (Ojala & Garriga 2010).
    classes : list of str
    n_trials : int
        Trials with a label that entered the cross-validation.
    n_dropped : int
        Trials left out: no label (e.g. no response) or no time bins.
    """

    balanced_accuracy: np.ndarray
    alpha: np.ndarray
    null: np.ndarray
    chance: float
    p_value: float
    classes: list[str]
    n_trials: int
    n_dropped: int


def trial_population_vectors(
    X: np.ndarray, trial_index: np.ndarray, trials: np.ndarray
) -> np.ndarray:
    """Mean count per bin of every unit within each trial: (n_trials, n_units).

    Trials without bins get NaN rows (the caller drops and counts them).
    """
    out = np.full((trials.size, X.shape[1]), np.nan)
    inside = trial_index >= 0
    sums = np.zeros((trials.size, X.shape[1]))
    counts = np.zeros(trials.size)
    pos = np.searchsorted(trials, trial_index[inside])
    ok = (pos < trials.size) & (trials[np.minimum(pos, trials.size - 1)] == trial_index[inside])
    np.add.at(sums, pos[ok], X[inside][ok])
    np.add.at(counts, pos[ok], 1)
    has = counts > 0
    out[has] = sums[has] / counts[has, None]
    return out


def _classifier():
    return make_pipeline(
        StandardScaler(), RidgeClassifierCV(alphas=ALPHAS, class_weight="balanced")
    )


def _cross_validate(V, labels, trial_fold, n_folds):
    accuracy, chosen = np.full(n_folds, np.nan), np.full(n_folds, np.nan)
    for k in range(n_folds):
        train, test = trial_fold != k, trial_fold == k
        if not test.any():
            continue
        model = _classifier().fit(V[train], labels[train])
        accuracy[k] = balanced_accuracy_score(labels[test], model.predict(V[test]))
        chosen[k] = float(model[-1].alpha_)
    return accuracy, chosen


def classify_trials(
    X: np.ndarray,
    trial_index: np.ndarray,
    trials: np.ndarray,
    labels: np.ndarray,
    trial_fold: np.ndarray,
    *,
    n_folds: int,
    n_permutations: int = 100,
    seed: int = 0,
    source: object = "session",
    name: str = "choice",
) -> CategoricalResult:
    """Balanced accuracy of a ridge classifier on trial population vectors, with chance.

    Parameters
    ----------
    X : ndarray (n_bins, n_units)
        Spike counts.
    trial_index : ndarray (n_bins,)
        Trial of each bin, -1 outside trials.
    trials : ndarray (n_trials,)
        Trial ids, sorted.
    labels : ndarray (n_trials,)
        Class of each trial; ``None``, ``NaN`` or ``""`` mean no label, and so does
        ``-1`` for ``choice`` (no response): such trials are dropped and counted.
    trial_fold : ndarray (n_trials,)
        Outer fold of each trial (the folds of the sequence decoders); -1 never tested.
    n_folds : int
    n_permutations : int
        Label permutations for the chance level (0 skips it).
    seed : int
        Seeds the permutations.

    Notes
    -----
    Balanced accuracy is the mean over classes of the recall (Brodersen et al. 2010), so a
    classifier that always answers the majority class scores ``1 / n_classes`` however
    unbalanced the trials are. The classifier is ridge regression on the +-1 (one-vs-all)
    coding of the classes, on standardised population vectors, classes weighted by
    inverse frequency; its penalty ``alpha`` among :data:`ALPHAS` minimises the exact
    leave-one-out error on the training trials (Rifkin & Lippert 2007), which costs one
    decomposition per fit and so keeps a 100-permutation null cheap. Chance is the mean
    over ``n_permutations`` reruns of the whole cross-validation, inner search included,
    with the labels permuted across trials (Ojala & Garriga 2010, JMLR 11).
    """
    V = trial_population_vectors(X, trial_index, trials)
    labels = np.asarray(labels)
    if labels.dtype.kind in "iuf":
        missing = ~np.isfinite(labels.astype(float))
        if name == "choice":
            missing |= labels == -1  # no response (neuroseq.session/1)
        text = np.array([f"{v:g}" for v in labels.astype(float)], dtype=object)
    else:
        text = np.array(["" if v is None else str(v) for v in labels], dtype=object)
        missing = np.isin(text, ["", "nan", "None"])
    keep = ~missing & np.isfinite(V).all(1) & (trial_fold >= 0)
    classes, y = np.unique(text[keep].astype(str), return_inverse=True)
    counts = np.bincount(y, minlength=classes.size)
    need = max(n_folds, 3)  # every class in every training set, twice at least
    if classes.size < 2 or counts.min() < need:
        found = dict(zip(classes.tolist(), counts.tolist(), strict=True)) or "no labelled trials"
        raise InputError(
            source,
            f"trial variable {name}",
            f"at least 2 classes of at least {need} labelled trials each "
            f"(config decoding.categorical, decoding.n_folds)",
            f"{found}",
        )
    V, fold = V[keep], trial_fold[keep]
    t0 = time.perf_counter()
    accuracy, chosen = _cross_validate(V, y, fold, n_folds)
    rng = np.random.default_rng(seed)
    null = np.array(
        [
            np.nanmean(_cross_validate(V, rng.permutation(y), fold, n_folds)[0])
            for _ in range(n_permutations)
        ]
    )
    observed = float(np.nanmean(accuracy))
    chance = float(null.mean()) if null.size else float("nan")
    p_value = float((1 + (null >= observed).sum()) / (1 + null.size)) if null.size else np.nan
    log.info(
        "%s: balanced accuracy %.3f (chance %.3f, p %.3g, %d permutations; %d trials, "
        "%d dropped) in %.1f s",
        name,
        observed,
        chance,
        p_value,
        n_permutations,
        keep.sum(),
        (~keep).sum(),
        time.perf_counter() - t0,
    )
    return CategoricalResult(
        accuracy,
        chosen,
        null,
        chance,
        p_value,
        classes.tolist(),
        int(keep.sum()),
        int((~keep).sum()),
    )


def categorical_targets(session, names: Sequence[str] | None, source: object) -> list[str]:
    """Trial variables to classify: ``names``, or ``choice`` when the session has choices."""
    if names is None:
        return ["choice"] if "choice" in session and "trial" in session.dims else []
    for name in names:
        if name not in session or session[name].dims != ("trial",):
            found = sorted(str(v) for v in session.data_vars if session[v].dims == ("trial",))
            raise InputError(
                source,
                f"trial variable {name}",
                "a trial-level variable of session.nc (config decoding.categorical)",
                f"trial variables {found}",
            )
    return list(names)
