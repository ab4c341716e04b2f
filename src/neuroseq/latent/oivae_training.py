"""The one oi-VAE training loop: Adam on the smooth part, proximal steps on ``W``.

The objective over ``N`` training examples (Ainsworth et al. 2018, eq. 5) is

.. math:: \\mathcal{L} = \\sum_{n=1}^{N} \\mathrm{ELBO}_n + \\log p(\\theta)
          - \\lambda \\sum_{g,j} \\lVert w_j^{(g)} \\rVert_2 ,

with ``log p(theta)`` a Gaussian prior on the generators' parameters. Minibatch gradients
are taken of ``L / N`` (per-example scale, so a learning rate means the same thing for any
``N``): the batch mean of the ELBO, ``log p(theta) / N`` and, in the proximal step, a
threshold of ``eta * lambda / N``. Every term is divided by the same ``N``; dividing the
data term alone (the per-example mean) while keeping the penalty whole would multiply the
effective ``lambda`` by ``N``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from neuroseq.latent.oivae_networks import OIVAENet

log = logging.getLogger(__name__)


@dataclass
class History:
    """Per-epoch ELBO (nats per example, scaled data), penalty and timing of one fit."""

    train_elbo: list[float] = field(default_factory=list)
    heldout_elbo: list[float] = field(default_factory=list)
    penalty: list[float] = field(default_factory=list)
    n_active: list[int] = field(default_factory=list)
    seconds: float = 0.0


def group_soft_threshold(W: torch.Tensor, threshold: torch.Tensor) -> None:
    """In place: ``w <- w / ||w|| * (||w|| - threshold)_+`` for every column ``w = W[g, :, j]``.

    ``threshold`` is ``(G, K)`` (one per column) or a scalar. This is the proximal operator
    of ``threshold * ||w||_2``, so columns whose norm falls below it become exactly zero.
    """
    norm = torch.linalg.vector_norm(W, dim=1, keepdim=True)
    shrink = torch.clamp(1.0 - threshold.unsqueeze(1) / norm.clamp_min(1e-30), min=0.0)
    W.mul_(shrink)


class ProximalColumnRMSprop:
    """Proximal gradient steps on ``W`` with one step size per column.

    For column ``w = W[g, :, j]`` with gradient ``d`` (of the per-example smooth loss):
    ``v <- beta v + (1 - beta) mean(d^2)``, ``eta = lr / (sqrt(v / (1 - beta^t)) + eps)``,
    ``w <- prox_{eta lambda / N}(w - eta d)``.

    Notes
    -----
    ``eta`` is a scalar per column, so the gradient step and the shrinkage use the same
    step size and each update is an exact proximal gradient step in the metric
    ``diag(1 / eta)``; its fixed points are the stationary points of the penalised
    objective whatever the step sizes. Adam's per-coordinate steps would break that (the
    shrinkage would no longer match the step within a column), which is why ``W`` is not
    given to Adam. A zero column moves off zero only when ``||d|| > lambda / N``.
    """

    def __init__(
        self, W: torch.nn.Parameter, *, lr: float, beta: float = 0.99, eps: float = 1e-8
    ) -> None:
        self.W, self.lr, self.beta, self.eps = W, lr, beta, eps
        self.v = torch.zeros(W.shape[0], W.shape[2], device=W.device, dtype=W.dtype)
        self.t = 0

    @torch.no_grad()
    def step(self, threshold_per_step: float) -> None:
        """One gradient step on ``W.grad`` then the group soft-threshold.

        ``threshold_per_step`` is ``lambda / N``; the prox threshold is ``eta`` times it.
        """
        grad = self.W.grad
        self.t += 1
        self.v.mul_(self.beta).add_((grad**2).mean(1), alpha=1.0 - self.beta)
        v_hat = self.v / (1.0 - self.beta**self.t)
        eta = self.lr / (v_hat.sqrt() + self.eps)  # (G, K)
        self.W.sub_(eta.unsqueeze(1) * grad)
        if threshold_per_step > 0:
            group_soft_threshold(self.W, eta * threshold_per_step)


def train_oivae(
    net: OIVAENet,
    X: np.ndarray,
    observed: np.ndarray,
    *,
    lam: float,
    X_heldout: np.ndarray | None = None,
    observed_heldout: np.ndarray | None = None,
    prior_scale: float = 1.0,
    lr: float = 3e-3,
    lr_w: float = 3e-3,
    batch_size: int = 128,
    max_epochs: int = 100,
    warmup_epochs: int = 0,
    support: np.ndarray | None = None,
    n_eval_samples: int = 2,
    n_eval_train: int = 2000,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> History:
    """Fit ``net`` by proximal stochastic gradient on the oi-VAE objective.

    Parameters
    ----------
    net : OIVAENet
    X, observed : ndarray (n, p)
        Scaled data (0 where missing) and the mask of observed entries.
    lam : float
        ``lambda`` on the scale of the summed ELBO over the ``N = len(X)`` examples.
    X_heldout, observed_heldout : ndarray, optional
        Data whose ELBO is tracked every epoch (never trained on).
    prior_scale : float
        Standard deviation of the Gaussian prior on the generators' parameters.
    lr : float
        Adam's learning rate (encoder, generators, noise scales).
    lr_w : float
        Base step of :class:`ProximalColumnRMSprop` on ``W``.
    batch_size, max_epochs : int
    warmup_epochs : int
        Epochs with the noise scales frozen at their initial value and no penalty; lambda
        then ramps up linearly over as many epochs.
    support : ndarray of bool (G, K), optional
        Columns of ``W`` allowed to be non-zero; the others are held at exactly 0 (the
        relaxed refit on a support chosen by the penalty).
    n_eval_samples : int
        Monte Carlo draws per example when the ELBO is evaluated (fixed seed).
    n_eval_train : int
        The training ELBO of each epoch is that of a fixed random subset of this many
        training examples (all of them when fewer).
    seed : int
        Seeds the minibatch order and the reparameterisation noise.
    device : torch.device or str

    Returns
    -------
    History
        ELBO per example of the training and held-out data after every epoch.

    Notes
    -----
    Each step: the loss ``-(mean batch ELBO) - log p(theta) / N`` is differentiated;
    Adam updates every parameter except ``W``; ``W`` takes a proximal step (see
    :class:`ProximalColumnRMSprop`) with threshold ``eta * lambda / N``. The group lasso
    never enters the differentiated loss, and it touches ``W`` only: the generators, the
    encoder and the noise scales are not shrunk by it (the generators have their prior).
    """
    device = torch.device(device) if isinstance(device, str) else device
    net.to(device)
    n = len(X)
    Xt = torch.as_tensor(X, dtype=torch.float32, device=device)
    Mt = torch.as_tensor(observed, dtype=torch.bool, device=device)
    held = None
    if X_heldout is not None and len(X_heldout):
        held = (
            torch.as_tensor(X_heldout, dtype=torch.float32, device=device),
            torch.as_tensor(observed_heldout, dtype=torch.bool, device=device),
        )
    order_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    sub = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_eval_train]
    sub = sub.sort().values.to(device)
    smooth = [p for name, p in net.named_parameters() if name not in ("W", "log_scale")]
    # The noise scales move 10x faster: the likelihood's other terms are measured in them,
    # and a scale far from the residuals' size distorts every gradient until it gets there.
    adam = torch.optim.Adam(
        [{"params": smooth, "lr": lr}, {"params": [net.log_scale], "lr": 10 * lr}],
        foreach=False,
    )
    prox = ProximalColumnRMSprop(net.W, lr=lr_w)
    keep = None
    if support is not None:
        keep = torch.as_tensor(support, dtype=net.W.dtype, device=device)[:, None, :]
        with torch.no_grad():
            net.W.mul_(keep)
    theta = net.generator_parameters()
    hist = History()
    t0 = time.perf_counter()
    for epoch in range(max_epochs):
        # Warm-up: for `warmup_epochs` the noise scales stay at their small initial value
        # and there is no penalty; then lambda ramps up linearly over as many epochs. Every
        # group must be encoded before the penalty can judge which latents it needs: a
        # group not yet picked up by the encoder while its noise scale grows to the data's
        # own settles in a collapsed state (W_g = 0, nothing encoded, no gradient back),
        # and a column shrunk to zero early never comes back.
        net.log_scale.requires_grad_(epoch >= warmup_epochs)
        ramp = (epoch - warmup_epochs) / warmup_epochs if warmup_epochs else 1.0
        threshold = lam / n * min(1.0, max(0.0, ramp))
        # Both step sizes decay linearly to 0 over the last third of the epochs, so the
        # columns that minibatch noise lifts off zero settle back (their size scales with
        # the step) and the final weights are not a snapshot of a noisy iterate.
        decay = min(1.0, 3.0 * (max_epochs - epoch) / max_epochs)
        for group, base in zip(adam.param_groups, (lr, 10 * lr), strict=True):
            group["lr"] = base * decay
        prox.lr = lr_w * decay
        net.train()
        perm = torch.randperm(n, generator=order_gen).to(device)
        for b in range(0, n, batch_size):
            idx = perm[b : b + batch_size]
            elbo = net.elbo(Xt[idx], Mt[idx], generator=noise_gen).mean()
            log_prior = -0.5 * sum((p**2).sum() for p in theta) / prior_scale**2
            loss = -elbo - log_prior / n
            adam.zero_grad(set_to_none=True)
            net.W.grad = None
            loss.backward()
            adam.step()
            prox.step(threshold)
            if keep is not None:
                with torch.no_grad():
                    net.W.mul_(keep)
        hist.train_elbo.append(evaluate_elbo(net, Xt[sub], Mt[sub], n_eval_samples, seed))
        if held is not None:
            hist.heldout_elbo.append(evaluate_elbo(net, *held, n_eval_samples, seed))
        w_norm = net.w_norm()
        hist.penalty.append(float(lam * w_norm.sum()))
        hist.n_active.append(int((w_norm.amax(0) > 0).sum()))
        log.debug(
            "lambda %g epoch %3d  ELBO train %.3f held-out %s  active %d",
            lam,
            epoch + 1,
            hist.train_elbo[-1],
            f"{hist.heldout_elbo[-1]:.3f}" if held is not None else "-",
            hist.n_active[-1],
        )
    hist.seconds = time.perf_counter() - t0
    return hist


@torch.no_grad()
def evaluate_elbo(
    net: OIVAENet,
    X: torch.Tensor,
    observed: torch.Tensor,
    n_samples: int = 4,
    seed: int = 0,
    batch_size: int = 4096,
) -> float:
    """Mean ELBO per example (``n_samples`` draws each, a fixed noise seed)."""
    return float(elbo_per_example(net, X, observed, n_samples, seed, batch_size).mean())


@torch.no_grad()
def elbo_per_example(
    net: OIVAENet,
    X: torch.Tensor,
    observed: torch.Tensor,
    n_samples: int = 4,
    seed: int = 0,
    batch_size: int = 4096,
) -> torch.Tensor:
    """ELBO of every example, on ``X``'s device."""
    net.eval()
    gen = torch.Generator(device=X.device).manual_seed(seed + 2)
    parts = [
        net.elbo(
            X[b : b + batch_size], observed[b : b + batch_size], n_samples=n_samples, generator=gen
        )
        for b in range(0, len(X), batch_size)
    ]
    return torch.cat(parts) if parts else torch.zeros(0, device=X.device)
