"""Training time per session of the two latent analyses (oi-VAE, UAE) on one core.

Run on demand (never in the test suite)::

    .venv/bin/python benchmarks/latent.py [--demo-dir data/demo]

Each analysis runs with the demo config's section (``oivae``, ``uae``; the UAE's transfer
source is left out so every session costs the same) on the three demo sessions
(simulated with the demo config if ``--demo-dir`` holds none), one thread, and the wall
and CPU time of the whole per-session analysis are printed with its headline result.
Paper-level checks live in ``benchmarks/oivae.py`` (bars) and ``benchmarks/uae.py``
(digits). There is no peer: neither paper's code runs on a current PyTorch.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import torch  # noqa: E402

from neuroseq.config import load_config  # noqa: E402
from neuroseq.io import ingest_file  # noqa: E402
from neuroseq.latent.oivae_analysis import run_oivae  # noqa: E402
from neuroseq.latent.uae_analysis import run_uae  # noqa: E402
from neuroseq.simulate import simulate_demo  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _oivae(session, options: dict) -> str:
    out = run_oivae(session, **options)
    recovery, chance = float(out.map_recovery), float(out.map_recovery_chance)
    return (
        f"lambda {float(out.lambda_chosen):g}, {int(out.active.sum())} active latents, "
        f"map recovery {recovery:.2f} (shuffled {chance:.2f})"
    )


def _uae(session, options: dict) -> str:
    options = {k: v for k, v in options.items() if k != "transfer_from"}
    out = run_uae(session, **options)
    err = out.recon_error.mean("fold")
    ratio = (err.sel({"method": "uae"}) / err.sel({"method": "pca"})).values
    return "UAE / PCA error at m = " + ", ".join(
        f"{int(m)}: {r:.3f}" for m, r in zip(out.n_measurements.values, ratio, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", type=Path, default=REPO / "data" / "demo")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config(REPO / "config" / "config.yaml")
    files = sorted(args.demo_dir.glob("demo_*.nwb"))
    if not files:
        demo = config["demo"]
        files = simulate_demo(
            args.demo_dir,
            n_sessions=demo["n_sessions"],
            duration_s=demo["duration_s"],
            seed=demo["seed"],
        )
    print(f"{'session':>8} {'analysis':>8} {'wall s':>7} {'CPU s':>7}  result")
    for path in files:
        session = ingest_file(path, session_id=path.stem, **config["ingest"])
        minutes = float(session.time[-1] - session.time[0]) / 60
        for name, run in (("oivae", _oivae), ("uae", _uae)):
            wall, cpu = time.perf_counter(), time.process_time()
            result = run(session, config[name])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"{path.stem:>8} {name:>8} {wall:7.1f} {cpu:7.1f}  {result}")
        print(f"{'':>8} ({minutes:.0f} min, {session.sizes['unit']} units)")


if __name__ == "__main__":
    main()
