"""The uncertainty autoencoder's torch module: a linear measurement and a neural decoder.

Nothing here trains or scales data (see :mod:`neuroseq.latent.uae_training` and
:mod:`neuroseq.latent.uae`).
"""

from __future__ import annotations

import torch
from torch import nn

#: Encoders by name: a learnt measurement matrix, or a fixed random Gaussian one.
ENCODERS = ("learned", "random")


def unit_rows(V: torch.Tensor) -> torch.Tensor:
    """``V`` with every row scaled to unit l2 norm (the measurement matrix's constraint)."""
    return V / V.norm(dim=1, keepdim=True).clamp_min(1e-12)


class UAENet(nn.Module):
    """Measure ``y = W x + sigma eps`` with unit-norm rows of ``W``; decode ``x`` from ``y``.

    Parameters
    ----------
    n_features : int
        Dimension ``n`` of the signal ``x``.
    n_measurements : int
        Number ``m`` of linear measurements (rows of ``W``).
    hidden : tuple of int
        Widths of the decoder's hidden layers.
    encoder : {"learned", "random"}
        ``learned``: ``W`` is a parameter; ``random``: a fixed Gaussian matrix (a buffer,
        never updated).
    W0 : torch.Tensor, optional
        Initial (learned) or fixed (random) matrix, ``m x n``; its rows are normalised.

    Notes
    -----
    ``W = V / ||V||_row``: every measurement has unit gain. Without a fixed norm the
    encoder could scale ``W`` up until the noise ``sigma`` no longer matters, and
    ``noise_std`` would mean nothing (Grover & Ermon 2019, sec. 3, fix the noise and
    learn ``W``). Unit rows also make the learned, the random and the PCA encoders
    directly comparable at the same ``sigma``. The decoder is a linear map plus an MLP
    (a residual form): with the MLP silent it is the best linear decoder, so the
    network starts from, and can always fall back on, linear recovery.
    """

    def __init__(
        self,
        n_features: int,
        n_measurements: int,
        *,
        hidden: tuple[int, ...] = (128, 128),
        encoder: str = "learned",
        W0: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        V = torch.randn(n_measurements, n_features) if W0 is None else W0.clone().float()
        V = unit_rows(V)
        if encoder == "learned":
            self.V = nn.Parameter(V)
        else:
            self.register_buffer("V", V)
        self.encoder = encoder
        self.linear = nn.Linear(n_measurements, n_features)
        layers: list[nn.Module] = []
        width = n_measurements
        for h in hidden:
            layers += [nn.Linear(width, h), nn.GELU()]
            width = h
        out = nn.Linear(width, n_features)
        # The MLP starts silent, so training starts from a linear decoder.
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.mlp = nn.Sequential(*layers, out)

    @property
    def W(self) -> torch.Tensor:
        """The measurement matrix ``m x n`` (unit-norm rows)."""
        return unit_rows(self.V)

    def measure(self, x: torch.Tensor, noise_std: float = 0.0) -> torch.Tensor:
        """``W x + noise_std * eps``, row-wise for a batch ``x`` (batch x n)."""
        y = x @ self.W.T
        if noise_std > 0:
            y = y + noise_std * torch.randn_like(y)
        return y

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """The decoder's mean of ``p(x | y)``."""
        return self.linear(y) + self.mlp(y)

    def forward(self, x: torch.Tensor, noise_std: float = 0.0) -> torch.Tensor:
        return self.decode(self.measure(x, noise_std))
