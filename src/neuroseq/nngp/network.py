"""The finite-width counterpart of the NNGP: a fully connected network at its prior."""

from __future__ import annotations

import math

import torch
from torch import nn

from neuroseq.errors import InputError


class Erf(nn.Module):
    """phi(u) = erf(u), the activation with a closed-form NNGP besides ReLU."""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return torch.erf(u)


ACTIVATION_MODULES = {
    "relu": nn.ReLU,
    "erf": Erf,
    "linear": nn.Identity,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


class FullyConnected(nn.Module):
    """``depth`` hidden layers of ``width`` units and a linear readout.

    Weights are drawn ``N(0, weight_var / fan_in)`` and biases ``N(0, bias_var)``: the
    prior whose infinite-width limit is the NNGP of :func:`neuroseq.nngp.nngp_kernel`
    (Lee et al. 2018, Sec. 2; the standard parameterisation).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        width: int,
        depth: int,
        activation: str = "relu",
        weight_var: float = 1.0,
        bias_var: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATION_MODULES:
            raise InputError(
                "FullyConnected",
                "activation",
                f"one of {list(ACTIVATION_MODULES)}",
                repr(activation),
            )
        layers: list[nn.Module] = []
        fan_in = n_in
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), ACTIVATION_MODULES[activation]()]
            fan_in = width
        layers.append(nn.Linear(fan_in, n_out))
        self.layers = nn.Sequential(*layers)
        with torch.no_grad():
            for layer in self.layers:
                if isinstance(layer, nn.Linear):
                    std = math.sqrt(weight_var / layer.in_features)
                    layer.weight.normal_(0.0, std, generator=generator)
                    if bias_var > 0:
                        layer.bias.normal_(0.0, math.sqrt(bias_var), generator=generator)
                    else:
                        layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
