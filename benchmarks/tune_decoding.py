"""Tune a sequence decoder honestly (transformer; --decoder gru): inner validation only.

Run on demand (never in the test suite)::

    .venv/bin/python benchmarks/tune_decoding.py demo --index 0 --candidates base smooth
    .venv/bin/python benchmarks/tune_decoding.py ca1 --candidates base smooth
    .venv/bin/python benchmarks/tune_decoding.py ca1 --decoder gru --inner-folds 3 \
        --baselines --candidates base win256+burn128 win512+burn128
    .venv/bin/python benchmarks/tune_decoding.py ca1 --inner-folds 3 --seeds 3 \
        --combine '{"window": 128}' --candidates base drop0
    .venv/bin/python benchmarks/tune_decoding.py demo --index 2 --seeds 3 --baselines \
        --candidates base smooth0+drop0.4 ens1

Protocol. Demo: tuning sessions simulated with another base seed (1000) than the demo's
(0), so the sessions the report shows never take part in the choice. CA1 (one file): the
training laps of outer fold 0 of the 5-fold lap-wise CV that ``run_decoding`` uses; of
those, a seeded quarter of the laps is the inner validation set, the rest trains (and the
decoder's own early stopping splits that again). Fold 0's test laps are never seen, so
``run_decoding``'s fold-0 R2 is a clean figure; the other folds' test laps were part of
the tuning data. Each candidate prints the inner-validation R2 (mean over features) next
to the GRU and the Wiener filter on the same split; with ``--seeds k`` the mean over
seeds 0..k-1 and the R2 of their averaged predictions (what ``n_members: k`` fits).
Bins between trials train when the config's ``decoding.train_between_trials`` says so
(``--between-trials yes|no`` overrides it); they go with the trial before them, and only
bins inside trials are scored.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from decoding import ca1_project  # noqa: E402  (benchmarks/decoding.py)
from neuroseq.config import load_config  # noqa: E402
from neuroseq.decoding.data import (  # noqa: E402
    assign_folds,
    decoding_data,
    lagged,
    train_mask,
)
from neuroseq.decoding.evaluate import (  # noqa: E402
    choose_lag,
    lag_history,
    make_decoder,
    regression_scores,
)
from neuroseq.io import ingest_file  # noqa: E402
from neuroseq.simulate import simulate_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: Transformer candidates: changes to the decoder's constructor defaults.
CANDIDATES: dict[str, dict] = {
    "base": {},
    "smooth2": {"smooth_bins": 2.0},
    "smooth4": {"smooth_bins": 4.0},
    "burn": {"burn_in": 16},
    "stride8": {"train_stride": 8},
    "lr3e-3": {"lr": 3e-3},
    "drop0.2": {"dropout": 0.2},
    "drop0.3": {"dropout": 0.3},
    "win128": {"window": 128},
    "win192": {"window": 192},
    "win96": {"window": 96},
    "burn32": {"burn_in": 32},
    "win32": {"window": 32},
    "drop0": {"dropout": 0.0},
    "d32": {"d_model": 32, "dim_feedforward": 64},
    "l1": {"n_layers": 1},
    "l3": {"n_layers": 3},
    "wd0.1": {"weight_decay": 0.1},
    "acausal": {"causal": False},
    "ep60": {"max_epochs": 60},
    "smooth1": {"smooth_bins": 1.0},
    "smooth3": {"smooth_bins": 3.0},
    "lr5e-4": {"lr": 5e-4},
    "h2": {"n_heads": 2},
    "d96": {"d_model": 96, "dim_feedforward": 192},
    "win256": {"window": 256},
    "win512": {"window": 512},
    "burn64": {"burn_in": 64},
    "burn128": {"burn_in": 128},
    "batch8": {"batch_size": 8},
    "ens3": {"n_members": 3},
    "ens5": {"n_members": 5},
    "stride16": {"train_stride": 16},
    "stride32": {"train_stride": 32},
    "stride128": {"train_stride": 128},
    "batch16": {"batch_size": 16},
    "pat16": {"patience": 16},
    "val25": {"val_fraction": 0.25},
    "ff256": {"dim_feedforward": 256},
    "alibi": {"position": "alibi"},
    "alibi256": {"position": "alibi", "window": 256, "burn_in": 64, "train_stride": 32},
    "conv5": {"conv_kernel": 5},
    "conv10": {"conv_kernel": 10},
    "conv15": {"conv_kernel": 15},
    "conv20": {"conv_kernel": 20},
    "noln": {"output_norm": False},
    "smooth0": {"smooth_bins": 0.0},
    "drop0.4": {"dropout": 0.4},
    "ep30": {"max_epochs": 30},
    "ens1": {"n_members": 1},
}


def load(name: str, index: int):
    if name == "ca1":
        session, d = ca1_project()  # the torch decoders start from their defaults here
        opts = {
            "features": d["features"],
            "history_s": d["history_s"],
            "lags_s": d["lags_s"],
            "between_trials": d["train_between_trials"],
        }
        return session, {**opts, "decoders": {}}
    cfg = load_config(ROOT / "config" / "config.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        path = simulate_session(Path(tmp) / "tune.nwb", index=index, duration_s=720, seed=1000)
        session = ingest_file(path, **cfg["ingest"])
    d = cfg["decoding"]
    opts = {
        "features": None,
        "history_s": d["history_s"],
        "lags_s": d["lags_s"],
        "between_trials": d["train_between_trials"],
    }
    return session, {**opts, "decoders": {k: d.get(k) or {} for k in ("gru", "transformer")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("session", choices=["demo", "ca1"])
    ap.add_argument("--index", type=int, default=0, help="demo session index")
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--combine", default="{}", help="JSON merged into every candidate")
    ap.add_argument(
        "--decoder", choices=["transformer", "gru"], default="transformer", help="tuned decoder"
    )
    ap.add_argument("--baselines", action="store_true", help="also GRU, Wiener and Kalman")
    ap.add_argument("--lag-s", type=float, help="fixed lag for every decoder (s)")
    ap.add_argument(
        "--between-trials",
        choices=["config", "yes", "no"],
        default="config",
        help="train on the bins between trials (default: as the config says)",
    )
    ap.add_argument(
        "--inner-folds", type=int, default=1, help="k > 1: k-fold over the training trials"
    )
    ap.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="fit each candidate from seeds 0..k-1: the mean over seeds and their average",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    session, opts = load(args.session, args.index)
    n_folds = 5 if args.session == "ca1" else 3
    between = {"yes": True, "no": False}.get(args.between_trials, opts["between_trials"])
    data = decoding_data(
        session, features=opts["features"], n_folds=n_folds, between_trials=between
    )
    bin_s = data.bin_size
    n_history = max(1, round(opts["history_s"] / bin_s))
    fold = assign_folds(data.group, n_folds, 0, contiguous=data.grouping == "block")
    outer_train = train_mask(fold, 0, n_history)  # outer fold 0's training bins only
    ids = np.unique(data.group[outer_train])
    rng = np.random.default_rng(0)
    # inner splits of the training trials: one seeded quarter, or k folds
    if args.inner_folds > 1:
        dealt = rng.permutation(ids.size) % args.inner_folds
        splits = [ids[dealt == j] for j in range(args.inner_folds)]
    else:
        splits = [rng.choice(ids, size=max(1, ids.size // 4), replace=False)]
    lags_s = opts["lags_s"] if args.lag_s is None else [args.lag_s]
    lags = sorted({round(lag / bin_s) for lag in lags_s})
    extra = json.loads(args.combine)
    base = opts["decoders"].get(args.decoder, {})  # the config's, as run_decoding gets it
    # "a+b" merges named candidates
    runs = [
        (c, {**base, **extra, **{k: v for p in c.split("+") for k, v in CANDIDATES[p].items()}})
        for c in args.candidates
    ]
    if args.baselines:
        runs = [("wiener", None), ("kalman", None), ("gru", None), *runs]
    for name, change in runs:
        t0 = time.perf_counter()
        scores, ensemble, epochs = [], [], []
        for val_ids in splits:
            inner_val = outer_train & np.isin(data.group, val_ids)  # with the bins after
            scored = inner_val & data.scored  # ... but scored inside trials only
            inner_fold = np.where(outer_train, np.where(inner_val, 0, 1), -1)
            inner_train = train_mask(inner_fold, 0, n_history) & outer_train
            y_train = np.where(inner_train[:, None], data.y, np.nan)
            decoder = args.decoder if change is not None else name
            h = lag_history(decoder, n_history)
            X = lagged(data.X, choose_lag(data.X, y_train, lags, h))
            groups = np.where(inner_train, data.group, -1)
            preds = []
            for seed in range(args.seeds if change is not None or name == "gru" else 1):
                if change is None:
                    est = make_decoder(name, n_history, opts["decoders"], seed)
                    fit = {"groups": groups} if name == "gru" else {}
                else:
                    est = make_decoder(args.decoder, n_history, {args.decoder: change}, seed)
                    fit = {"groups": groups}
                est.fit(X, y_train, **fit)
                preds.append(est.predict(X))
                scores.append(regression_scores(data.y[scored], preds[-1][scored])["r2"])
                epochs.append(len(est.history_.train_loss) if hasattr(est, "history_") else 0)
            mean = np.mean(preds, 0)
            ensemble.append(regression_scores(data.y[scored], mean[scored])["r2"])
        r2 = np.mean(scores, 0)
        seeds = f" average of {len(preds)} seeds {np.mean(ensemble):.3f}" if len(preds) > 1 else ""
        print(
            f"{args.session}{args.index if args.session == 'demo' else ''} "
            f"{name if change is None else f'{args.decoder}:{name}':<10} "
            f"{json.dumps(change)} inner-val R2 {np.mean(r2):.3f} per feature "
            f"{np.round(r2, 3).tolist()}{seeds} per split and seed "
            f"{np.round(np.mean(scores, 1), 3).tolist()} epochs {epochs} "
            f"fit {time.perf_counter() - t0:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
