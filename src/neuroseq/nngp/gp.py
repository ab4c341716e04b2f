"""Exact Gaussian-process regression with the NNGP kernel, and classification through it.

``NNGPRegressor`` and ``NNGPClassifier`` follow the scikit-learn contract. Every
hyperparameter given as a list (depth, weight_var, bias_var, noise) is chosen on the
training data alone, by the log marginal likelihood (``selection="evidence"``) or by the
closed-form leave-one-out error (``selection="loo"``); one eigendecomposition per kernel
serves every noise level. The chosen model is then fitted exactly by Cholesky.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve, eigh, solve_triangular
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from neuroseq.errors import InputError
from neuroseq.nngp.kernels import (
    ACTIVATIONS,
    DEFAULT_BLOCK_ELEMENTS,
    KernelSpec,
    kernel_diagonal,
    kernel_stack,
)
from neuroseq.nngp.validation import (
    fit_data,
    one_hot_targets,
    predict_data,
    regression_targets,
)

log = logging.getLogger(__name__)

SELECTIONS = ("evidence", "loo")
DEFAULT_NOISE = tuple(float(v) for v in np.logspace(-6, 2, 17))


def _grid(value: Any, name: str, kind: str) -> list:
    """A hyperparameter as a non-empty list of valid values."""
    values = list(value) if isinstance(value, Sequence | np.ndarray) else [value]
    checks = {
        "depth": (
            lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 0
        ),
        "positive": lambda v: isinstance(v, int | float | np.number) and np.isfinite(v) and v > 0,
        "nonnegative": (
            lambda v: isinstance(v, int | float | np.number) and np.isfinite(v) and v >= 0
        ),
    }
    expected = {
        "depth": "integers >= 0",
        "positive": "finite numbers > 0",
        "nonnegative": "finite numbers >= 0",
    }
    if not values or not all(checks[kind](v) for v in values):
        raise InputError(
            "NNGP", name, f"a value or a non-empty list of {expected[kind]}", repr(value)
        )
    return sorted({int(v) if kind == "depth" else float(v) for v in values})


class _NNGPBase(BaseEstimator):
    def __init__(
        self,
        *,
        depth: int | Sequence[int] = (1, 2, 3),
        activation: str = "relu",
        weight_var: float | Sequence[float] = (1.0, 2.0),
        bias_var: float | Sequence[float] = (0.0, 0.1),
        noise: float | Sequence[float] = DEFAULT_NOISE,
        selection: str = "evidence",
        block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    ) -> None:
        self.depth = depth
        self.activation = activation
        self.weight_var = weight_var
        self.bias_var = bias_var
        self.noise = noise
        self.selection = selection
        self.block_elements = block_elements

    # -- fitting ------------------------------------------------------------------------

    def _check_params(self) -> dict[str, list]:
        if not (callable(self.activation) or self.activation in ACTIVATIONS):
            raise InputError(
                "NNGP", "activation", f"one of {list(ACTIVATIONS)}", repr(self.activation)
            )
        if self.selection not in SELECTIONS:
            raise InputError(
                "NNGP", "selection", f"one of {list(SELECTIONS)}", repr(self.selection)
            )
        return {
            "depth": _grid(self.depth, "depth", "depth"),
            "weight_var": _grid(self.weight_var, "weight_var", "positive"),
            "bias_var": _grid(self.bias_var, "bias_var", "nonnegative"),
            "noise": _grid(self.noise, "noise", "positive"),
        }

    def _fit_targets(self, X: np.ndarray, Y: np.ndarray, labels: np.ndarray | None) -> None:
        """Choose the hyperparameters on (X, Y), then fit exactly; Y is (n, n_outputs)."""
        grid = self._check_params()
        n = len(X)
        rows: list[tuple] = []
        best: tuple | None = None
        best_kernel = None
        single = all(len(values) == 1 for values in grid.values())
        for w in grid["weight_var"]:
            for b in grid["bias_var"]:
                spec = KernelSpec(self.activation, w, b)
                kernels = kernel_stack(X, None, grid["depth"], spec, self.block_elements)
                for depth, K in zip(grid["depth"], kernels, strict=True):
                    scale = float(np.mean(np.diag(K)))
                    if single:  # nothing to choose: no eigendecomposition
                        best, best_kernel = (depth, w, b, grid["noise"][0], np.nan), K
                        rows.append(best)
                        continue
                    # Divide and conquer: the fastest LAPACK driver for all eigenpairs.
                    lam, U = eigh(K, driver="evd", check_finite=False)
                    lam = np.clip(lam, 0.0, None)  # PSD up to rounding
                    Yt = U.T @ Y
                    for eps in grid["noise"]:
                        score = self._score(lam + eps * scale, U, Yt, Y, labels)
                        rows.append((depth, w, b, eps, score))
                        if best is None or score > best[-1]:
                            best, best_kernel = (depth, w, b, eps, score), K
                    del U
        table = np.array(rows, dtype=float).reshape(-1, 5)
        self.selection_results_ = {
            name: table[:, i]
            for i, name in enumerate(("depth", "weight_var", "bias_var", "noise"))
        }
        self.selection_results_[self.selection] = table[:, 4]
        depth, w, b, eps, score = best
        self.depth_, self.weight_var_, self.bias_var_ = int(depth), w, b
        self.noise_ = eps
        self.selection_score_ = score
        self.spec_ = KernelSpec(self.activation, w, b)
        K = best_kernel
        del kernels, best_kernel
        self.noise_var_ = eps * float(np.mean(np.diag(K)))
        K[np.diag_indices(n)] += self.noise_var_
        try:
            self.cholesky_ = cho_factor(K, lower=True, check_finite=False)[0]
        except np.linalg.LinAlgError as exc:
            raise InputError(
                "NNGP", "kernel", "a positive definite training kernel plus noise", str(exc)
            ) from exc
        self.dual_coef_ = cho_solve((self.cholesky_, True), Y, check_finite=False)
        if single:
            self.selection_score_ = self._score_cholesky(Y, labels)
            self.selection_results_[self.selection][:] = self.selection_score_
        self.X_train_ = X
        log.debug(
            "NNGP chose depth %d, weight_var %g, bias_var %g, noise %g (%s %.4g)",
            self.depth_,
            w,
            b,
            eps,
            self.selection,
            score,
        )

    def _score_cholesky(self, Y: np.ndarray, labels: np.ndarray | None) -> float:
        """The selection score of the fitted setting, from its Cholesky factor."""
        n, c = Y.shape
        if self.selection == "evidence":
            logdet = 2.0 * float(np.sum(np.log(np.diag(self.cholesky_))))
            quad = float(np.sum(Y * self.dual_coef_))
            return -0.5 * quad - 0.5 * c * logdet - 0.5 * n * c * np.log(2 * np.pi)
        inverse = cho_solve((self.cholesky_, True), np.eye(n), check_finite=False)
        loo_mean = Y - self.dual_coef_ / np.diag(inverse)[:, None]
        mse = float(np.mean((Y - loo_mean) ** 2))
        if labels is None:
            return -mse
        return float(np.mean(np.argmax(loo_mean, axis=1) == labels)) - 1e-6 * mse

    def _score(self, lam_noise, U, Yt, Y, labels) -> float:
        inv = 1.0 / lam_noise
        if self.selection == "evidence":
            n, c = Y.shape
            quad = float(np.sum(Yt**2 * inv[:, None]))
            return (
                -0.5 * quad
                - 0.5 * c * float(np.sum(np.log(lam_noise)))
                - 0.5 * n * c * np.log(2 * np.pi)
            )
        # Closed-form leave-one-out (Rasmussen & Williams 2006, Eq. 5.12):
        # y_i - mu_{-i} = [A^-1 y]_i / [A^-1]_ii with A = K + noise I.
        alpha = U @ (Yt * inv[:, None])
        a_diag = (U**2) @ inv
        loo_mean = Y - alpha / a_diag[:, None]
        mse = float(np.mean((Y - loo_mean) ** 2))
        if labels is None:
            return -mse
        # Accuracy first; the squared error (<< 1 per sample) breaks ties.
        return float(np.mean(np.argmax(loo_mean, axis=1) == labels)) - 1e-6 * mse

    # -- prediction ---------------------------------------------------------------------

    def _predict_targets(self, X: Any, return_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
        X = predict_data(self, X, "dual_coef_")
        n_train = len(self.X_train_)
        chunk = max(1, self.block_elements // n_train)
        means, stds = [], []
        for r0 in range(0, len(X), chunk):
            part = X[r0 : r0 + chunk]
            Ks = kernel_stack(self.X_train_, part, [self.depth_], self.spec_, self.block_elements)
            means.append(Ks[0] @ self.dual_coef_)
            if return_std:
                v = solve_triangular(self.cholesky_, Ks[0].T, lower=True, check_finite=False)
                prior = kernel_diagonal(part, [self.depth_], self.spec_)[0]
                stds.append(np.sqrt(np.clip(prior - np.einsum("ij,ij->j", v, v), 0.0, None)))
        return np.concatenate(means), np.concatenate(stds) if return_std else None


class NNGPRegressor(RegressorMixin, _NNGPBase):
    """Exact GP regression with the NNGP kernel of a deep fully connected network.

    Parameters
    ----------
    depth : int or sequence of int
        Hidden layers; a list is searched (on training data only).
    activation : {"relu", "erf", "linear", "tanh", "sigmoid"}
    weight_var, bias_var : float or sequence of float
        Prior variances ``sigma_w^2`` (> 0) and ``sigma_b^2`` (>= 0); lists are searched.
    noise : float or sequence of float
        Observation noise (jitter) variance relative to the mean diagonal of the training
        kernel; a list is searched.
    selection : {"evidence", "loo"}
        How the search scores a setting: the log marginal likelihood, summed over
        outputs, or the closed-form leave-one-out squared error (accuracy for the
        classifier).
    block_elements : int
        Kernel entries computed at once (memory bound).

    Attributes
    ----------
    depth_, weight_var_, bias_var_, noise_ : the chosen hyperparameters.
    noise_var_ : float
        The chosen noise as an absolute variance.
    selection_results_ : dict of ndarray
        Every setting tried and its score.
    y_mean_, y_scale_ : ndarray
        The standardisation of the targets (fitted on the training targets).

    Notes
    -----
    With ``A = K(X, X) + s^2 I = L L^T``, the predictive mean and variance at ``x*`` are
    ``m = K(x*, X) A^-1 y`` and ``v = K(x*, x*) - K(x*, X) A^-1 K(X, x*)`` (Rasmussen &
    Williams 2006, Alg. 2.1); ``predict(..., return_std=True)`` returns ``sqrt(v)``, the
    standard deviation of the latent function (add ``noise_var_`` for a new
    observation), in target units. Lee et al. (2018) Eq. 2-3.
    """

    def fit(self, X: Any, y: Any) -> NNGPRegressor:
        """Choose the hyperparameters on (X, y) and fit; ``y`` is (n,) or (n, n_outputs)."""
        X, y = fit_data(self, X, y, classifier=False)
        self._fit_targets(X, regression_targets(self, y), None)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X: Any, return_std: bool = False):
        """Predictive mean (and standard deviation of the latent function)."""
        mean, std = self._predict_targets(X, return_std)
        mean = mean * self.y_scale_ + self.y_mean_
        if self._single_output_:
            mean = mean[:, 0]
        if not return_std:
            return mean
        scale = self.y_scale_[0] if self._single_output_ else self.y_scale_[None, :]
        return mean, (std * scale if self._single_output_ else std[:, None] * scale)


class NNGPClassifier(ClassifierMixin, _NNGPBase):
    """Classification as NNGP regression on one-hot targets (-0.1 / 0.9), as Lee et al.

    Parameters are those of :class:`NNGPRegressor`; with ``selection="loo"`` the search
    maximises the leave-one-out accuracy (ties broken by the squared error).

    Attributes
    ----------
    classes_ : ndarray
        The labels, in the order of the outputs.

    Notes
    -----
    The predicted class is the argmax of the predictive means; ``predict_mean`` returns
    the means and, with ``return_std=True``, the predictive standard deviation, which is
    one number per sample (every output shares the kernel). Lee et al. (2018), Sec. 3
    and 4.
    """

    def fit(self, X: Any, y: Any) -> NNGPClassifier:
        """Choose the hyperparameters on (X, y) and fit."""
        X, y = fit_data(self, X, y, classifier=True)
        self._fit_targets(X, *one_hot_targets(self, y))
        return self

    def predict_mean(self, X: Any, return_std: bool = False):
        """Predictive means per class (n, n_classes), and the predictive std (n,)."""
        mean, std = self._predict_targets(X, return_std)
        return (mean, std) if return_std else mean

    def decision_function(self, X: Any) -> np.ndarray:
        """The means per class; for two classes, the second's minus the first's."""
        mean = self.predict_mean(X)
        return mean[:, 1] - mean[:, 0] if len(self.classes_) == 2 else mean

    def predict(self, X: Any) -> np.ndarray:
        """The class with the largest predictive mean."""
        mean = self.predict_mean(X)
        return self.classes_[np.argmax(mean, axis=1)]
