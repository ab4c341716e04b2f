"""Input checks of the NNGP and finite-network estimators: scikit-learn's, as InputError.

scikit-learn's own validation gives the messages its estimator checks expect; wrapping
them in :class:`neuroseq.errors.InputError` keeps the project's one-line errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroseq.errors import InputError


def fit_data(est: Any, X: Any, y: Any, *, classifier: bool) -> tuple[np.ndarray, np.ndarray]:
    """Finite float64 ``X`` (n, d) and targets: labels (n,) or numbers (n,) / (n, k)."""
    name = type(est).__name__
    try:
        if classifier:
            X, y = validate_data(est, X, y, dtype=np.float64)
            check_classification_targets(y)
        else:
            X, y = validate_data(est, X, y, dtype=np.float64, multi_output=True, y_numeric=True)
    except ValueError as exc:
        raise InputError(
            name, "X, y", "finite numbers, X (n_samples, n_features), one target per row", str(exc)
        ) from exc
    if len(X) < 2:
        raise InputError(name, "X", "at least 2 samples", f"{len(X)} sample")
    if classifier and len(np.unique(y)) < 2:
        raise InputError(name, "y", "at least 2 classes", f"1 class: {np.unique(y)}")
    return X, y


def predict_data(est: Any, X: Any, fitted: str) -> np.ndarray:
    """Finite float64 ``X`` with the number of features seen in ``fit``."""
    check_is_fitted(est, fitted)
    try:
        return validate_data(est, X, reset=False, dtype=np.float64)
    except ValueError as exc:
        raise InputError(
            type(est).__name__,
            "X",
            f"finite numbers, (n_samples, {est.n_features_in_} features) as in fit",
            str(exc),
        ) from exc


#: One-hot regression targets of Lee et al. (2018): -0.1 for the wrong classes, 0.9 right.
TARGET_OFF, TARGET_ON = -0.1, 0.9


def regression_targets(est: Any, y: np.ndarray) -> np.ndarray:
    """Targets (n,) or (n, k) as standardised (n, k); their scaling is kept on ``est``
    (``y_mean_``, ``y_scale_``, ``_single_output_``) for ``predict``."""
    est._single_output_ = y.ndim == 1
    Y = y.reshape(len(y), -1)
    est.y_mean_ = Y.mean(axis=0)
    est.y_scale_ = np.where(Y.std(axis=0) > 0, Y.std(axis=0), 1.0)
    return (Y - est.y_mean_) / est.y_scale_


def one_hot_targets(est: Any, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as one-hot targets (n, n_classes) of TARGET_OFF / TARGET_ON, and the class
    index of each row; the classes are kept on ``est`` (``classes_``)."""
    est.classes_, labels = np.unique(y, return_inverse=True)
    Y = np.full((len(y), len(est.classes_)), TARGET_OFF)
    Y[np.arange(len(y)), labels] = TARGET_ON
    return Y, labels
