"""The oi-VAE network: amortised encoder, group-lasso weights ``W``, one generator per group.

Nothing here trains or scales data (see :mod:`neuroseq.latent.oivae_training` and
:mod:`neuroseq.latent.oivae`). The model is that of Ainsworth, Foti, Lee & Fox (2018,
ICML), "oi-VAE: output interpretable VAEs for nonlinear group factor analysis":

.. math:: z \\sim N(0, I_K), \\qquad
          x^{(g)} \\mid z \\sim N\\big(f_g(W_g z),\\ \\mathrm{diag}\\,\\sigma_g^2\\big),

with ``W_g`` of shape ``(group_dim, K)``: its column ``j`` (``w_j^(g)``) carries latent ``j``
into group ``g``, and a group-lasso penalty on those columns decides which latents reach
which group.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

#: log(2 pi), for the Gaussian log density.
LOG_2PI = math.log(2.0 * math.pi)


class OIVAENet(nn.Module):
    """Encoder, weights ``W`` (``G x group_dim x K``), per-group generators and noise scales.

    Parameters
    ----------
    group_sizes : list of int
        Number of observed features in each group, in the column order of the data.
    n_latents : int
        ``K``.
    group_dim : int
        Rows of each ``W_g``: the input width of the group's generator.
    hidden : int
        Width of the generators' hidden layer; 0 makes each ``f_g`` affine.
    encoder_hidden : int
        Width of the encoder's hidden layer.
    min_scale : float
        Floor on the noise standard deviations (in the units of the scaled data).

    Notes
    -----
    The encoder reads the data with missing entries set to 0 *and* the mask of observed
    entries (``2 p`` inputs), so a missing value is never mistaken for a measured 0; the
    likelihood counts observed entries only (:meth:`log_likelihood`).
    """

    def __init__(
        self,
        group_sizes: list[int],
        n_latents: int,
        *,
        group_dim: int = 2,
        hidden: int = 16,
        encoder_hidden: int = 64,
        min_scale: float = 1e-2,
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.group_sizes = list(group_sizes)
        self.n_latents = n_latents
        self.min_scale = min_scale
        n_in = sum(group_sizes)
        self.encoder = nn.Sequential(nn.Linear(2 * n_in, encoder_hidden), nn.Tanh())
        self.enc_mean = nn.Linear(encoder_hidden, n_latents)
        self.enc_logvar = nn.Linear(encoder_hidden, n_latents)
        g, width = len(group_sizes), max(group_sizes)
        self.W = nn.Parameter(torch.randn(g, group_dim, n_latents) / math.sqrt(n_latents))
        # The G generators run as one batched MLP; group g's outputs fill the first
        # group_sizes[g] of `width` slots (the rest stay zero: no gradient reaches them).
        pad = torch.zeros(g, width, dtype=torch.bool)
        for i, p in enumerate(group_sizes):
            pad[i, :p] = True
        self.register_buffer("take", pad.flatten().nonzero().squeeze(1), persistent=False)
        layers = [group_dim, hidden, width] if hidden > 0 else [group_dim, width]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in itertools.pairwise(layers):
            bound = 1.0 / math.sqrt(a)  # torch.nn.Linear's default initialisation
            self.weights.append(nn.Parameter(torch.empty(g, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(g, b).uniform_(-bound, bound)))
        with torch.no_grad():
            self.weights[-1].mul_(pad[:, None, :])
            self.biases[-1].mul_(pad)
        start = math.log(math.expm1(max(init_scale - min_scale, 1e-6)))  # softplus inverse
        self.log_scale = nn.Parameter(torch.full((n_in,), start))

    def generator_parameters(self) -> list[nn.Parameter]:
        """The parameters ``theta`` of the ``f_g``: those under the Gaussian prior."""
        return [*self.weights, *self.biases]

    def encode(self, x: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log variance of q(z | x); ``x`` has 0 where ``observed`` is False."""
        h = self.encoder(torch.cat([x, observed.to(x.dtype)], dim=1))
        return self.enc_mean(h), self.enc_logvar(h).clamp(-12.0, 6.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of p(x | z), groups concatenated in column order."""
        h = torch.einsum("gdk,bk->gbd", self.W, z)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if i:
                h = torch.tanh(h)
            h = torch.baddbmm(b.unsqueeze(1), h, w)  # (G, batch, out)
        return h.transpose(0, 1).reshape(len(z), -1)[:, self.take]

    def scale(self) -> torch.Tensor:
        return nn.functional.softplus(self.log_scale) + self.min_scale

    def log_likelihood(
        self, x: torch.Tensor, observed: torch.Tensor, mean: torch.Tensor
    ) -> torch.Tensor:
        """Per-example log N(x | mean, diag scale^2), summed over the observed entries."""
        scale = self.scale()
        logp = -0.5 * ((x - mean) / scale) ** 2 - torch.log(scale) - 0.5 * LOG_2PI
        return torch.where(observed, logp, 0.0).sum(1)

    def elbo(
        self,
        x: torch.Tensor,
        observed: torch.Tensor,
        *,
        n_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Per-example ELBO: E_q[log p(x | z)] (``n_samples`` draws) - KL(q(z|x) || N(0, I))."""
        mu, logvar = self.encode(x, observed)
        std = torch.exp(0.5 * logvar)
        loglik = torch.zeros(len(x), device=x.device)
        for _ in range(n_samples):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            loglik = loglik + self.log_likelihood(x, observed, self.decode(mu + std * eps))
        kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(1)
        return loglik / n_samples - kl

    def w_norm(self) -> torch.Tensor:
        """``||w_j^(g)||_2`` for every group and latent: ``(G, K)``."""
        return torch.linalg.vector_norm(self.W.detach(), dim=1)
