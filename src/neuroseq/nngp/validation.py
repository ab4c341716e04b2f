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
