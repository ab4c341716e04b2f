"""Pruning masks on any torch network, through ``torch.nn.utils.prune``.

``torch.nn.utils.prune`` keeps a pruned tensor as ``<name>_orig`` (the parameter the
optimiser updates) and ``<name>_mask`` (a buffer), and recomputes ``<name> = orig * mask``
in a forward pre-hook of the module that owns it. Two facts make that hook alone unsafe:
a module may use a child's weight without calling the child (``nn.MultiheadAttention``
reads ``out_proj.weight`` directly, so the child's hook never runs), and between an
optimiser step and the next forward the stored ``<name>`` is stale (pruning and scoring
would read old values). :func:`enable_masks` therefore re-applies every mask before each
forward of the whole network, and every function here refreshes before it reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

SCOPES = ("layer", "global")


@dataclass(frozen=True)
class Prunable:
    """One prunable weight tensor: ``module.<name>``, known as ``qualname`` in the net."""

    module: nn.Module
    name: str
    qualname: str
    output: bool

    @property
    def pruned(self) -> bool:
        return hasattr(self.module, self.name + "_mask")

    def mask(self) -> torch.Tensor:
        """The current mask (ones when the tensor was never pruned)."""
        if self.pruned:
            return getattr(self.module, self.name + "_mask")
        return torch.ones_like(getattr(self.module, self.name))

    def original(self) -> torch.Tensor:
        """The parameter the optimiser updates (``<name>_orig`` once pruned)."""
        return getattr(self.module, self.name + "_orig" if self.pruned else self.name)


def prunable_weights(net: nn.Module, output: str | None = None) -> list[Prunable]:
    """Every weight matrix of ``net`` (parameters with two or more dims), in registration order.

    Biases, normalisation gains and buffers are never pruned (Frankle & Carbin 2019 prune
    connections only). ``output`` names the output layer's weight (its qualified name);
    by default the last weight matrix registered.
    """
    found = []
    for path, module in net.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            name = pname[: -len("_orig")] if pname.endswith("_orig") else pname
            if name != pname and not hasattr(module, name + "_mask"):
                name = pname  # a parameter that merely ends in "_orig"
            if param.dim() >= 2:
                found.append((module, name, f"{path}.{name}" if path else name))
    if not found:
        raise ValueError("the network has no weight matrix to prune")
    names = [q for _, _, q in found]
    output = output or names[-1]
    if output not in names:
        raise ValueError(f"output layer {output!r} is not among the weights {names}")
    return [Prunable(m, n, q, q == output) for m, n, q in found]


def refresh_masks(net: nn.Module, *_: object) -> None:
    """Recompute every pruned tensor as ``orig * mask`` (what each pruning hook does)."""
    for module in net.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                hook(module, ())


def enable_masks(net: nn.Module) -> nn.Module:
    """Re-apply every mask before each forward of ``net`` (idempotent); returns ``net``."""
    if refresh_masks not in net._forward_pre_hooks.values():
        net.register_forward_pre_hook(refresh_masks)
    return net


def effective_weights(net: nn.Module) -> dict[str, torch.Tensor]:
    """The weight matrices the next forward will use, by qualified name."""
    refresh_masks(net)
    return {p.qualname: getattr(p.module, p.name).detach().clone() for p in prunable_weights(net)}


def masks(net: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every mask, by qualified name (ones for tensors never pruned)."""
    return {p.qualname: p.mask().detach().clone() for p in prunable_weights(net)}


def remaining_counts(net: nn.Module) -> dict[str, int]:
    """Weights left per tensor (mask entries equal to one)."""
    return {p.qualname: int(p.mask().sum()) for p in prunable_weights(net)}


def remaining_fraction(net: nn.Module) -> float:
    """Fraction of all prunable weights still in the network."""
    weights = prunable_weights(net)
    return sum(int(p.mask().sum()) for p in weights) / sum(p.mask().numel() for p in weights)


def prune_magnitude(
    net: nn.Module,
    rate: float,
    output_rate: float,
    scope: str = "layer",
    output: str | None = None,
) -> None:
    """Remove the smallest-magnitude ``rate`` of the weights still present.

    ``scope="layer"``: each tensor loses ``round(rate * n)`` of its ``n`` remaining weights
    (the output layer ``round(output_rate * n)``). ``scope="global"``: one ranking over all
    tensors together removes ``round(rate * N)`` of the ``N`` remaining; ``output_rate``
    does not apply. Rounding is Python's (half to even), as in ``torch.nn.utils.prune``.
    """
    refresh_masks(net)  # magnitudes of the current weights, not of a stale copy
    weights = prunable_weights(net, output)
    if scope == "layer":
        for p in weights:
            prune.l1_unstructured(p.module, p.name, amount=output_rate if p.output else rate)
    elif scope == "global":
        prune.global_unstructured(
            [(p.module, p.name) for p in weights], pruning_method=prune.L1Unstructured, amount=rate
        )
    else:
        raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
    enable_masks(net)


def prune_random(net: nn.Module, targets: Mapping[str, int], rng: np.random.Generator) -> None:
    """Remove weights at random, uniformly among those left, until ``targets[qualname]`` remain.

    Masks stay nested: a weight removed once never comes back.
    """
    for p in prunable_weights(net):
        mask = p.mask().detach().cpu().numpy().ravel()
        alive = np.flatnonzero(mask)
        drop = alive.size - int(targets[p.qualname])
        if drop < 0:
            raise ValueError(f"{p.qualname}: {alive.size} weights left, cannot keep {drop}")
        new = mask.copy()
        new[rng.choice(alive, drop, replace=False)] = 0
        prune.custom_from_mask(
            p.module, p.name, torch.as_tensor(new.reshape(p.mask().shape), device=_mask_device(p))
        )
    enable_masks(net)


def apply_masks(net: nn.Module, given: Mapping[str, torch.Tensor]) -> None:
    """Prune ``net`` with the masks of another network of the same architecture."""
    for p in prunable_weights(net):
        prune.custom_from_mask(p.module, p.name, given[p.qualname].to(_mask_device(p)))
    enable_masks(net)


def _mask_device(p: Prunable) -> torch.device:
    return p.original().device


def snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter, under its unpruned name (``weight``, not ``weight_orig``)."""
    out = {}
    for path, module in net.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            name = pname[: -len("_orig")] if hasattr(module, _mask_of(pname)) else pname
            out[f"{path}.{name}" if path else name] = param.detach().clone()
    return out


def rewind(net: nn.Module, values: Mapping[str, torch.Tensor]) -> None:
    """Set every parameter to ``values`` (from :func:`snapshot`); masks are kept.

    Pruned entries of ``<name>_orig`` are reset too, but the mask keeps them out of every
    forward, so only the survivors return to their earlier values.
    """
    with torch.no_grad():
        for path, module in net.named_modules():
            for pname, param in module.named_parameters(recurse=False):
                name = pname[: -len("_orig")] if hasattr(module, _mask_of(pname)) else pname
                param.copy_(values[f"{path}.{name}" if path else name])
    refresh_masks(net)


def _mask_of(pname: str) -> str:
    return pname[: -len("_orig")] + "_mask" if pname.endswith("_orig") else "\0"


def schedule(
    sizes: Sequence[int],
    n_rounds: int,
    rate: float,
    output_rate: float,
    scope: str = "layer",
    output_index: int = -1,
) -> np.ndarray:
    """Weights left after each round (rounds 0..n_rounds), computed without torch.

    Returns
    -------
    ndarray (n_rounds + 1, n_tensors) for ``scope="layer"``; (n_rounds + 1,) totals for
    ``scope="global"`` (a global ranking fixes only the total).

    Notes
    -----
    Round r removes ``round(p * n)`` of the ``n`` weights left (per tensor, p = ``rate``
    or ``output_rate`` for the output layer; or over all tensors at ``rate``), so after
    r rounds about ``(1 - p)^r`` remain (Frankle & Carbin 2019, Section 2).
    """
    if scope == "global":
        left = [int(sum(sizes))]
        for _ in range(n_rounds):
            left.append(left[-1] - round(rate * left[-1]))
        return np.asarray(left)
    out = np.zeros((n_rounds + 1, len(sizes)), dtype=np.int64)
    out[0] = sizes
    rates = np.full(len(sizes), rate)
    rates[output_index] = output_rate
    for r in range(1, n_rounds + 1):
        out[r] = [n - round(float(p) * int(n)) for n, p in zip(out[r - 1], rates, strict=True)]
    return out
