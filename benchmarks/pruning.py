"""Lottery tickets of LeNet-300-100 on scikit-learn's digits: accuracy and wall time, one core.

Run on demand (never in the test suite)::

    .venv/bin/python benchmarks/pruning.py [--seeds 3] [--rounds 12]

The case of Frankle & Carbin (2019, ICLR), Figure 3, scaled to the 8x8 digits: a
64-300-100-10 ReLU network, Adam at 1.2e-3 with minibatches of 60, 20% of each hidden
layer and 10% of the output layer pruned per round, survivors rewound to their
initialisation. 1,000 training images, 300 for early stopping, the other 497 for test
(one seeded split). At rounds 7 and 12 about 21% and 7% of the weights remain. Printed:
test accuracy at the early-stopping iteration of the dense network, the rewound ticket,
the same mask re-initialised and a random mask of the same layer sizes, per seed and on
average, and the wall time of each full search (13 trainings of the ticket, 12 of each
control).
"""

from __future__ import annotations

import argparse
import os
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from neuroseq.pruning import INITS, ArrayTask, find_tickets  # noqa: E402


def digits_task(max_epochs: int, patience: int) -> ArrayTask:
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    X, y = (X[order] / 16.0).astype(np.float32), y[order]
    row = np.arange(len(X))
    train, val, test = row < 1300, (row >= 1000) & (row < 1300), row >= 1300
    return ArrayTask(
        X,
        y,
        train,
        val,
        test,
        hidden=(300, 100),
        loss="cross_entropy",
        lr=1.2e-3,
        batch_size=60,
        max_epochs=max_epochs,
        patience=patience,
        device="cpu",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = digits_task(args.max_epochs, args.patience)
    curves, seconds = [], []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        curves.append(
            find_tickets(task, n_rounds=args.rounds, rate=0.2, output_rate=0.1, seed=seed)
        )
        seconds.append(time.perf_counter() - t0)
        print(f"seed {seed}: full search {seconds[-1]:.1f} s", flush=True)
    remaining = curves[0].remaining
    acc = 100 * np.stack([c.score[:, :, 0] for c in curves])  # (seed, round, init)
    early = np.stack([c.early_stop_iteration for c in curves])
    print(f"\ndigits, LeNet-300-100, {args.seeds} seeds; test accuracy (%) at early stopping")
    print(f"{'round':>5} {'left %':>7} " + " ".join(f"{i:>22}" for i in INITS))
    for r in range(len(remaining)):
        cells = [
            f"{acc[:, r, i].mean():6.2f} ({acc[:, r, i].min():.1f}-{acc[:, r, i].max():.1f})"
            for i in range(len(INITS))
        ]
        print(f"{r:>5} {100 * remaining[r]:7.2f} " + " ".join(f"{c:>22}" for c in cells))
    print("\nearly-stopping iteration (optimiser steps, mean over seeds)")
    for r in range(len(remaining)):
        print(
            f"{r:>5} {100 * remaining[r]:7.2f} "
            + " ".join(f"{e:>10.0f}" for e in early[:, r].mean(0))
        )
    dense = acc[:, 0, 0]
    for target in (0.21, 0.07):
        r = int(np.argmin(np.abs(remaining - target)))
        gap = acc[:, r, 0] - dense
        print(
            f"\n{100 * remaining[r]:.1f}% left (round {r}): rewound minus dense "
            f"{gap.mean():+.2f} points (per seed {np.round(gap, 2).tolist()}); "
            f"rewound minus re-init {np.mean(acc[:, r, 0] - acc[:, r, 1]):+.2f} "
            f"(per seed {np.round(acc[:, r, 0] - acc[:, r, 1], 2).tolist()}); "
            f"rewound minus random {np.mean(acc[:, r, 0] - acc[:, r, 2]):+.2f}"
        )
    print(f"\nwall time of one full search: {np.mean(seconds):.1f} s (one core)")


if __name__ == "__main__":
    main()
