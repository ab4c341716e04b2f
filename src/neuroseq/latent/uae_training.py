"""The one training loop of the uncertainty autoencoder: noisy measurements, Gaussian decoder."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from neuroseq.latent.uae_networks import UAENet

log = logging.getLogger(__name__)


@dataclass
class History:
    """Per-epoch losses (mean squared error per element) and the epoch kept (-1: the start)."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0


def train_uae(
    net: UAENet,
    X: np.ndarray,
    val: np.ndarray,
    *,
    noise_std: float,
    train_encoder: bool = True,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    batch_size: int = 256,
    max_epochs: int = 200,
    patience: int = 15,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> History:
    """Maximise ``E_{Q(y|x)}[log p(x | y)]`` by minibatch Adam; keep the best validated state.

    Parameters
    ----------
    net : UAENet
    X : ndarray (n_samples, n_features)
        Centred training signals.
    val : ndarray of bool (n_samples,)
        Rows held out for early stopping (never in a gradient step).
    noise_std : float
        ``sigma`` of the measurement noise, drawn afresh for every example and step.
    train_encoder : bool
        False freezes ``W`` (transfer: only the decoder is re-learnt).

    Notes
    -----
    With an isotropic Gaussian decoder of fixed variance ``s^2``,
    ``log p(x | y) = -||x - g(y)||^2 / (2 s^2) + const``, so the objective of Grover &
    Ermon (2019, eq. 6) is the mean squared reconstruction error of noisy measurements,
    estimated with one noise draw per example and step. The validation loss uses one
    fixed noise draw (seeded) so epochs compare on equal terms.
    """
    device = torch.device(device) if isinstance(device, str) else device
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net.to(device)
    Xt = torch.as_tensor(X[~val], dtype=torch.float32, device=device)
    Xv = torch.as_tensor(X[val], dtype=torch.float32, device=device)
    val_noise = noise_std * torch.randn(
        (len(Xv), net.V.shape[0]), generator=torch.Generator().manual_seed(seed + 1)
    ).to(device)
    params = [p for name, p in net.named_parameters() if train_encoder or name != "V"]
    optimiser = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=False)
    # Smaller steps once validation stalls: the last digits of the error are where a
    # learnt encoder and the best linear one (PCA) differ.
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, factor=0.3, patience=max(1, patience // 3)
    )
    hist, waited = History(), 0
    # The starting state competes too: training only replaces it by a better one.
    best, best_state = _val_loss(net, Xv, val_noise), copy.deepcopy(net.state_dict())
    t0 = time.perf_counter()
    for epoch in range(max_epochs):
        net.train()
        order = torch.randperm(len(Xt), generator=generator).to(device)
        total = 0.0
        for b in range(0, len(order), batch_size):
            xb = Xt[order[b : b + batch_size]]
            loss = nn.functional.mse_loss(net(xb, noise_std), xb)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(xb)
        hist.train_loss.append(total / len(Xt))
        hist.val_loss.append(_val_loss(net, Xv, val_noise))
        schedule.step(hist.val_loss[-1])
        if hist.val_loss[-1] < best * (1 - 1e-4):
            best, best_state, waited = hist.val_loss[-1], copy.deepcopy(net.state_dict()), 0
            hist.best_epoch = epoch
        else:
            waited += 1
            if waited >= patience:
                break
    log.debug(
        "UAE m=%d: %d epochs, best %d (val MSE %.4g)",
        net.V.shape[0],
        len(hist.train_loss),
        hist.best_epoch,
        best,
    )
    net.load_state_dict(best_state)
    hist.seconds = time.perf_counter() - t0
    return hist


@torch.no_grad()
def _val_loss(net: UAENet, Xv: torch.Tensor, noise: torch.Tensor) -> float:
    if len(Xv) == 0:
        return float("nan")
    net.eval()
    return float(nn.functional.mse_loss(net.decode(Xv @ net.W.T + noise), Xv))
