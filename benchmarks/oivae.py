"""oi-VAE on one core: the bars case and the demo sessions, time and recovery.

Run on demand (never in the test suite)::

    .venv/bin/python benchmarks/oivae.py [--sessions 3] [--duration 720]

Bars: 2,000 8 x 8 images, one latent per row, 16 latents (Ainsworth et al. 2018, section
5.1), oi-VAE (lambda 6000) beside the same model with lambda = 0. Demo sessions: the
default config's ``oivae`` section on ``neuroseq simulate`` sessions. There is no peer to
run beside it: the authors' code targets PyTorch 0.3 and does not run on a current one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from neuroseq.config import load_config  # noqa: E402
from neuroseq.io import ingest_file  # noqa: E402
from neuroseq.latent import OIVAE  # noqa: E402
from neuroseq.latent.oivae_analysis import run_oivae  # noqa: E402
from neuroseq.latent.oivae_data import simulate_bars  # noqa: E402
from neuroseq.simulate import simulate_demo  # noqa: E402

BARS = dict(
    n_latents=16,
    group_dim=1,
    hidden=0,
    lr=1e-2,
    lr_w=1e-2,
    batch_size=128,
    max_epochs=150,
    warmup_epochs=20,
    relax_epochs=0,
    device="cpu",
    random_state=0,
)


def bars() -> None:
    X, groups, _ = simulate_bars(2000, seed=0)
    X_test, _, _ = simulate_bars(500, seed=1)
    print("bars: 2,000 images, 16 latents for 8 rows")
    print(f"{'model':>14} {'CPU s':>6} {'active':>6} {'row share (min-max)':>20} {'ELBO':>7}")
    for name, lam in (("oi-VAE", 6000.0), ("VAE (lam 0)", 0.0)):
        t0 = time.process_time()
        est = OIVAE(lam=lam, **BARS).fit(X, groups)
        seconds = time.process_time() - t0
        share = est.w_norm_.max(0) / est.w_norm_.sum(0)
        print(
            f"{name:>14} {seconds:6.1f} {int(est.active_.sum()):6d} "
            f"{share.min():9.2f} - {share.max():.2f} {est.score(X_test):7.2f}"
        )


def demo(n_sessions: int, duration: float) -> None:
    options = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    ingest, oivae = options["ingest"], options["oivae"]
    print(f"\ndemo sessions ({duration:g} s), lambdas {oivae['lambdas']}")
    print(
        f"{'session':>8} {'CPU s':>6} {'lambda':>7} {'active':>6} {'recovery':>8} "
        f"{'shuffled':>8} {'|r|':>5} {'wall s per lambda':>24}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for path in simulate_demo(tmp, n_sessions=n_sessions, duration_s=duration, seed=0):
            session = ingest_file(path, session_id=path.stem, **ingest)
            t0 = time.process_time()
            out = run_oivae(session, **oivae)
            seconds = time.process_time() - t0
            per = " ".join(f"{s:.1f}" for s in out.path_fit_seconds.values)
            print(
                f"{path.stem:>8} {seconds:6.1f} {float(out.lambda_chosen):7g} "
                f"{int(out.active.sum()):6d} {float(out.map_recovery):8.2f} "
                f"{float(out.map_recovery_chance):8.2f} {float(out.latent_correlation):5.2f} "
                f"{per:>24}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--duration", type=float, default=720.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    np.set_printoptions(precision=3)
    bars()
    demo(args.sessions, args.duration)


if __name__ == "__main__":
    main()
