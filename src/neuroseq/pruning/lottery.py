"""Iterative magnitude pruning with rewinding, and its two controls (Frankle & Carbin 2019)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neuroseq.decoding.training import History
from neuroseq.errors import InputError
from neuroseq.pruning import masks as M
from neuroseq.pruning.tasks import StepHook, Task

log = logging.getLogger(__name__)

#: How the survivors of each round are initialised before retraining.
INITS = ("rewind", "reinit", "random_prune")


@dataclass
class TicketCurve:
    """One seed's search: every pruning round under the three initialisations.

    Attributes
    ----------
    remaining : ndarray (n_rounds + 1,)
        Fraction of the prunable weights left after each round (round 0: dense).
    counts : ndarray (n_rounds + 1, n_tensors)
        Weights left per tensor (``tensors``).
    score : ndarray (n_rounds + 1, 3, n_scores)
        Held-out score of each round's network, per initialisation (order ``INITS``).
    early_stop_iteration : ndarray (n_rounds + 1, 3)
        Optimiser steps up to the end of the epoch with the lowest validation loss.
    steps : ndarray (n_rounds + 1, 3)
        Optimiser steps trained (to early stopping or the epoch limit).
    tensors : list of str
    """

    remaining: np.ndarray
    counts: np.ndarray
    score: np.ndarray
    early_stop_iteration: np.ndarray
    steps: np.ndarray
    tensors: list[str]


class _Steps:
    """``on_step`` hook: counts steps per epoch, keeps the weights of step k, chains a hook."""

    def __init__(self, keep_at: int | None = None, then: StepHook | None = None) -> None:
        self.per_epoch: dict[int, int] = defaultdict(int)
        self.count = 0
        self.keep_at = keep_at
        self.kept: dict[str, torch.Tensor] | None = None
        self.then = then

    def __call__(self, net: nn.Module, epoch: int) -> None:
        self.count += 1
        self.per_epoch[epoch] += 1
        if self.count == self.keep_at:
            self.kept = M.snapshot(net)
        if self.then is not None:
            self.then(net, epoch)

    def until(self, hist: History) -> int:
        """Steps up to the end of the best epoch: the paper's early-stopping iteration."""
        if hist.best_epoch < 0:
            raise RuntimeError("training never reached a finite validation loss")
        return sum(n for e, n in self.per_epoch.items() if e <= hist.best_epoch)


def check_options(
    n_rounds: int, rate: float, output_rate: float, scope: str, rewind_step: int
) -> None:
    """Raise :class:`InputError` on an impossible pruning schedule."""
    for name, value in (("rate", rate), ("output_rate", output_rate)):
        if not 0 < value < 1:
            raise InputError("config", f"pruning.{name}", "a fraction in (0, 1)", f"{value}")
    if int(n_rounds) != n_rounds or n_rounds < 1:
        raise InputError("config", "pruning.n_rounds", "an integer >= 1", f"{n_rounds}")
    if scope not in M.SCOPES:
        raise InputError("config", "pruning.scope", f"one of {list(M.SCOPES)}", repr(scope))
    if int(rewind_step) != rewind_step or rewind_step < 0:
        raise InputError("config", "pruning.rewind_step", "an integer >= 0", f"{rewind_step}")


def find_tickets(
    task: Task,
    *,
    n_rounds: int = 5,
    rate: float = 0.2,
    output_rate: float = 0.1,
    scope: str = "layer",
    rewind_step: int = 0,
    seed: int = 0,
    on_step: StepHook | None = None,
) -> TicketCurve:
    """Iterative magnitude pruning of one network, with its two controls at every round.

    Parameters
    ----------
    task : Task
        Builds, trains and scores the network (:mod:`neuroseq.pruning.tasks`).
    n_rounds : int
        Pruning rounds after the dense training.
    rate : float
        Fraction of the remaining weights pruned per round (each hidden layer with
        ``scope="layer"``; all layers together with ``scope="global"``).
    output_rate : float
        The output layer's rate with ``scope="layer"``.
    scope : {"layer", "global"}
    rewind_step : int
        Survivors return to their values after this many optimiser steps of the dense
        training (0: the initialisation; k > 0: late rewinding).
    seed : int
        Seeds the initialisation, the data order (the same for every training of this
        search), the re-initialisations and the random masks.
    on_step : callable, optional
        ``on_step(net, epoch)`` after every optimiser step of every training.

    Returns
    -------
    TicketCurve

    Notes
    -----
    Frankle & Carbin (2019, ICLR, "The lottery ticket hypothesis"), Algorithm 1 with
    iterative pruning: train the network from theta_0; remove the p% of the remaining
    weights of smallest magnitude; reset the survivors to theta_0 and retrain; repeat.
    After r rounds about (1 - p)^r of each layer remains. The controls at every round:
    ``reinit``, the same mask on a freshly initialised network (their Section 2, "random
    reinitialization"), and ``random_prune``, a uniformly random mask with the same number
    of weights in every layer, trained from the same starting values as the ticket (their
    "randomly sampled sparse networks"). With ``rewind_step = k`` the survivors return to
    theta_k instead, late rewinding (Frankle, Dziugaite, Roy & Carbin 2019, "Stabilizing
    the lottery ticket hypothesis"). The early-stopping iteration is the optimiser step at
    which the validation loss was lowest (counted to the end of that epoch), the paper's
    second measure of a ticket.
    """
    check_options(n_rounds, rate, output_rate, scope, rewind_step)
    seeds = np.random.SeedSequence([seed, 0x10771]).generate_state(n_rounds + 1)
    rng = np.random.default_rng([seed, 0x5EED])
    net = M.enable_masks(task.build(seed))
    start = M.snapshot(net)
    steps = _Steps(keep_at=rewind_step or None, then=on_step)
    hist = task.fit(net, seed, steps)
    if rewind_step and steps.kept is None:
        raise InputError(
            "config",
            "pruning.rewind_step",
            f"at most the {steps.count} optimiser steps of the dense training",
            f"{rewind_step}",
        )
    theta = steps.kept if rewind_step else start
    tensors = [p.qualname for p in M.prunable_weights(net)]
    dense = task.score(net)
    score = np.full((n_rounds + 1, len(INITS), dense.size), np.nan)
    early = np.zeros((n_rounds + 1, len(INITS)), dtype=np.int64)
    trained = np.zeros((n_rounds + 1, len(INITS)), dtype=np.int64)
    counts = np.zeros((n_rounds + 1, len(tensors)), dtype=np.int64)
    # At 100% of the weights the three initialisations are one and the same network.
    score[0], early[0], trained[0] = dense, steps.until(hist), steps.count
    counts[0] = list(M.remaining_counts(net).values())
    random_net = M.enable_masks(task.build(seed))
    for r in range(1, n_rounds + 1):
        M.prune_magnitude(net, rate, output_rate, scope)
        counts[r] = list(M.remaining_counts(net).values())
        M.prune_random(random_net, dict(zip(tensors, counts[r], strict=True)), rng)
        fresh = M.enable_masks(task.build(int(seeds[r])))
        M.apply_masks(fresh, M.masks(net))
        M.rewind(net, theta)
        M.rewind(random_net, theta)
        for i, model in enumerate((net, fresh, random_net)):
            steps = _Steps(then=on_step)
            hist = task.fit(model, seed, steps)
            score[r, i] = task.score(model)
            early[r, i], trained[r, i] = steps.until(hist), steps.count
        log.info(
            "round %d: %.4f of weights left; score %s (rewind, reinit, random_prune)",
            r,
            counts[r].sum() / counts[0].sum(),
            np.round(score[r].mean(1), 3),
        )
    return TicketCurve(
        remaining=counts.sum(1) / counts[0].sum(),
        counts=counts,
        score=score,
        early_stop_iteration=early,
        steps=trained,
        tensors=tensors,
    )
