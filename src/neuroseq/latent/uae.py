"""Statistical compressed sensing: the uncertainty autoencoder and its linear baselines.

Every recovery model follows one contract on plain arrays (rows are signals ``x``):
``fit(X)`` learns from training signals; ``measure(X)`` returns ``Y = X W^T + noise``
(``m`` measurements per signal, ``W`` with unit-norm rows, Gaussian noise of
``noise_std``); ``reconstruct(Y)`` returns the recovered signals. Fitted attributes:
``W_`` (``m x n``) and ``mean_`` (the training mean).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.fft
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

from neuroseq.decoding.training import pick_device
from neuroseq.errors import InputError
from neuroseq.latent.uae_networks import ENCODERS, UAENet
from neuroseq.latent.uae_training import train_uae


def check_signals(X: Any, n_measurements: int, source: object) -> np.ndarray:
    """``X`` as a finite float array with more features than measurements, or InputError."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise InputError(source, "X", "a 2-d array of at least 2 signals", f"shape {X.shape}")
    if not np.isfinite(X).all():
        raise InputError(source, "X", "finite values", f"{int((~np.isfinite(X)).sum())} not")
    m = n_measurements
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 0 < m < X.shape[1]:
        raise InputError(
            source,
            "n_measurements",
            f"an integer with 0 < m < n_features = {X.shape[1]} (compression)",
            repr(m),
        )
    return X


def _check_noise(noise_std: Any, source: object) -> float:
    if not (isinstance(noise_std, int | float) and np.isfinite(noise_std) and noise_std >= 0):
        raise InputError(source, "noise_std", "a finite number >= 0", repr(noise_std))
    return float(noise_std)


def gaussian_matrix(m: int, n: int, seed: int | None) -> np.ndarray:
    """An ``m x n`` standard Gaussian matrix with its rows scaled to unit norm."""
    W = np.random.default_rng(seed).standard_normal((m, n))
    return W / np.linalg.norm(W, axis=1, keepdims=True)


def linear_decoder(Xc: np.ndarray, W: np.ndarray, noise_std: float) -> np.ndarray:
    """The best linear decoder ``A`` (n x m) of centred ``x`` from ``y = W x + noise``.

    ``A = C W^T (W C W^T + sigma^2 I)^-1`` with ``C`` the covariance of the rows of ``Xc``
    (the linear minimum mean squared error estimate; a small ridge keeps it defined when
    ``W C W^T`` is singular).
    """
    C = Xc.T @ Xc / max(len(Xc) - 1, 1)
    G = W @ C @ W.T + (noise_std**2 + 1e-9 * np.trace(C) / len(C)) * np.eye(len(W))
    return np.linalg.solve(G, W @ C).T


def reconstruction_errors(X: np.ndarray, X_hat: np.ndarray) -> np.ndarray:
    """The l2 error of every signal, ``||x - x_hat||_2``."""
    return np.linalg.norm(np.asarray(X) - np.asarray(X_hat), axis=1)


class _Recovery(BaseEstimator):
    """Shared ``measure`` and ``score`` of the recovery models."""

    noise_std: float
    random_state: int | None

    def measure(
        self, X: Any, noise_std: float | None = None, random_state: int | None = None
    ) -> np.ndarray:
        """``Y = X W^T + noise``: the noisy measurements of every row of ``X``.

        ``noise_std`` defaults to the model's; the noise is seeded by ``random_state``
        (default: the model's ``random_state`` + 1, never the training draws).
        """
        X = np.asarray(X, dtype=np.float64)
        sigma = self.noise_std if noise_std is None else noise_std
        if random_state is None:
            random_state = None if self.random_state is None else self.random_state + 1
        noise = np.random.default_rng(random_state).standard_normal((len(X), len(self.W_)))
        return X @ self.W_.T + sigma * noise

    def score(self, X: Any, y: None = None) -> float:
        """Minus the mean l2 error of recovering ``X`` from its noisy measurements."""
        return -float(reconstruction_errors(X, self.reconstruct(self.measure(X))).mean())


class UncertaintyAutoencoder(_Recovery):
    """Learn ``m`` linear measurements and a neural decoder that recovers the signal.

    Parameters
    ----------
    n_measurements : int
        ``m``, the number of measurements (0 < m < n_features).
    noise_std : float
        ``sigma`` of the Gaussian measurement noise, in the units of ``X``; it is
        meaningful because every row of ``W`` has unit l2 norm.
    encoder : {"learned", "random"} or ndarray (m, n_features)
        ``learned``: ``W`` trained jointly with the decoder (the UAE). ``random``: a
        fixed Gaussian matrix with unit rows (only the decoder learns). An array: a fixed
        matrix, e.g. a ``W_`` learnt on another dataset (transfer: only the decoder is
        re-learnt here); its rows are normalised.
    hidden : tuple of int
        Widths of the decoder MLP (a linear path runs beside it).
    lr, weight_decay, batch_size, max_epochs, patience : Adam and early stopping on the
        last ``val_fraction`` of the rows of ``X``.
    init : {"pca", "random"}
        Starting point of a learnt encoder: the top principal directions of the training
        rows, or the random Gaussian matrix.
    device : ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    random_state : int
        Seeds the initial (or random) ``W``, the decoder's weights, the batches and the
        noise.

    Attributes
    ----------
    W_ : ndarray (m, n_features)
        The measurement matrix (unit-norm rows).
    mean_ : ndarray (n_features,)
    history_ : uae_training.History
        Training and validation MSE per epoch.

    Notes
    -----
    Grover & Ermon (2019), "Uncertainty Autoencoders: Learning Compressed
    Representations via Variational Information Maximization", AISTATS. The model
    measures ``y = W x + sigma eps`` and maximises
    ``E_x E_{Q(y|x)}[log p_theta(x | y)]`` over ``W`` and the decoder ``theta``, a
    variational lower bound (up to the data entropy) on the mutual information between
    ``x`` and ``y``. With a Gaussian decoder of fixed variance this is the mean squared
    error of recovering ``x`` from noisy measurements. Rows of ``W`` have unit norm
    (see :class:`~neuroseq.latent.uae_networks.UAENet`). Signals are centred on the
    training mean before measuring; since ``W mean_`` is known, this changes nothing
    about what the measurements carry. Training starts from a linear solution: the
    decoder's linear path is the best linear decoder of the initial ``W``
    (:func:`linear_decoder`) and its MLP is silent, so with ``init="pca"`` the network
    starts as PCA (with Wiener shrinkage for the noise). With a Gaussian signal and a
    linear decoder, the principal directions maximise the UAE objective, so PCA is the
    linear special case the UAE generalises; early stopping keeps the initial state
    when no epoch improves on it in validation.
    """

    def __init__(
        self,
        n_measurements: int = 10,
        noise_std: float = 0.01,
        encoder: str | np.ndarray = "learned",
        *,
        hidden: tuple[int, ...] = (128, 128),
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        batch_size: int = 256,
        max_epochs: int = 200,
        patience: int = 15,
        val_fraction: float = 0.15,
        init: str = "pca",
        device: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.n_measurements = n_measurements
        self.noise_std = noise_std
        self.encoder = encoder
        self.hidden = hidden
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.init = init
        self.device = device
        self.random_state = random_state

    def fit(self, X: Any, y: None = None) -> UncertaintyAutoencoder:
        """Train ``W`` (unless fixed) and the decoder on the rows of ``X``."""
        source = type(self).__name__
        X = check_signals(X, self.n_measurements, source)
        sigma = _check_noise(self.noise_std, source)
        m, n = self.n_measurements, X.shape[1]
        seed = 0 if self.random_state is None else int(self.random_state)
        n_val = round(self.val_fraction * len(X))
        if not 0 < n_val < len(X) - 1:
            raise InputError(
                source,
                "val_fraction",
                "a fraction leaving at least one validation and two training signals",
                f"{self.val_fraction} of {len(X)} signals",
            )
        if self.init not in ("pca", "random"):
            raise InputError(source, "init", "'pca' or 'random'", repr(self.init))
        val = np.zeros(len(X), dtype=bool)
        val[len(X) - n_val :] = True
        self.mean_ = X.mean(0)
        Xc = X - self.mean_
        kind, W0 = self._initial_encoder(Xc[~val], source)
        torch.manual_seed(seed)
        self.net_ = UAENet(n, m, hidden=tuple(self.hidden), encoder=kind, W0=torch.as_tensor(W0))
        W0 = self.net_.W.detach().double().numpy()  # rows normalised
        with torch.no_grad():  # the decoder starts as the best linear one for W0
            self.net_.linear.weight.copy_(torch.as_tensor(linear_decoder(Xc[~val], W0, sigma)))
            self.net_.linear.bias.zero_()
        self.device_ = pick_device(self.device)
        self.history_ = train_uae(
            self.net_,
            Xc.astype(np.float32),
            val,
            noise_std=sigma,
            train_encoder=kind == "learned",
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            patience=self.patience,
            seed=seed,
            device=self.device_,
        )
        self.net_.eval()
        self.W_ = self.net_.W.detach().cpu().double().numpy()
        self.n_features_in_ = n
        return self

    def _initial_encoder(self, Xc: np.ndarray, source: str) -> tuple[str, np.ndarray]:
        """The encoder kind and its starting (or fixed) matrix."""
        m, n = self.n_measurements, Xc.shape[1]
        seed = 0 if self.random_state is None else int(self.random_state)
        if not isinstance(self.encoder, str):
            W0 = np.asarray(self.encoder, dtype=np.float64)
            if W0.shape != (m, n) or not np.isfinite(W0).all():
                raise InputError(
                    source,
                    "encoder",
                    f"a finite ({m}, {n}) matrix (n_measurements x n_features)",
                    f"shape {W0.shape}",
                )
            return "random", W0  # a fixed matrix: only the decoder learns
        if self.encoder not in ENCODERS:
            raise InputError(
                source, "encoder", f"one of {ENCODERS} or an (m, n) array", self.encoder
            )
        if self.encoder == "learned" and self.init == "pca":
            return "learned", np.linalg.svd(Xc, full_matrices=False)[2][:m]
        return self.encoder, gaussian_matrix(m, n, seed)

    @torch.no_grad()
    def reconstruct(self, Y: Any) -> np.ndarray:
        """The decoder's mean of ``p(x | y)`` for every row of measurements ``Y``."""
        Y = np.asarray(Y, dtype=np.float64) - self.W_ @ self.mean_
        y = torch.as_tensor(Y, dtype=torch.float32, device=self.device_)
        return self.net_.decode(y).double().cpu().numpy() + self.mean_


class PCARecovery(_Recovery):
    """Measure the first ``m`` principal components; reconstruct in their span.

    Parameters
    ----------
    n_measurements : int
    noise_std : float
    random_state : int
        Seeds only the measurement noise.

    Notes
    -----
    ``W`` holds the top ``m`` eigenvectors of the training covariance (orthonormal rows);
    ``x_hat = mean + W^T (y - W mean)``, the best linear recovery from noiseless
    measurements under squared error (Eckart & Young 1936).
    """

    def __init__(
        self, n_measurements: int = 10, noise_std: float = 0.01, random_state: int | None = 0
    ) -> None:
        self.n_measurements = n_measurements
        self.noise_std = noise_std
        self.random_state = random_state

    def fit(self, X: Any, y: None = None) -> PCARecovery:
        X = check_signals(X, self.n_measurements, type(self).__name__)
        _check_noise(self.noise_std, type(self).__name__)
        self.mean_ = X.mean(0)
        _, _, Vt = np.linalg.svd(X - self.mean_, full_matrices=False)
        self.W_ = Vt[: self.n_measurements]
        self.n_features_in_ = X.shape[1]
        return self

    def reconstruct(self, Y: Any) -> np.ndarray:
        Y = np.asarray(Y, dtype=np.float64)
        return self.mean_ + (Y - self.W_ @ self.mean_) @ self.W_


def dct_basis(n: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Columns: the orthonormal DCT-II basis vectors of length ``n`` (2-d for images).

    With ``shape`` (e.g. ``(8, 8)``) the basis is the separable 2-d DCT of images of that
    shape, flattened row-major; ``x = Psi @ s`` inverts ``s = dct(x)``.
    """
    if shape is None:
        return scipy.fft.idct(np.eye(n), norm="ortho", axis=0)
    if int(np.prod(shape)) != n:
        raise InputError("LassoRecovery", "image_shape", f"a shape of {n} elements", str(shape))
    eye = np.eye(n).reshape(n, *shape)
    return scipy.fft.idctn(eye, norm="ortho", axes=tuple(range(1, len(shape) + 1))).reshape(n, n).T


class LassoRecovery(_Recovery):
    """Random Gaussian measurements, recovered by l1-penalised least squares (LASSO).

    Parameters
    ----------
    n_measurements : int
    noise_std : float
    basis : {"identity", "dct"}
        The basis ``Psi`` in which the signal is taken to be sparse: the signal's own
        coordinates (pixels, units) or the orthonormal DCT-II (2-d with ``image_shape``).
    image_shape : tuple of int, optional
        For a 2-d DCT of images (e.g. ``(8, 8)``); None: a 1-d DCT.
    positive : bool
        Constrain the coefficients to be >= 0 (a prior for non-negative signals such as
        pixel intensities; only meaningful with ``basis="identity"``).
    alphas : sequence of float
        Penalties searched; one is chosen on the training signals.
    n_alpha_signals : int
        Training signals (the last ones) used to choose ``alpha``.
    max_iter : int
        Coordinate-descent iterations of each recovery.
    random_state : int
        Seeds the measurement matrix and the noise.

    Notes
    -----
    Candès, Romberg & Tao (2006); Donoho (2006). Recovery solves
    ``s_hat = argmin_s ||y - W Psi s||^2 / (2m) + alpha ||s||_1`` and returns
    ``x_hat = Psi s_hat``; the signal is not centred, as in compressed sensing.
    ``alpha`` is the penalty whose recoveries of ``n_alpha_signals`` training signals,
    measured with fresh noise, have the lowest mean l2 error (penalties from large to
    small, each solve warm-started from the last); test signals play no part in the
    choice. ``W`` is the same matrix as the random encoder's for equal
    ``random_state`` (:func:`gaussian_matrix`).
    """

    def __init__(
        self,
        n_measurements: int = 10,
        noise_std: float = 0.01,
        basis: str = "identity",
        *,
        image_shape: tuple[int, ...] | None = None,
        positive: bool = False,
        alphas: tuple[float, ...] = tuple(np.logspace(-5, 0, 11).tolist()),
        n_alpha_signals: int = 300,
        max_iter: int = 5000,
        random_state: int | None = 0,
    ) -> None:
        self.n_measurements = n_measurements
        self.noise_std = noise_std
        self.basis = basis
        self.image_shape = image_shape
        self.positive = positive
        self.alphas = alphas
        self.n_alpha_signals = n_alpha_signals
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: Any, y: None = None) -> LassoRecovery:
        source = type(self).__name__
        X = check_signals(X, self.n_measurements, source)
        _check_noise(self.noise_std, source)
        if self.basis not in ("identity", "dct"):
            raise InputError(source, "basis", "'identity' or 'dct'", repr(self.basis))
        n = X.shape[1]
        seed = 0 if self.random_state is None else int(self.random_state)
        self.W_ = gaussian_matrix(self.n_measurements, n, seed)
        self.mean_ = X.mean(0)
        self.psi_ = np.eye(n) if self.basis == "identity" else dct_basis(n, self.image_shape)
        self.n_features_in_ = n
        held = X[-min(self.n_alpha_signals, len(X)) :]
        Y = self.measure(held, random_state=seed + 2)
        alphas = np.sort(np.asarray(self.alphas, dtype=float))[::-1]
        lasso = self._lasso(alphas[0], warm_start=True)  # each solve starts from the last
        errors = np.empty(alphas.size)
        for i, alpha in enumerate(alphas):
            recovered = self._recover(lasso.set_params(alpha=alpha), Y)
            errors[i] = reconstruction_errors(held, recovered).mean()
        self.alpha_ = float(alphas[int(np.argmin(errors))])
        self.alpha_errors_ = dict(zip(alphas.tolist(), errors.tolist(), strict=True))
        return self

    def _lasso(self, alpha: float, warm_start: bool = False) -> Lasso:
        return Lasso(
            alpha=alpha,
            fit_intercept=False,
            positive=self.positive,
            max_iter=self.max_iter,
            warm_start=warm_start,
        )

    def _recover(self, lasso: Lasso, Y: np.ndarray) -> np.ndarray:
        # One target per signal: scikit-learn solves each target's LASSO on its own.
        with warnings.catch_warnings():
            # An unconverged solve is scored by its recovery error like any other.
            warnings.simplefilter("ignore", ConvergenceWarning)
            lasso.fit(self.W_ @ self.psi_, Y.T)
        return lasso.coef_.reshape(len(Y), -1) @ self.psi_.T

    def reconstruct(self, Y: Any) -> np.ndarray:
        return self._recover(self._lasso(self.alpha_), np.asarray(Y, dtype=np.float64))
