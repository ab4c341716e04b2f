"""torch architectures, registered by name: sequences of counts in, sequences of behaviour out.

Every network maps ``(batch, time, units)`` to ``(batch, time, features)``. Nothing here
trains or scales data (see :mod:`neuroseq.decoding.training` and
:mod:`neuroseq.decoding.estimators`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}
#: How a transformer's bins know their place in the window (``TransformerNet(position=)``).
POSITIONS = ("sinusoidal", "alibi")


def register(name: str):
    def deco(cls):
        ARCHITECTURES[name] = cls
        return cls

    return deco


def sinusoidal_encoding(length: int, d_model: int) -> torch.Tensor:
    """The fixed positional encoding of Vaswani et al. (2017): (length, d_model)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    rate = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )
    enc = torch.zeros(length, d_model)
    enc[:, 0::2] = torch.sin(position * rate)
    enc[:, 1::2] = torch.cos(position * rate[: d_model // 2])
    return enc


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Per-head slopes 2^(-8 h / n_heads), h = 1..n_heads (Press et al. 2022, ALiBi)."""
    return 2.0 ** (-8.0 * torch.arange(1, n_heads + 1, dtype=torch.float32) / n_heads)


@register("transformer")
class TransformerNet(nn.Module):
    """Transformer encoder over time bins (``torch.nn.TransformerEncoder``).

    Units are projected to ``d_model`` and ``n_layers`` pre-norm self-attention layers
    follow; with ``causal`` each bin attends only to itself and earlier bins (a real-time
    decoder). In the spirit of the Neural Data Transformers (Ye & Pandarinath 2021), read
    out per bin into behaviour. Bins know where they are by ``position``: ``"sinusoidal"``
    adds the fixed code of Vaswani et al. (2017) to the inputs; ``"alibi"`` instead
    subtracts ``slope_h x distance`` from head h's attention scores (Press et al. 2022,
    slopes 2^-2 .. 2^-8 per bin with four heads), so every head prefers recent bins at
    its own time scale and the net is the same function of the past wherever a window
    starts.

    ``conv_kernel`` > 1 adds a depthwise convolution over time to the projected inputs
    (each of the ``d_model`` channels its own filter of that many bins; causal: the bin
    and the ones before it), residually, before attention, as Conformer pairs local
    convolution with self-attention (Gulati et al. 2020): a short temporal filter of the
    population, which is what a linear decoder of the recent history is, then costs the
    net ``d_model x conv_kernel`` weights instead of having to be assembled from attention
    weights. ``output_norm=False`` reads behaviour out of the residual stream itself
    instead of its final LayerNorm, whose division by each bin's spread across channels
    would take the amplitude of that filtered activity away from the readout.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        causal: bool = True,
        max_len: int = 2048,
        position: str = "sinusoidal",
        conv_kernel: int = 0,
        output_norm: bool = True,
    ) -> None:
        super().__init__()
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, not {position!r}")
        self.causal = causal
        self.n_heads = n_heads
        self.alibi = position == "alibi"
        self.inp = nn.Linear(n_in, d_model)
        self.conv = None
        if conv_kernel > 1:
            self.conv = nn.Conv1d(d_model, d_model, conv_kernel, groups=d_model)
            before = conv_kernel - 1 if causal else (conv_kernel - 1) // 2
            self.conv_padding = (before, conv_kernel - 1 - before)
        code = sinusoidal_encoding(max_len, d_model)
        self.register_buffer("position", code * (not self.alibi), persistent=False)
        self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        readout = nn.Linear(d_model, n_out)
        self.out = nn.Sequential(nn.LayerNorm(d_model), readout) if output_norm else readout
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1]
        h = self.inp(x)
        if self.conv is not None:  # (batch, channel, time) for Conv1d, zeros beyond the window
            padded = nn.functional.pad(h.transpose(1, 2), self.conv_padding)
            h = h + self.conv(padded).transpose(1, 2)
        h = self.drop(h + self.position[:steps])
        if not self.alibi:  # sinusoidal positions: at most the causal mask
            mask = None
            if self.causal:
                mask = nn.Transformer.generate_square_subsequent_mask(
                    steps, device=x.device, dtype=h.dtype
                )
            return self.out(self.encoder(h, mask=mask, is_causal=self.causal))
        # torch's fused inference path misreads a per-head (batch x heads) float mask, so
        # eval outputs differ from training ones (pytorch/pytorch#102333, still so in
        # 2.13); it is off while this net runs
        fused = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            h = self.encoder(h, mask=self._alibi_bias(x.shape[0], steps, h.dtype))
        finally:
            torch.backends.mha.set_fastpath_enabled(fused)
        return self.out(h)

    def _alibi_bias(self, batch: int, steps: int, dtype: torch.dtype) -> torch.Tensor:
        """Additive attention bias, (batch x heads, steps, steps): minus the head's slope
        times the distance in bins; -inf on later bins when causal."""
        t = torch.arange(steps, device=self.slopes.device)
        dist = (t[:, None] - t[None, :]).to(dtype)
        bias = -self.slopes.to(dtype)[:, None, None] * dist.abs()
        if self.causal:
            bias = bias.masked_fill(dist < 0, float("-inf"))
        return bias.expand(batch, -1, -1, -1).reshape(batch * self.n_heads, steps, steps)


@register("gru")
class GRUNet(nn.Module):
    """A causal GRU (Cho et al. 2014) read out per bin."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        d_model: int = 64,
        n_layers: int = 1,
        dropout: float = 0.1,
        causal: bool = True,
        **_: object,
    ) -> None:
        super().__init__()
        if not causal:
            raise ValueError("GRUNet is causal only")
        self.gru = nn.GRU(
            n_in, d_model, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0
        )
        self.out = nn.Linear(d_model, n_out)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.gru(x)[0]))
