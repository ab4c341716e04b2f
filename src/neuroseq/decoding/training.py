"""The one training loop for sequence decoders: windows, masked MSE, AdamW, early stopping."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

# What the epoch lines of the log belong to (e.g. "fold 2/5 transformer"); set by the
# caller that knows, so the training loop needs no argument for it.
_PROGRESS = contextvars.ContextVar("progress", default="")


@contextlib.contextmanager
def progress_label(label: str) -> Iterator[None]:
    """Prefix the epoch lines logged inside the block with ``label``, after any outer one."""
    token = _PROGRESS.set(" ".join(filter(None, (_PROGRESS.get(), label))))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def pick_device(device: str) -> torch.device:
    """``auto``: CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0


def window_starts(n: int, window: int, stride: int) -> np.ndarray:
    """Starts of windows of ``window`` bins every ``stride`` bins; the last one ends at n."""
    if n <= window:
        return np.array([0])
    starts = np.arange(0, n - window + 1, stride)
    return np.unique(np.r_[starts, n - window])


def train_sequence_model(
    net: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    val: np.ndarray,
    *,
    window: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    max_epochs: int = 60,
    patience: int = 8,
    seed: int = 0,
    device: torch.device | str = "cpu",
    burn_in: int = 0,
    stride: int | None = None,
    on_step: Callable[[nn.Module, int], None] | None = None,
) -> History:
    """Fit ``net`` by masked MSE on windows of the recording; keep the best validated state.

    Parameters
    ----------
    X : ndarray (n_bins, n_in)
        Scaled inputs.
    y : ndarray (n_bins, n_out)
        Scaled targets; NaN where unknown or held out (no loss there).
    val : ndarray of bool (n_bins,)
        Bins whose targets form the validation loss (taken out of the training loss).
    on_step : callable, optional
        Called as ``on_step(net, epoch)`` after every optimiser step (pruning uses it to
        count steps, keep the weights of step k and check its masks).
    """
    device = torch.device(device) if isinstance(device, str) else device
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    net.to(device)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    y_train = y.copy()
    y_train[val] = np.nan
    y_val = np.where(val[:, None], y, np.nan)
    targets = {
        name: torch.as_tensor(t, dtype=torch.float32)
        for name, t in (("train", y_train), ("val", y_val))
    }
    stride = max(1, window // 2) if stride is None else stride
    starts = window_starts(len(X), window, stride)
    useful = {
        name: np.array([np.isfinite(t[s : s + window].numpy()).any() for s in starts])
        for name, t in targets.items()
    }
    optimiser = torch.optim.AdamW(
        net.parameters(), lr=lr, weight_decay=weight_decay, foreach=False
    )
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    hist, best, best_state, waited = History(), np.inf, None, 0
    t0 = time.perf_counter()
    for epoch in range(max_epochs):
        net.train()
        offset = int(rng.integers(0, stride))  # windows shift every epoch
        chosen = starts[useful["train"]]
        chosen = np.clip(chosen + offset, 0, max(0, len(X) - window))
        order = torch.randperm(len(chosen), generator=generator).numpy()
        total, count = 0.0, 0
        for b in range(0, len(order), batch_size):
            xb, yb = _batch(
                Xt, targets["train"], chosen[order[b : b + batch_size]], window, device
            )
            if burn_in:  # bins with little context: predict_sequence never reads them
                yb[:, :burn_in] = float("nan")
            with torch.autocast(device.type, enabled=amp):
                loss = masked_mse(net(xb), yb)
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimiser)
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            scaler.step(optimiser)
            scaler.update()
            if on_step is not None:
                on_step(net, epoch)
            total += float(loss.detach()) * len(xb)
            count += len(xb)
        hist.train_loss.append(total / max(count, 1))
        hist.val_loss.append(
            evaluate_loss(
                net, Xt, targets["val"], starts[useful["val"]], window, batch_size, device
            )
        )
        improved = hist.val_loss[-1] < best - 1e-4
        if improved:
            best, best_state, waited = hist.val_loss[-1], copy.deepcopy(net.state_dict()), 0
            hist.best_epoch = epoch
        else:
            waited += 1
        log.info(
            "%sepoch %d/%d  train %.4f  val %.4f%s  %.1f s",
            f"{_PROGRESS.get()}  " if _PROGRESS.get() else "",
            epoch + 1,
            max_epochs,
            hist.train_loss[-1],
            hist.val_loss[-1],
            "  (best)" if improved else f"  (no gain {waited}/{patience})",
            time.perf_counter() - t0,
        )
        if waited >= patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    hist.seconds = time.perf_counter() - t0
    return hist


def _batch(
    X: torch.Tensor, y: torch.Tensor, starts: np.ndarray, window: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.as_tensor(starts)[:, None] + torch.arange(window)[None, :]
    return X[idx].to(device), y[idx].to(device)


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite targets only."""
    ok = torch.isfinite(target)
    diff = torch.where(ok, pred.float() - torch.nan_to_num(target), 0.0)
    return (diff**2).sum() / ok.sum().clamp(min=1)


@torch.no_grad()
def evaluate_loss(net, X, y, starts, window, batch_size, device) -> float:
    if len(starts) == 0:
        return float("nan")
    net.eval()
    total, count = 0.0, 0
    for b in range(0, len(starts), batch_size):
        xb, yb = _batch(X, y, starts[b : b + batch_size], window, device)
        ok = int(torch.isfinite(yb).sum())
        total += float(masked_mse(net(xb), yb)) * ok
        count += ok
    return total / max(count, 1)


@torch.no_grad()
def predict_sequence(
    net: nn.Module,
    X: np.ndarray,
    *,
    window: int,
    causal: bool,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Predict every bin from overlapping windows (stride window / 2).

    Each bin is read from the window that gives it the most context: for a causal
    decoder its second half (the first window also its first half), for an acausal one
    its middle half.
    """
    device = torch.device(device) if isinstance(device, str) else device
    net.eval().to(device)
    n = len(X)
    window = min(window, n)
    stride = max(1, window // 2)
    starts = window_starts(n, window, stride)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    outs = []
    for b in range(0, len(starts), batch_size):
        idx = torch.as_tensor(starts[b : b + batch_size])[:, None] + torch.arange(window)
        outs.append(net(Xt[idx].to(device)).float().cpu().numpy())
    preds = np.concatenate(outs)
    out = np.full((n, preds.shape[-1]), np.nan)
    keep_from = window // 2 if causal else window // 4
    keep_to = window if causal else window - window // 4
    for i, s in enumerate(starts):  # later windows overwrite: they carry more context
        lo = 0 if i == 0 else keep_from
        hi = window if i == len(starts) - 1 else keep_to
        out[s + lo : s + hi] = preds[i, lo:hi]
    return out
