"""Decoders on one core: fit time, training throughput, inference latency and held-out R2.

Run on demand (never in the test suite)::

    .venv/bin/python benchmarks/decoding.py [--demo-duration 1200] [--skip-demo] [--skip-ca1]
        [--decoders wiener kalman gru transformer]

Sessions: a simulated demo session (``neuroseq.simulate``, 20 minutes by default) and the
real rat CA1 linear-track recording (../shared/data/real/nelpy_linear_track_rat_ca1.nwb,
Kemere lab via nelpy, MIT; linearised position from 31 place cells, 50 ms bins, lap-wise
5-fold CV), read and decoded as the project examples/rat_ca1 configures it. Every decoder
sees the same folds (``neuroseq.decoding.evaluate``). Figures
quoted by the project: Glaser et al. 2020 (S1 velocity: Wiener 0.72, Kalman 0.68, LSTM
0.85) and, for this CA1 file, the issue's one-seed measurement (Wiener 0.25, Kalman 0.62,
GRU 0.86, transformer 0.73-0.77).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from neuroseq.config import ingest_options, load_config, session_path  # noqa: E402
from neuroseq.decoding.data import assign_folds, decoding_data, train_mask  # noqa: E402
from neuroseq.decoding.evaluate import run_decoding  # noqa: E402
from neuroseq.io import ingest_file  # noqa: E402
from neuroseq.simulate import simulate_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: The CA1 project (examples/rat_ca1): its session's ingest overrides and its decoding
#: section, so this benchmark and that project's report decode the same way. Lap-wise
#: 5-fold CV, lag 0, 1-s Wiener history; the torch settings were chosen by 3-fold inner CV
#: on the training laps of outer fold 0 (benchmarks/tune_decoding.py ca1 --inner-folds 3
#: [--decoder gru] --seeds 3; README, "Tuning, honestly"; inner R2 in brackets): the GRU's
#: window of 512 bins (25.6 s) with the first 128 of each training window out of the loss
#: (0.68 with the defaults, 0.825 so) and patience 16 (0.813), five networks averaged;
#: the transformer's ALiBi attention biases over 256 bins with burn-in 64 and training
#: windows every 32 bins (0.873; sinusoidal positions, window 128: 0.832), three networks
#: averaged (its windows cost ~2 min a network a fold on one core).
CA1_PROJECT = ROOT / "examples" / "rat_ca1" / "config" / "config.yaml"


def ca1_project():
    """The rat CA1 session and the decoding section of examples/rat_ca1's config."""
    config = load_config(CA1_PROJECT)
    path = (CA1_PROJECT.parents[1] / session_path(config, "rat_ca1")).resolve()
    if not path.is_file():
        sys.exit(f"real data not found at {path}")
    return ingest_file(path, **ingest_options(config, "rat_ca1")), config["decoding"]


def training_bins(session, options: dict) -> float:
    """Bins with a target that train each fold's decoders, mean over folds."""
    data = decoding_data(
        session,
        features=options.get("features"),
        n_folds=options["n_folds"],
        between_trials=options["train_between_trials"],
    )
    fold = assign_folds(
        data.group, options["n_folds"], options["seed"], contiguous=data.grouping == "block"
    )
    gap = max(1, round(options["history_s"] / data.bin_size))
    labelled = np.isfinite(data.y).any(1)
    return float(
        np.mean([(train_mask(fold, k, gap) & labelled).sum() for k in range(options["n_folds"])])
    )


def report(name: str, ds, seconds: float, train_bins: float, options: dict) -> None:
    n_scored = int(np.isfinite(ds.target).any("feature").sum())
    print(
        f"\n{name}: {ds.sizes['feature']} features, {n_scored:,} scored bins, "
        f"{train_bins:,.0f} training bins a fold, {ds.sizes['fold']} folds, split by "
        f"{ds.attrs['grouping']}; total {seconds:.0f} s"
    )
    print(
        f"{'decoder':<12} {'mean R2':>8} {'sd over folds':>14} {'fit s/fold':>11} "
        f"{'networks':>9} {'s/network':>10} {'train bins/s':>13}"
    )
    for d in ds.decoder.values:
        r2 = ds.r2.sel(decoder=d).mean("feature")
        fit = float(ds.fit_seconds.sel(decoder=d).mean())
        members = int((options.get(str(d)) or {}).get("n_members", 1))
        # epochs of the first network (the learning curves are its), per network's time
        epochs = np.isfinite(ds.train_loss.sel(decoder=d)).sum("epoch").mean().item()
        rate = train_bins * max(epochs, 1) / (fit / members)
        print(
            f"{d!s:<12} {float(r2.mean()):>8.3f} {float(r2.std()):>14.3f} {fit:>11.1f} "
            f"{members:>9} {fit / members:>10.1f} {rate:>13,.0f}"
        )
    if "ceiling_r2" in ds:
        print(
            f"{'ceiling':<12} {float(ds.ceiling_r2.mean()):>8.3f}   (ridge on the true "
            "latents the units carry)"
        )


def latency(session, options: dict) -> None:
    """Inference time per bin of each torch decoder on the whole session (one core)."""
    from neuroseq.decoding import GRUDecoder, TransformerDecoder

    X = session.spike_counts.values
    y = session.behavior.values
    for name, cls in (("gru", GRUDecoder), ("transformer", TransformerDecoder)):
        if name not in options.get("decoders", [name]):
            continue
        opts = {**(options.get(name) or {}), "max_epochs": 1}
        est = cls(**opts).fit(X, y)
        est.predict(X[:1000])  # warm-up
        t0 = time.perf_counter()
        est.predict(X)
        per_bin = (time.perf_counter() - t0) / len(X)
        print(f"{name}: inference {per_bin * 1e6:.1f} us per bin ({len(X):,} bins, batched)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo-duration", type=float, default=1200.0)
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    ap.add_argument("--skip-ca1", action="store_true")
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--decoders", nargs="+", help="a subset of the decoders (default: all)")
    args = ap.parse_args()
    only = {"decoders": args.decoders} if args.decoders else {}
    torch.set_num_threads(1)
    config = load_config(args.config)
    if not args.skip_demo:
        with tempfile.TemporaryDirectory() as tmp:
            path = simulate_session(
                Path(tmp) / "demo.nwb", index=1, duration_s=args.demo_duration, seed=0
            )
            demo = ingest_file(path, **config["ingest"])
        options = {**config["decoding"], "n_permutations": 0, **only}
        t0 = time.perf_counter()
        ds = run_decoding(demo, **options)
        report(
            f"demo ({args.demo_duration / 60:.0f} min, {demo.sizes['unit']} units, "
            f"config {args.config.name})",
            ds,
            time.perf_counter() - t0,
            training_bins(demo, options),
            options,
        )
        latency(demo, options)
    if not args.skip_ca1:
        ca1, decoding = ca1_project()
        options = {**decoding, "n_permutations": 0, **only}
        t0 = time.perf_counter()
        ds = run_decoding(ca1, **options)
        report(
            "rat CA1 linearised position (31 units)",
            ds,
            time.perf_counter() - t0,
            training_bins(ca1, options),
            options,
        )
        print("R2 per fold (fold 0's test laps never seen while tuning):")
        for d in ds.decoder.values:
            folds = ds.r2.sel(decoder=d).mean("feature").values
            print(f"  {d!s:<12} " + " ".join(f"{r:.3f}" for r in folds))
        latency(ca1, options)


if __name__ == "__main__":
    main()
