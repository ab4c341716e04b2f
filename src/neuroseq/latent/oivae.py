"""`OIVAE`: the scikit-learn-style oi-VAE estimator on plain arrays.

``OIVAE(n_latents=16, lam=100.0).fit(X, groups)`` learns which latent reaches which
group of columns of ``X``; ``transform(X)`` gives the posterior means of the latents,
``w_norm_`` the ``(n_latents, n_groups)`` map of column norms ``||w_j^(g)||``.
``X`` may hold NaN: those entries are left out of the likelihood (never filled in).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from neuroseq.decoding.training import pick_device
from neuroseq.errors import InputError
from neuroseq.latent.oivae_networks import OIVAENet
from neuroseq.latent.oivae_training import elbo_per_example, train_oivae


class OIVAE(TransformerMixin, BaseEstimator):
    """Output-interpretable VAE with a group-lasso prior on the latent-to-group weights.

    Parameters
    ----------
    n_latents : int
        ``K``, the number of latents available; the penalty switches off those not needed.
    lam : float
        Group-lasso weight ``lambda`` on the scale of the log joint density of the whole
        training set (the ELBO *summed* over examples); 0 gives a plain VAE with
        group-structured generators.
    group_dim : int
        Rows of each ``W_g`` (input width of each group's generator).
    hidden : int
        Hidden width of each group's generator ``f_g``; 0: ``f_g`` is affine.
    encoder_hidden : int
        Hidden width of the amortised encoder.
    prior_scale : float
        Standard deviation of the Gaussian prior on the generators' parameters.
    standardize : bool
        Centre and scale every column on the training data first (NaN ignored).
    lr, lr_w : float
        Adam's learning rate (everything but ``W``); base step of the proximal updates of
        ``W`` (see :class:`neuroseq.latent.oivae_training.ProximalColumnRMSprop`).
    batch_size, max_epochs : int
    warmup_epochs : int
        Epochs with the noise scales frozen at their (small) initial value and no penalty;
        lambda then ramps up linearly over as many epochs.
    relax_epochs : int
        Epochs of the relaxed refit that follows: no penalty, the columns outside the
        support chosen by the penalty held at exactly zero (with ``lam = 0``, more epochs
        of the same unpenalised fit). 0: none, the paper's estimator as it stands.
    active_tol : float
        Column ``w_j^(g)`` is in the support when its norm exceeds ``active_tol`` times the
        largest norm in group ``g``; a latent is active when it is in some group's support.
    device : ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    random_state : int
        Seeds the initial weights, the minibatches and the reparameterisation noise.

    Attributes
    ----------
    groups_ : ndarray of str
        Group names in the order of ``w_norm_``'s columns.
    w_norm_ : ndarray (n_latents, n_groups)
    support_ : ndarray of bool (n_groups, n_latents)
        Columns of ``W`` chosen by the penalty (kept in the relaxed refit).
    active_ : ndarray of bool (n_latents,)
    history_ : History
        ELBO per example (scaled data) after every epoch, training and held-out; the
        epochs from ``penalized_epochs_`` on are those of the relaxed refit.
    penalized_epochs_ : int
    mean_, scale_ : ndarray (n_features,)
        The standardisation (zeros and ones when ``standardize`` is False).

    Notes
    -----
    Ainsworth, Foti, Lee & Fox (2018), oi-VAE, ICML. With ``z ~ N(0, I_K)`` and
    ``x^(g) | z ~ N(f_g(W_g z), diag sigma_g^2)``, the fit maximises

    .. math:: \\sum_n \\mathrm{ELBO}_n + \\log p(\\theta)
              - \\lambda \\sum_{g,j} \\lVert w_j^{(g)} \\rVert_2

    with ``log p(theta)`` a ``N(0, prior_scale^2)`` prior on the generators' parameters
    and ``lambda`` the rate of the group-sparsity prior on ``W`` (the paper's
    hierarchical prior, marginalised, is this group lasso).

    *Scale.* Minibatch gradients are taken of the objective divided by ``N``, every term
    alike: the batch mean of the ELBO, ``log p(theta) / N`` and a proximal threshold of
    ``eta * lambda / N``. Averaging the data term per example while keeping the penalty
    (or the weight prior) whole, as is easy to do, multiplies the effective ``lambda`` by
    ``N`` (2,000-7,000 here); ``test_lambda_is_on_the_summed_elbo_scale`` checks that
    ``N`` copies of the data with ``N lambda`` fit as the data with ``lambda``. The prior
    counts once, so the same ``lambda`` penalises a long recording relatively less.

    *The proximal step* touches ``W`` only (the ``G x K`` columns ``w_j^(g)``): not the
    generators, the encoder nor the noise scales, which Adam updates from the smooth
    part. ``W`` is not given to Adam: it moves by a gradient step with one step size per
    column, ``eta_gj = lr_w / (sqrt(v_gj) + 1e-8)`` (``v_gj`` the bias-corrected running
    mean of the squared gradient over the column), followed by
    ``w <- w / ||w|| (||w|| - eta_gj lambda / N)_+`` with that same ``eta_gj``. Each
    update is then an exact proximal gradient step, whose fixed points are the penalised
    objective's stationary points whatever the step sizes; with Adam's per-coordinate
    steps the shrinkage would not match the step within a column.

    *Schedule.* Noise scales start at 0.1 (standardised units) and are held there for
    ``warmup_epochs`` without penalty, so that every group gets encoded (a group not yet
    encoded while its noise scale grows settles where no gradient reaches ``W_g``);
    lambda then ramps up over as many epochs; both step sizes decay linearly to zero over
    the last third. The relaxed refit (``relax_epochs``) keeps the support and drops the
    penalty's shrinkage, after the relaxed lasso (Meinshausen 2007): on a demo session the
    shrinkage alone cost sparse maps 1-3 nats per bin of held-out ELBO (refitted on
    their support they beat the dense map), enough for held-out selection to prefer
    dense maps.
    """

    def __init__(
        self,
        n_latents: int = 10,
        lam: float = 100.0,
        *,
        group_dim: int = 2,
        hidden: int = 16,
        encoder_hidden: int = 64,
        prior_scale: float = 1.0,
        standardize: bool = True,
        lr: float = 3e-3,
        lr_w: float = 3e-3,
        batch_size: int = 256,
        max_epochs: int = 40,
        warmup_epochs: int = 10,
        relax_epochs: int = 15,
        active_tol: float = 0.01,
        device: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.n_latents = n_latents
        self.lam = lam
        self.group_dim = group_dim
        self.hidden = hidden
        self.encoder_hidden = encoder_hidden
        self.prior_scale = prior_scale
        self.standardize = standardize
        self.lr = lr
        self.lr_w = lr_w
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.warmup_epochs = warmup_epochs
        self.relax_epochs = relax_epochs
        self.active_tol = active_tol
        self.device = device
        self.random_state = random_state

    def fit(
        self,
        X: np.ndarray,
        groups: Sequence[str] | np.ndarray,
        *,
        X_heldout: np.ndarray | None = None,
    ) -> OIVAE:
        """Fit on ``X`` (n, p) whose column ``i`` belongs to group ``groups[i]``.

        ``X_heldout`` (same columns), when given, is scored after every epoch
        (``history_.heldout_elbo``) and never trained on.
        """
        X = self._check_X(X, fitting=True)
        self._check_params()
        self.n_features_in_ = X.shape[1]
        groups = np.asarray(groups).astype(str)
        if groups.shape != (X.shape[1],):
            raise InputError(
                "arrays", "groups", f"one label per column ({X.shape[1]})", f"{groups.shape}"
            )
        names, first = np.unique(groups, return_index=True)
        self.groups_ = names[np.argsort(first)]  # order of first appearance
        if self.groups_.size < 2:
            raise InputError(
                "arrays", "groups", "at least 2 groups of columns", f"{self.groups_.tolist()}"
            )
        # Columns are reordered so that each group is contiguous for the generators.
        self.column_order_ = np.concatenate([np.flatnonzero(groups == g) for g in self.groups_])
        self.group_of_column_ = groups
        if self.standardize:
            self.mean_ = np.nanmean(X, 0)
            self.scale_ = np.nanstd(X, 0)
            self.scale_[~(self.scale_ > 0)] = 1.0
        else:
            self.mean_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        seed = 0 if self.random_state is None else int(self.random_state)
        torch.manual_seed(seed)
        self.net_ = OIVAENet(
            [int((groups == g).sum()) for g in self.groups_],
            self.n_latents,
            group_dim=self.group_dim,
            hidden=self.hidden,
            encoder_hidden=self.encoder_hidden,
        )
        self.device_ = pick_device(self.device)
        held = None
        if X_heldout is not None:
            held = self._scaled(self._check_X(X_heldout))
        train = dict(
            X_heldout=None if held is None else held[0],
            observed_heldout=None if held is None else held[1],
            prior_scale=self.prior_scale,
            lr=self.lr,
            lr_w=self.lr_w,
            batch_size=self.batch_size,
            seed=seed,
            device=self.device_,
        )
        Xs, observed = self._scaled(X)
        self.history_ = train_oivae(
            self.net_,
            Xs,
            observed,
            lam=float(self.lam),
            max_epochs=self.max_epochs,
            warmup_epochs=self.warmup_epochs,
            **train,
        )
        self.support_ = self._support()
        if self.relax_epochs:
            # Relaxed refit: the support stays, the penalty's shrinkage goes. A plain VAE
            # (lam = 0) trains as many more epochs, unmasked, so that every lambda of a
            # path gets the same training.
            relaxed = train_oivae(
                self.net_,
                Xs,
                observed,
                lam=0.0,
                max_epochs=self.relax_epochs,
                support=self.support_ if self.lam > 0 else None,
                **train,
            )
            for name in ("train_elbo", "heldout_elbo", "penalty", "n_active"):
                getattr(self.history_, name).extend(getattr(relaxed, name))
            self.history_.seconds += relaxed.seconds
        if not self.lam:
            self.support_ = self._support()
        self.n_train_ = X.shape[0]
        self.penalized_epochs_ = self.max_epochs
        self.w_norm_ = self.net_.w_norm().cpu().numpy().T.astype(np.float64)
        self.active_ = self.support_.any(0)
        return self

    # ------------------------------------------------------------------ inference

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Posterior means E[z | x] (n, n_latents)."""
        mu, _ = self._encode(X)
        return mu

    def posterior(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and standard deviations of q(z | x)."""
        mu, logvar = self._encode(X)
        return mu, np.exp(0.5 * logvar)

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """``f(W E[z | x])`` in the units of ``X`` (columns in ``X``'s order)."""
        mu, _ = self._encode(X)
        with torch.no_grad():
            self.net_.eval()
            out = self.net_.decode(torch.as_tensor(mu, dtype=torch.float32, device=self.device_))
        scaled = np.empty((len(X), self.n_features_in_))
        scaled[:, self.column_order_] = out.cpu().numpy()
        return scaled * self.scale_ + self.mean_

    def elbo(self, X: np.ndarray, n_samples: int = 16) -> np.ndarray:
        """ELBO of every row (nats, on the standardised data; 16 draws, fixed seed)."""
        Xs, obs = self._scaled(self._check_X(X))
        out = elbo_per_example(
            self.net_,
            torch.as_tensor(Xs, dtype=torch.float32, device=self.device_),
            torch.as_tensor(obs, dtype=torch.bool, device=self.device_),
            n_samples=n_samples,
            seed=0 if self.random_state is None else int(self.random_state),
        )
        return out.cpu().numpy().astype(np.float64)

    def score(self, X: np.ndarray, y: None = None) -> float:
        """Mean ELBO per row (higher is better), as a model-selection score."""
        return float(self.elbo(X).mean())

    def recon_r2(self, X: np.ndarray) -> np.ndarray:
        """R2 of :meth:`reconstruct` per group (in ``groups_`` order), observed entries only.

        Each column is standardised first (training mean and scale), so every column of a
        group weighs the same: ``1 - sum (x - x_hat)^2 / sum (x - mean_train)^2``.
        """
        X = self._check_X(X)
        resid = ((X - self.reconstruct(X)) / self.scale_) ** 2
        total = ((X - self.mean_) / self.scale_) ** 2
        ok = np.isfinite(X)
        out = np.full(self.groups_.size, np.nan)
        for i, g in enumerate(self.groups_):
            cols = self.group_of_column_ == g
            den = total[:, cols][ok[:, cols]].sum()
            if den > 0:
                out[i] = 1.0 - resid[:, cols][ok[:, cols]].sum() / den
        return out

    # ------------------------------------------------------------------ helpers

    def _support(self) -> np.ndarray:
        """Columns ``(G, K)`` of ``W`` above ``active_tol`` times their group's largest."""
        norm = self.net_.w_norm().cpu().numpy()
        top = norm.max(1, keepdims=True)
        return (norm > self.active_tol * top) & (top > 0)

    def _encode(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Xs, obs = self._scaled(self._check_X(X))
        self.net_.eval()
        with torch.no_grad():
            mu, logvar = self.net_.encode(
                torch.as_tensor(Xs, dtype=torch.float32, device=self.device_),
                torch.as_tensor(obs, dtype=torch.bool, device=self.device_),
            )
        return mu.cpu().numpy().astype(np.float64), logvar.cpu().numpy().astype(np.float64)

    def _scaled(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardised columns in group order, 0 where missing, and the observed mask."""
        Z = ((X - self.mean_) / self.scale_)[:, self.column_order_]
        observed = np.isfinite(Z)
        return np.where(observed, Z, 0.0).astype(np.float32), observed

    def _check_X(self, X: np.ndarray, fitting: bool = False) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise InputError("arrays", "X", "a 2-d array (examples x features)", f"{X.ndim}-d")
        if np.isinf(X).any():
            raise InputError("arrays", "X", "finite values or NaN (missing)", "inf")
        if not fitting and X.shape[1] != self.n_features_in_:
            raise InputError(
                "arrays", "X", f"{self.n_features_in_} columns as in fit", f"{X.shape[1]}"
            )
        if fitting:
            few = np.flatnonzero(np.isfinite(X).sum(0) < 2)
            if X.shape[0] < 2 or few.size:
                raise InputError(
                    "arrays",
                    "X",
                    "at least 2 rows and 2 observed values in every column",
                    f"{X.shape[0]} rows; columns {few[:10].tolist()} with fewer observed",
                )
        return X

    def _check_params(self) -> None:
        ints = {
            "n_latents": 1,
            "group_dim": 1,
            "hidden": 0,
            "encoder_hidden": 1,
            "batch_size": 1,
            "max_epochs": 1,
            "warmup_epochs": 0,
            "relax_epochs": 0,
        }
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise InputError("parameters", f"OIVAE {name}", f"an int >= {low}", repr(value))
        positive = {"prior_scale": True, "lr": True, "lr_w": True, "lam": False}
        for name, strict in positive.items():
            value = getattr(self, name)
            ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
            ok = ok and np.isfinite(value) and (value > 0 if strict else value >= 0)
            if not ok:
                expected = "a finite number " + ("> 0" if strict else ">= 0")
                raise InputError("parameters", f"OIVAE {name}", expected, repr(value))
        if not (isinstance(self.active_tol, int | float) and 0 <= self.active_tol < 1):
            raise InputError(
                "parameters", "OIVAE active_tol", "a number in [0, 1)", repr(self.active_tol)
            )
