"""What lottery-ticket search trains: a network, its data, its training loop and its score.

A *task* holds one split of the data (training, validation and test rows) and knows how
to build a fresh network (``build(seed)``), train a given one in place, masks and all
(``fit(net, seed, on_step)``), and score it on the held-out rows (``score(net)``).
:func:`neuroseq.pruning.lottery.find_tickets` needs nothing else, so the same search runs
on the MLP decoder, the transformer decoder and a classifier on scikit-learn's digits.

- :class:`ArrayTask`: one row per sample (an MLP on lagged spike history, or on images),
  trained by :func:`train_rows`, a plain minibatch loop with early stopping.
- :class:`SequenceTask`: a registered sequence architecture (``"transformer"``), trained
  by the decoders' own loop (:func:`neuroseq.decoding.training.train_sequence_model`).
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from neuroseq.decoding.evaluate import regression_scores
from neuroseq.decoding.networks import ARCHITECTURES
from neuroseq.decoding.training import (
    History,
    masked_mse,
    pick_device,
    predict_sequence,
    train_sequence_model,
)

StepHook = Callable[[nn.Module, int], None]


class Task(Protocol):
    """The interface :func:`~neuroseq.pruning.lottery.find_tickets` trains through."""

    def build(self, seed: int) -> nn.Module: ...

    def fit(self, net: nn.Module, seed: int, on_step: StepHook | None) -> History: ...

    def score(self, net: nn.Module) -> np.ndarray: ...


class MLPNet(nn.Module):
    """A fully connected ReLU network applied to the last axis (LeNet-300-100 by default).

    Notes
    -----
    LeNet-300-100 (LeCun et al. 1998) is the fully connected network of Frankle & Carbin
    (2019): two ReLU hidden layers of 300 and 100 units and a linear read-out.
    """

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int] = (300, 100)) -> None:
        super().__init__()
        sizes = [n_in, *hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], n_out))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def train_rows(
    net: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    *,
    loss: str = "mse",
    lr: float = 1.2e-3,
    weight_decay: float = 0.0,
    batch_size: int = 60,
    max_epochs: int = 50,
    patience: int = 5,
    seed: int = 0,
    device: torch.device | str = "cpu",
    on_step: StepHook | None = None,
) -> History:
    """Minibatch Adam on rows; keep the state of the epoch with the lowest validation loss.

    Parameters
    ----------
    X : ndarray (n, n_in), float32
    y : ndarray (n, n_out) of float (``loss="mse"``, NaN: no target) or (n,) of int class
        labels (``loss="cross_entropy"``).
    train, val : ndarray of bool (n,)
        Rows to train on and rows whose loss decides early stopping.
    on_step : callable, optional
        ``on_step(net, epoch)`` after every optimiser step.

    Notes
    -----
    Adam at ``lr = 1.2e-3`` with minibatches of 60 are Frankle & Carbin's (2019)
    settings for LeNet-300-100.
    """
    device = torch.device(device) if isinstance(device, str) else device
    net.to(device)
    generator = torch.Generator().manual_seed(seed)
    Xt = torch.as_tensor(X, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.long if loss == "cross_entropy" else torch.float32)
    yt = yt.to(device)
    criterion = nn.functional.cross_entropy if loss == "cross_entropy" else masked_mse
    rows = torch.as_tensor(np.flatnonzero(train), device=device)
    val_rows = torch.as_tensor(np.flatnonzero(val), device=device)
    optimiser = torch.optim.AdamW(
        net.parameters(), lr=lr, weight_decay=weight_decay, foreach=False
    )
    hist, best, best_state, waited = History(), np.inf, None, 0
    t0 = time.perf_counter()
    for epoch in range(max_epochs):
        net.train()
        order = rows[torch.randperm(len(rows), generator=generator).to(device)]
        total = 0.0
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            batch_loss = criterion(net(Xt[idx]), yt[idx])
            optimiser.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimiser.step()
            if on_step is not None:
                on_step(net, epoch)
            total += float(batch_loss.detach()) * len(idx)
        hist.train_loss.append(total / max(len(order), 1))
        net.eval()
        with torch.no_grad():
            hist.val_loss.append(float(criterion(net(Xt[val_rows]), yt[val_rows])))
        if hist.val_loss[-1] < best - 1e-4:
            best, best_state, waited = hist.val_loss[-1], copy.deepcopy(net.state_dict()), 0
            hist.best_epoch = epoch
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    hist.seconds = time.perf_counter() - t0
    return hist


class ArrayTask:
    """An :class:`MLPNet` on rows of ``X``: regression (R2 per target) or classification.

    Parameters
    ----------
    X : ndarray (n, n_in)
        Inputs, already scaled.
    y : ndarray
        (n, n_out) float targets (NaN: none) for ``loss="mse"``; (n,) int labels for
        ``loss="cross_entropy"``.
    train, val, test : ndarray of bool (n,)
        Training rows (``val`` among them: those rows decide early stopping and are not
        trained on) and held-out rows.
    hidden : sequence of int
    loss : {"mse", "cross_entropy"}
    lr, weight_decay, batch_size, max_epochs, patience : see :func:`train_rows`.
    device : {"auto", "cpu", "cuda"}

    ``score`` returns R2 per target (regression) or ``[accuracy]`` (classification).
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
        test: np.ndarray,
        *,
        hidden: Sequence[int] = (300, 100),
        loss: str = "mse",
        lr: float = 1.2e-3,
        weight_decay: float = 0.0,
        batch_size: int = 60,
        max_epochs: int = 50,
        patience: int = 5,
        device: str = "auto",
    ) -> None:
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        self.y = np.asarray(y)
        self.train, self.val, self.test = train & ~val, val & train, test
        self.hidden = tuple(int(h) for h in hidden)
        self.loss = loss
        self.options = dict(
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
        )
        self.device = pick_device(device)
        self.n_out = int(self.y.max()) + 1 if loss == "cross_entropy" else self.y.shape[1]

    def build(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return MLPNet(self.X.shape[1], self.n_out, self.hidden)

    def fit(self, net: nn.Module, seed: int, on_step: StepHook | None = None) -> History:
        return train_rows(
            net,
            self.X,
            self.y,
            self.train,
            self.val,
            loss=self.loss,
            seed=seed,
            device=self.device,
            on_step=on_step,
            **self.options,
        )

    @torch.no_grad()
    def predict(self, net: nn.Module, rows: np.ndarray) -> np.ndarray:
        net.eval().to(self.device)
        X = torch.as_tensor(self.X[rows], device=self.device)
        return net(X).float().cpu().numpy()

    def score(self, net: nn.Module) -> np.ndarray:
        out = self.predict(net, self.test)
        if self.loss == "cross_entropy":
            return np.array([float((out.argmax(1) == self.y[self.test]).mean())])
        with np.errstate(invalid="ignore", divide="ignore"):  # a dead net predicts a constant
            return regression_scores(self.y[self.test], out)["r2"]


class SequenceTask:
    """A registered sequence decoder (``neuroseq.decoding.networks.ARCHITECTURES``).

    Parameters
    ----------
    X : ndarray (n_bins, n_units)
        Scaled inputs of the whole recording.
    y : ndarray (n_bins, n_features)
        Scaled targets of the whole recording (NaN where unknown).
    train, val, test : ndarray of bool (n_bins,)
        The model is trained on the targets of ``train`` only (every other target hidden),
        stops early on ``val`` (a subset of ``train``) and is scored on ``test``.
    architecture : str
        A key of ``ARCHITECTURES`` (``"transformer"``).
    options : mapping
        The decoder's constructor arguments (those of
        :class:`neuroseq.decoding.TransformerDecoder`): architecture (``d_model``,
        ``n_heads``, ...) and training (``window``, ``lr``, ``weight_decay``,
        ``batch_size``, ``max_epochs``, ``patience``).
    device : {"auto", "cpu", "cuda"}
    """

    TRAINING = ("lr", "weight_decay", "batch_size", "max_epochs", "patience")

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
        test: np.ndarray,
        *,
        architecture: str = "transformer",
        options: Mapping[str, Any] | None = None,
        device: str = "auto",
    ) -> None:
        options = dict(options or {})
        self.window = int(options.pop("window", 64))
        self.causal = bool(options.get("causal", True))
        self.training = {k: options.pop(k) for k in self.TRAINING if k in options}
        self.arch_options = {**options, "max_len": max(self.window, 16)}
        self.architecture = architecture
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        self.y_fit = np.where(train[:, None], y, np.nan)  # no target outside training
        self.y = y
        self.val, self.test = val & train, test
        self.device = pick_device(device)

    def build(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return ARCHITECTURES[self.architecture](
            self.X.shape[1], self.y.shape[1], **self.arch_options
        )

    def fit(self, net: nn.Module, seed: int, on_step: StepHook | None = None) -> History:
        return train_sequence_model(
            net,
            self.X,
            self.y_fit,
            self.val,
            window=self.window,
            seed=seed,
            device=self.device,
            on_step=on_step,
            **self.training,
        )

    def score(self, net: nn.Module) -> np.ndarray:
        pred = predict_sequence(
            net, self.X, window=self.window, causal=self.causal, device=self.device
        )
        with np.errstate(invalid="ignore", divide="ignore"):  # a dead net predicts a constant
            return regression_scores(self.y[self.test], pred[self.test])["r2"]
