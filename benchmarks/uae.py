"""Compressed sensing on one core: digits, the demo sessions, and training time per session.

Run on demand (never in the test suite)::

    .venv/bin/python benchmarks/uae.py [--demo-dir data/demo]

1. scikit-learn's 8x8 digits (bundled; pixels / 16, 1,437 training and 360 test images,
   noise 0.01): mean per-image l2 error of every method for m = 2 ... 50, beside the
   issue author's measurement (LASSO 3.87 / 3.54 / 0.48 at m = 10 / 25 / 50, mean image
   2.16, a small UAE 0.87 / 0.48 / 0.33), Grover & Ermon (2019) for the method.
2. The three demo sessions (simulated with the demo config if ``--demo-dir`` holds none):
   ``run_uae`` with the demo config's ``uae`` section (transfer from demo_01), its
   error table and the wall time of the whole analysis per session, on one thread.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from neuroseq.config import load_config  # noqa: E402
from neuroseq.io import ingest_file  # noqa: E402
from neuroseq.latent import LassoRecovery, PCARecovery, UncertaintyAutoencoder  # noqa: E402
from neuroseq.latent.uae import reconstruction_errors  # noqa: E402
from neuroseq.latent.uae_analysis import run_uae  # noqa: E402
from neuroseq.simulate import simulate_demo  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ISSUE = {"lasso": {10: 3.87, 25: 3.54, 50: 0.48}, "uae": {10: 0.87, 25: 0.48, 50: 0.33}}


def digits(ms: tuple[int, ...] = (2, 5, 10, 25, 50)) -> None:
    X = load_digits().data / 16.0
    order = np.random.default_rng(0).permutation(len(X))
    train, test = X[order[:1437]], X[order[1437:]]
    mean = reconstruction_errors(test, np.broadcast_to(train.mean(0), test.shape)).mean()
    print(f"\ndigits: mean image {mean:.2f} (issue: 2.16); mean per-image l2 error, noise 0.01")
    names = ("uae", "uae_random", "pca", "lasso", "lasso_pos", "lasso_dct")
    print(f"{'m':>3} " + " ".join(f"{n:>11}" for n in names) + "   issue lasso / uae")
    for m in ms:
        models = {
            "uae": UncertaintyAutoencoder(m, 0.01, "learned"),
            "uae_random": UncertaintyAutoencoder(m, 0.01, "random"),
            "pca": PCARecovery(m, 0.01),
            "lasso": LassoRecovery(m, 0.01),
            "lasso_pos": LassoRecovery(m, 0.01, positive=True),
            "lasso_dct": LassoRecovery(m, 0.01, "dct", image_shape=(8, 8)),
        }
        cells = []
        for model in models.values():
            t0 = time.perf_counter()
            model.fit(train)
            err = reconstruction_errors(
                test, model.reconstruct(model.measure(test, random_state=m))
            )
            cells.append(f"{err.mean():5.3f} {time.perf_counter() - t0:4.1f}s")
        issue = f"{ISSUE['lasso'].get(m, '-')} / {ISSUE['uae'].get(m, '-')}"
        print(f"{m:>3} " + " ".join(f"{c:>11}" for c in cells) + f"   {issue}")


def demo(directory: Path) -> None:
    config = load_config(REPO / "config" / "config.yaml")
    demo_config = config["demo"]
    paths = sorted(directory.glob("demo_*.nwb"))
    if len(paths) < 3:
        paths = simulate_demo(
            directory,
            n_sessions=demo_config["n_sessions"],
            duration_s=demo_config["duration_s"],
            seed=demo_config["seed"],
        )
    sessions = {p.stem: ingest_file(p, session_id=p.stem, **config["ingest"]) for p in paths}
    options = {k: v for k, v in config["uae"].items() if k != "transfer_from"}
    source = config["uae"]["transfer_from"]
    for name, session in sessions.items():
        transfer = sessions[source] if source and source != name else None
        t0 = time.perf_counter()
        ds = run_uae(session, transfer_source=transfer, source=name, **options)
        seconds = time.perf_counter() - t0
        fit = ds.fit_seconds.sum(("n_measurements", "fold")).to_pandas()
        print(
            f"\n{name}: {ds.attrs['n_units']} units, {ds.attrs['n_vectors']} vectors of "
            f"{ds.attrs['bin_size_s']:g} s; whole analysis {seconds:.0f} s on one core "
            f"(fit s per method: {fit.round(1).to_dict()})"
        )
        error = ds.recon_error.mean("fold").to_pandas()
        print(error.round(3).to_string())
        ratio = error.loc["uae"] / error.loc["pca"]
        print("uae / pca:", ratio.round(3).to_dict())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", type=Path, default=REPO / "data" / "demo")
    parser.add_argument("--skip-digits", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.skip_digits:
        digits()
    demo(args.demo_dir)


if __name__ == "__main__":
    main()
