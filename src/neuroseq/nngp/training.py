"""The one training loop of the finite-width networks: MSE, SGD or Adam, early stopping."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

OPTIMIZERS = ("adam", "sgd")


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0


def train_network(
    net: nn.Module,
    X: np.ndarray,
    Y: np.ndarray,
    val: np.ndarray,
    *,
    optimizer: str = "adam",
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    max_epochs: int = 200,
    patience: int = 20,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> History:
    """Fit ``net`` to ``Y`` by mean squared error; keep the state with the best validation loss.

    Parameters
    ----------
    X : ndarray (n, n_in)
    Y : ndarray (n, n_out)
        Regression targets (one-hot -0.1 / 0.9 for classes, as the NNGP's).
    val : ndarray of bool (n,)
        Samples held out of training for early stopping (none: train ``max_epochs``).
    optimizer : {"adam", "sgd"}
        Adam, or SGD with ``momentum``.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    net.to(device)
    # Copies: the inputs may be read-only (memory-mapped) arrays.
    Xt = torch.tensor(X, dtype=torch.float32, device=device)
    Yt = torch.tensor(Y, dtype=torch.float32, device=device)
    train_idx = torch.as_tensor(np.flatnonzero(~val))
    val_idx = torch.as_tensor(np.flatnonzero(val), device=device)
    if optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay, foreach=False)
    else:
        opt = torch.optim.SGD(
            net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=False
        )
    hist, best, best_state, waited = History(), np.inf, None, 0
    t0 = time.perf_counter()
    for epoch in range(max_epochs):
        net.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator)].to(device)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss = torch.mean((net(Xt[idx]) - Yt[idx]) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        hist.train_loss.append(total / max(len(order), 1))
        if len(val_idx) == 0:
            hist.val_loss.append(float("nan"))
            continue
        net.eval()
        with torch.no_grad():
            hist.val_loss.append(float(torch.mean((net(Xt[val_idx]) - Yt[val_idx]) ** 2)))
        if not np.isfinite(hist.val_loss[-1]):
            break  # diverged: keep the last good state
        if hist.val_loss[-1] < best - 1e-6:
            best, best_state, waited = hist.val_loss[-1], copy.deepcopy(net.state_dict()), 0
            hist.best_epoch = epoch
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    elif len(val_idx) == 0:
        hist.best_epoch = len(hist.train_loss) - 1
    hist.seconds = time.perf_counter() - t0
    return hist


@torch.no_grad()
def predict_network(net: nn.Module, X: np.ndarray, device: torch.device, batch: int = 4096):
    """Network outputs for ``X`` as float64 numpy, computed in float64.

    Inference in double precision makes a sample's prediction independent of the batch
    it is computed in (float32 matrix products round differently per batch size); the
    float32 -> float64 -> float32 round trip of the weights is exact.
    """
    net.eval()
    net.double()
    try:
        out = [
            net(torch.tensor(X[i : i + batch], dtype=torch.float64, device=device)).cpu().numpy()
            for i in range(0, len(X), batch)
        ]
    finally:
        net.float()
    return np.concatenate(out)
