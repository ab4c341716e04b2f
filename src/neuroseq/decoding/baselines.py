"""Linear baselines: the Wiener filter (ridge on lagged history) and the Kalman filter.

Both follow the scikit-learn contract on whole recordings: ``fit(X, y)`` takes spike counts
(time x unit) and targets (time x feature) with NaN wherever a target is unknown or held
out, so a model never sees what it will be scored on; ``predict(X)`` returns a prediction
for every bin from neural data alone.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from neuroseq.decoding.data import history
from neuroseq.errors import InputError

#: Ridge penalties searched by default (the inputs are standardised).
ALPHAS = tuple(np.logspace(-1, 5, 13).tolist())


class _Scaler:
    """log1p then standardisation, fitted on the rows given (the training bins only)."""

    def fit(self, X: np.ndarray, rows: np.ndarray) -> _Scaler:
        Z = np.log1p(X[rows])
        self.mean_ = Z.mean(0)
        self.std_ = Z.std(0)
        self.std_[self.std_ == 0] = 1.0
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((np.log1p(X) - self.mean_) / self.std_).astype(np.float32)


class WienerFilter(RegressorMixin, BaseEstimator):
    """Ridge regression of behaviour on the recent history of every unit.

    Parameters
    ----------
    n_history : int
        Bins of history per unit (the bin itself and the ``n_history - 1`` before).
    alphas : sequence of float
        Ridge penalties; one is chosen per feature by inner cross-validation over
        ``inner_folds`` contiguous stretches of the training bins. Bins where any target
        is missing are left out of the fit.
    inner_folds : int

    Notes
    -----
    The Wiener filter of Glaser et al. (2020, eNeuro, "Machine learning for neural
    decoding"), with an L2 penalty. All penalties are solved from one eigendecomposition
    of the Gram matrix per inner fold, itself a difference of per-stretch Gram matrices,
    so the search costs about one least-squares fit.
    """

    def __init__(self, n_history: int = 10, alphas=ALPHAS, inner_folds: int = 5) -> None:
        self.n_history = n_history
        self.alphas = alphas
        self.inner_folds = inner_folds

    def fit(self, X: np.ndarray, y: np.ndarray) -> WienerFilter:
        y = np.asarray(y, dtype=float).reshape(len(X), -1)
        rows = np.isfinite(y).all(1)  # one Gram matrix serves every feature
        self.scaler_ = _Scaler().fit(X, rows)
        Z = history(self.scaler_.transform(X), self.n_history)
        alphas = np.asarray(self.alphas, dtype=float)
        ok = np.flatnonzero(rows)
        zm = Z[ok].mean(0, dtype=np.float64)
        ym = y[ok].mean(0)
        chunks = np.array_split(ok, self.inner_folds)
        grams, cross = [], []
        for c in chunks:
            Zc = Z[c].astype(np.float64) - zm
            grams.append(Zc.T @ Zc)
            cross.append(Zc.T @ (y[c] - ym))
        G, b = sum(grams), sum(cross)
        sse = np.zeros((y.shape[1], alphas.size))
        for c, Gc, bc in zip(chunks, grams, cross, strict=True):
            w = _ridge_path(G - Gc, b - bc, alphas)  # (n_in, n_features, n_alphas)
            pred = np.einsum("np,pfa->nfa", Z[c].astype(np.float64) - zm, w)
            sse += (((y[c] - ym)[:, :, None] - pred) ** 2).sum(0)
        best = np.argmin(sse, axis=1)
        self.alpha_ = alphas[best]
        self.inner_r2_ = 1 - sse[np.arange(y.shape[1]), best] / ((y[ok] - ym) ** 2).sum(0)
        path = _ridge_path(G, b, alphas)
        self.coef_ = path[:, np.arange(y.shape[1]), best]
        self.intercept_ = ym - zm @ self.coef_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = history(self.scaler_.transform(X), self.n_history)
        return Z @ self.coef_ + self.intercept_


def _ridge_path(G: np.ndarray, b: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Ridge weights for every penalty from one eigendecomposition.

    ``G`` (p x p) and ``b`` (p x f) are the centred Gram and cross products; returns
    weights of shape (p, f, n_alphas).
    """
    s, V = np.linalg.eigh(G)
    vb = V.T @ b
    return np.einsum("pq,qfa->pfa", V, vb[:, :, None] / (np.maximum(s, 0)[:, None, None] + alphas))


class KalmanFilterDecoder(RegressorMixin, BaseEstimator):
    """Kalman filter with behaviour and its derivatives as the state, activity as observations.

    Parameters
    ----------
    state_order : int
        1: the state is the behaviour alone; 2: behaviour and its velocity (first
        difference per bin); 3 (default): also its acceleration (second difference), as
        in Glaser et al. (2020). Only the behaviour part of the state is returned.
    ridge : float
        Added to the diagonal of the observation noise covariance (units that barely fire
        would make it singular).

    Notes
    -----
    Wu et al. (2003); as in Glaser et al. (2020): with the state
    ``s_t = [y_t, y_t - y_{t-1}, y_t - 2 y_{t-1} + y_{t-2}]`` (targets standardised),
    ``s_t = A s_{t-1} + w``, ``x_t = H s_t + q``, all four of ``A, W, H, Q`` fitted by
    least squares on training bins (consecutive pairs with a known state for ``A``).
    The derivatives matter for position decoded from place cells: a linear observation
    model of position alone cannot tell the running direction, which direction-selective
    cells signal through the velocity, and a position-only transition cannot carry the
    movement (on the rat CA1 file R2 0.19 with order 1, 0.61 with 2, 0.62 with 3).
    Prediction runs the filter on neural data alone, from the training mean, in
    information form so each step inverts only a (state x state) matrix.
    """

    def __init__(self, state_order: int = 3, ridge: float = 1e-2) -> None:
        self.state_order = state_order
        self.ridge = ridge

    def fit(self, X: np.ndarray, y: np.ndarray) -> KalmanFilterDecoder:
        if self.state_order not in (1, 2, 3):
            raise InputError(
                "config", "decoding.kalman.state_order", "1, 2 or 3", str(self.state_order)
            )
        y = np.asarray(y, dtype=float).reshape(len(X), -1)
        rows = np.isfinite(y).all(1)
        self.scaler_ = _Scaler().fit(X, rows)
        Z = self.scaler_.transform(X).astype(np.float64)
        self.y_mean_, self.y_std_ = y[rows].mean(0), y[rows].std(0)
        self.y_std_[self.y_std_ == 0] = 1.0
        s = kinematic_state((y - self.y_mean_) / self.y_std_, self.state_order)
        rows = np.isfinite(s).all(1)  # derivatives need the bins before to be known too
        n_s = s.shape[1]
        pairs = rows[1:] & rows[:-1]
        prev, nxt = s[:-1][pairs], s[1:][pairs]
        A = np.linalg.lstsq(prev, nxt, rcond=None)[0].T
        W = np.cov((nxt - prev @ A.T).T).reshape(n_s, n_s)
        H = np.linalg.lstsq(s[rows], Z[rows], rcond=None)[0].T
        resid = Z[rows] - s[rows] @ H.T
        Q = resid.T @ resid / max(rows.sum() - 1, 1) + self.ridge * np.eye(Z.shape[1])
        Qinv_H = np.linalg.solve(Q, H)
        self.A_, self.W_, self.H_ = A, W, H
        self.HtQinvH_ = H.T @ Qinv_H
        self.HtQinv_ = Qinv_H.T
        self.P0_ = np.atleast_2d(np.cov(s[rows].T))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = self.scaler_.transform(X).astype(np.float64)
        obs = Z @ self.HtQinv_.T  # H^T Q^-1 z_t for every bin at once
        n_s, n_f = self.A_.shape[0], self.y_mean_.size
        state, P = np.zeros(n_s), self.P0_.copy()
        out = np.empty((len(Z), n_f))
        A, W, info = self.A_, self.W_, self.HtQinvH_
        for t in range(len(Z)):  # the filter is sequential: one small step per bin
            state = A @ state
            P = A @ P @ A.T + W
            P_inv = np.linalg.inv(P)
            P = np.linalg.inv(P_inv + info)
            state = P @ (P_inv @ state + obs[t])
            out[t] = state[:n_f]
        return out * self.y_std_ + self.y_mean_


def kinematic_state(y: np.ndarray, order: int) -> np.ndarray:
    """``y`` (time x feature) and its first ``order - 1`` differences per bin, side by side.

    A difference is NaN where a bin it needs is unknown (a gap, a held-out bin, t = 0).
    """
    parts, current = [y], y
    for _ in range(order - 1):
        diff = np.full_like(current, np.nan)
        diff[1:] = current[1:] - current[:-1]
        parts.append(diff)
        current = diff
    return np.concatenate(parts, axis=1)
