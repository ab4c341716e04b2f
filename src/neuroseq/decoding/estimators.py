"""scikit-learn-style sequence decoders: `TransformerDecoder` and `GRUDecoder`.

``fit(X, y)`` takes a whole recording: spike counts (time x unit) and behaviour
(time x feature) with NaN wherever a target is unknown or held out; ``predict(X)`` returns
behaviour for every bin from spikes alone. Scaling (log1p and standardisation of inputs,
standardisation of targets) is fitted on the training targets' bins only. Weights are
saved as a ``state_dict`` plus a JSON description and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter
from sklearn.base import BaseEstimator, RegressorMixin

from neuroseq.decoding.networks import ARCHITECTURES, POSITIONS
from neuroseq.decoding.training import (
    pick_device,
    predict_sequence,
    progress_label,
    train_sequence_model,
)
from neuroseq.errors import InputError


class SequenceDecoder(RegressorMixin, BaseEstimator):
    """Shared facade of the torch decoders (see :class:`TransformerDecoder`)."""

    architecture = ""

    def __init__(
        self,
        *,
        window: int = 64,
        causal: bool = True,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        batch_size: int = 32,
        max_epochs: int = 60,
        patience: int = 8,
        val_fraction: float = 0.15,
        device: str = "auto",
        random_state: int | None = 0,
        smooth_bins: float = 0.0,
        burn_in: int = 0,
        train_stride: int | None = None,
        n_members: int = 1,
        position: str = "sinusoidal",
        conv_kernel: int = 0,
        output_norm: bool = True,
    ) -> None:
        self.window = window
        self.causal = causal
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.dim_feedforward = dim_feedforward
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state
        self.smooth_bins = smooth_bins
        self.burn_in = burn_in
        self.train_stride = train_stride
        self.n_members = n_members
        self.position = position
        self.conv_kernel = conv_kernel
        self.output_norm = output_norm

    def _net(self, n_in: int, n_out: int) -> torch.nn.Module:
        return ARCHITECTURES[self.architecture](
            n_in,
            n_out,
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            dim_feedforward=self.dim_feedforward,
            dropout=self.dropout,
            causal=self.causal,
            max_len=max(self.window, 16),
            position=self.position,
            conv_kernel=self.conv_kernel,
            output_norm=self.output_norm,
        )

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None):
        """Train on the bins with finite targets; validate on the last ``val_fraction``.

        ``groups`` (trial of each bin, -1 outside) makes the validation split by trial:
        whole trials, the last ones in time, are held out for early stopping.
        """
        if self.position not in POSITIONS:
            raise InputError(
                "config",
                f"decoding.{self.architecture}.position",
                " or ".join(POSITIONS),
                repr(self.position),
            )
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
        rows = np.isfinite(y).any(1)
        seed = 0 if self.random_state is None else int(self.random_state)
        Z = self._features(X)
        self.x_mean_, self.x_std_ = Z[rows].mean(0), Z[rows].std(0)
        self.x_std_[self.x_std_ == 0] = 1.0
        self.y_mean_, self.y_std_ = np.nanmean(y, 0), np.nanstd(y, 0)
        self.y_std_[~(self.y_std_ > 0)] = 1.0
        self.device_ = pick_device(self.device)
        Xs = self._standardise(Z)
        ys = (y - self.y_mean_) / self.y_std_
        val = _validation_bins(rows, groups, self.val_fraction)
        self.nets_, self.histories_ = [], []
        for member in range(self.n_members):
            torch.manual_seed(seed + member)
            net = self._net(X.shape[1], y.shape[1])
            label = f"member {member + 1}/{self.n_members}" if self.n_members > 1 else ""
            with progress_label(label):
                history = train_sequence_model(
                    net,
                    Xs,
                    ys,
                    val,
                    window=self.window,
                    batch_size=self.batch_size,
                    lr=self.lr,
                    weight_decay=self.weight_decay,
                    max_epochs=self.max_epochs,
                    patience=self.patience,
                    burn_in=self.burn_in if self.causal else 0,
                    stride=self.train_stride,
                    seed=seed + member,
                    device=self.device_,
                )
            self.nets_.append(net)
            self.histories_.append(history)
        self.n_features_in_ = X.shape[1]
        return self

    @property
    def net_(self) -> torch.nn.Module:
        """The first member's network (the only one unless ``n_members > 1``)."""
        return self.nets_[0]

    @property
    def history_(self):
        """The first member's training history (losses per epoch, best epoch, seconds)."""
        return self.histories_[0]

    def _smooth(self, X: np.ndarray) -> np.ndarray:
        return smooth_counts(X, self.smooth_bins, causal=self.causal)

    def _features(self, X: np.ndarray) -> np.ndarray:
        """log1p of the smoothed counts, float64 (the scaling survives JSON exactly)."""
        return np.log1p(self._smooth(X).astype(np.float64))

    def _standardise(self, Z: np.ndarray) -> np.ndarray:
        return ((Z - self.x_mean_) / self.x_std_).astype(np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        Xs = self._standardise(self._features(np.asarray(X, dtype=np.float32)))
        out = np.mean(
            [
                predict_sequence(
                    net, Xs, window=self.window, causal=self.causal, device=self.device_
                )
                for net in self.nets_
            ],
            axis=0,
        )
        return out * self.y_std_ + self.y_mean_

    def save(self, path: str | Path, *, context: dict | None = None) -> Path:
        """Write ``path`` (the state_dict; with several members a dict
        ``{"members": [state_dict, ...]}``) and ``path.json`` (parameters and scaling).

        ``context`` (JSON-serialisable) is stored alongside, e.g. which fold and lag the
        weights belong to; :meth:`load` ignores it.
        """
        path = Path(path)
        states = [net.state_dict() for net in self.nets_]
        torch.save(states[0] if len(states) == 1 else {"members": states}, path)
        meta = {
            "architecture": self.architecture,
            "params": self.get_params(),
            "n_in": int(self.n_features_in_),
            "n_out": int(self.y_mean_.size),
            **{k: getattr(self, k).tolist() for k in ("x_mean_", "x_std_", "y_mean_", "y_std_")},
            "context": context or {},
        }
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(meta))
        return path

    @classmethod
    def load(cls, path: str | Path) -> SequenceDecoder:
        """Rebuild a fitted decoder without retraining (``weights_only=True``)."""
        path = Path(path)
        meta = json.loads(path.with_suffix(path.suffix + ".json").read_text())
        if cls.architecture and meta.get("architecture") != cls.architecture:
            raise InputError(
                path,
                "architecture",
                f"{cls.architecture} weights for {cls.__name__}",
                str(meta.get("architecture")),
            )
        est = cls(**meta["params"])
        for k in ("x_mean_", "x_std_", "y_mean_", "y_std_"):
            setattr(est, k, np.asarray(meta[k]))
        est.n_features_in_ = meta["n_in"]
        est.device_ = pick_device(est.device)
        saved = torch.load(path, map_location="cpu", weights_only=True)
        states = saved.get("members", [saved])
        est.nets_, est.histories_ = [], []
        for state in states:
            est.nets_.append(est._net(meta["n_in"], meta["n_out"]))
            est.nets_[-1].load_state_dict(state)
        return est


def smooth_counts(X: np.ndarray, sigma: float, *, causal: bool) -> np.ndarray:
    """Gaussian smoothing of counts over time (bins); causal: the past half only.

    Notes
    -----
    Acausal: ``gaussian_filter1d`` with sd ``sigma`` bins, truncated at 3 sd, zeros
    beyond the ends. Causal: the half-Gaussian ``w_k = exp(-k^2 / (2 sigma^2))``,
    ``k = 0 .. ceil(3 sigma)``, normalised to sum 1, so bin t mixes bins t-k only; it
    delays the signal by about ``0.8 sigma`` bins, which the decoders' windows absorb.
    """
    if sigma <= 0:
        return X
    X = np.asarray(X, dtype=np.float32)
    if not causal:
        return gaussian_filter1d(X, sigma, axis=0, mode="constant", truncate=3.0)
    lags = np.arange(int(np.ceil(3 * sigma)) + 1)
    kernel = np.exp(-0.5 * (lags / sigma) ** 2)
    return lfilter(kernel / kernel.sum(), [1.0], X, axis=0).astype(np.float32)


def _validation_bins(rows: np.ndarray, groups: np.ndarray | None, fraction: float) -> np.ndarray:
    val = np.zeros(rows.size, dtype=bool)
    if groups is not None and (groups[rows] >= 0).any():
        ids = np.unique(groups[rows & (groups >= 0)])
        n_val = max(1, round(fraction * ids.size))
        val = np.isin(groups, ids[-n_val:]) & rows
    else:
        idx = np.flatnonzero(rows)
        val[idx[int((1 - fraction) * idx.size) :]] = True
    return val


class TransformerDecoder(SequenceDecoder):
    """Transformer sequence-to-sequence decoder (``networks.TransformerNet``).

    Parameters
    ----------
    window : int
        Bins per training window and per prediction window.
    causal : bool
        Each bin sees only itself and earlier bins (masked attention).
    d_model, n_heads, n_layers, dim_feedforward, dropout : architecture.
    lr, weight_decay, batch_size, max_epochs, patience : AdamW and early stopping on a
        validation split of ``val_fraction`` of the training trials.
    device : ``"auto"`` (CUDA when present, mixed precision there), ``"cpu"``, ``"cuda"``.
    random_state : int
        Seeds the weights, the window order and the dropout.
    smooth_bins : float
        Gaussian smoothing of the counts (sd in bins) before log1p and standardisation;
        causal decoders use the past half of the kernel only. 0: none.
    burn_in : int
        Causal decoders: the first ``burn_in`` bins of each training window, which see
        little history, carry no loss (prediction reads the second half of each window).
    train_stride : int, optional
        Bins between training windows (default ``window // 2``); smaller is denser.
    n_members : int
        Networks trained from seeds ``random_state + i`` (other initial weights, window
        order and dropout; the same early-stopping trials) and averaged in ``predict``.
    position : ``"sinusoidal"`` or ``"alibi"``
        How bins know their place in the window (see ``networks.TransformerNet``).
    conv_kernel : int
        > 1: a depthwise convolution of that many bins over time on the projected inputs,
        before attention (causal when the decoder is); 0: none.
    output_norm : bool
        Read behaviour out through a final LayerNorm (True) or from the residual stream
        itself (False).
    """

    architecture = "transformer"


class GRUDecoder(SequenceDecoder):
    """Causal GRU decoder, the recurrent baseline (same facade and training loop)."""

    architecture = "gru"
