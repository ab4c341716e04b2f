"""NNGP on one core: kernel time and accuracy against neural-tangents, exact GP fit time,
and the digits comparison against finite networks of growing width.

Run on demand (never in the test suite)::

    .venv/bin/python benchmarks/nngp.py --kernel [--neural-tangents /tmp/ntvenv/bin/python]
    .venv/bin/python benchmarks/nngp.py --gp
    .venv/bin/python benchmarks/nngp.py --digits [--widths 16 64 256 1024 4096 --seeds 3]

neural-tangents 0.6.5 (the reference implementation, Novak et al. 2020) is not a
dependency: it needs jax==0.5.3, jaxlib==0.5.3, tf2jax==0.3.7 and pulls TensorFlow
(1.9 GB). Install it in a separate venv and pass its interpreter::

    python3 -m venv /tmp/ntvenv
    /tmp/ntvenv/bin/pip install neural-tangents==0.6.5 jax==0.5.3 jaxlib==0.5.3 tf2jax==0.3.7

Both contenders are pinned to one CPU core; neural-tangents runs in float64
(``jax_enable_x64``) on the same inputs, written to a temporary .npy file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from neuroseq.nngp import NNGPClassifier, NNGPRegressor, nngp_kernel  # noqa: E402

NT_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from neural_tangents import stax

    X = np.load(sys.argv[1])
    depth, act, out = int(sys.argv[2]), sys.argv[3], sys.argv[6]
    w, b = float(sys.argv[4]), float(sys.argv[5])
    if act == "tanh":
        phi = stax.ElementwiseNumerical(jnp.tanh, deg=int(sys.argv[7]))
    else:
        phi = {"relu": stax.Relu(), "erf": stax.Erf()}[act]
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512, W_std=w ** 0.5, b_std=b ** 0.5), phi]
    layers.append(stax.Dense(1, W_std=w ** 0.5, b_std=b ** 0.5))
    kernel_fn = jax.jit(stax.serial(*layers)[2], static_argnames="get")
    t0 = time.perf_counter()
    K = np.asarray(kernel_fn(X, None, "nngp"))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    K = np.asarray(kernel_fn(X, None, "nngp"))
    second = time.perf_counter() - t0
    np.save(out, K)
    print(json.dumps({"first_call_s": first, "second_call_s": second}))
    """
)


def naive_relu_kernel(X: np.ndarray, depth: int, w: float, b: float) -> np.ndarray:
    """The recursion written the straightforward way: full matrices, new temporaries."""
    K = b + w * X @ X.T / X.shape[1]
    for _ in range(depth):
        d = np.sqrt(np.diag(K))
        s = np.outer(d, d)
        c = np.clip(K / s, -1.0, 1.0)
        t = np.arccos(c)
        K = b + w * s / (2 * np.pi) * (np.sin(t) + (np.pi - t) * c)
    return K


def one_core() -> None:
    """Pin this process (and the neural-tangents child) to one CPU core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_kernel(n: int, d: int, depth: int, nt_python: str | None, tanh_n: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    w, b = 1.6, 0.1
    print(f"\nNNGP kernel K(X, X), N = {n:,}, d = {d}, depth {depth}, one core, float64")
    print(f"{'contender':<44} {'activation':>10} {'seconds':>9} {'max |dK|':>10} {'max rel':>9}")
    rows = []
    K, t = timed(nngp_kernel, X, depth=depth, activation="relu", weight_var=w, bias_var=b)
    rows.append(("neuroseq nngp_kernel", "relu", t, K))
    K_naive, t = timed(naive_relu_kernel, X, depth, w, b)
    rows.append(("straightforward numpy", "relu", t, K_naive))
    K_erf, t = timed(nngp_kernel, X, depth=depth, activation="erf", weight_var=w, bias_var=b)
    rows.append(("neuroseq nngp_kernel", "erf", t, K_erf))
    Xt = X[:tanh_n]
    K_tanh, t = timed(nngp_kernel, Xt, depth=depth, activation="tanh", weight_var=w, bias_var=b)
    rows.append((f"neuroseq nngp_kernel (N = {tanh_n:,})", "tanh", t, K_tanh))
    reference = {"relu": K, "erf": K_erf, "tanh": K_tanh}
    if nt_python:
        for act, inputs in (("relu", X), ("erf", X), ("tanh", Xt)):
            # stax's numerical activations hold N^2 x deg^2 values: deg 25 is what fits.
            for deg in (25,) if act == "tanh" else (0,):
                K_nt, times = run_neural_tangents(nt_python, inputs, depth, act, w, b, deg)
                if K_nt is None:
                    continue
                label = f"neural-tangents 0.6.5 (jit; 2nd call){f', deg {deg}' if deg else ''}"
                rows.append((label, act, times["second_call_s"], K_nt))
                first = times["first_call_s"]
                print(
                    f"  (neural-tangents {act}: first call, compilation included, {first:.2f} s)"
                )
    for name, act, seconds, M in rows:
        ref = reference[act]
        diff = np.abs(M - ref)
        rel = (diff / np.maximum(np.abs(ref), 1e-300)).max()
        print(f"{name:<44} {act:>10} {seconds:>9.2f} {diff.max():>10.2e} {rel:>9.2e}")
    print("(differences are against neuroseq's kernel of the same activation)")


def run_neural_tangents(python, X, depth, act, w, b, deg):
    with tempfile.TemporaryDirectory() as tmp:
        inp, out, script = (Path(tmp) / n for n in ("X.npy", "K.npy", "neural_tangents_kernel.py"))
        np.save(inp, X)
        script.write_text(NT_SCRIPT)
        proc = subprocess.run(
            [python, str(script), str(inp), str(depth), act, str(w), str(b), str(out), str(deg)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(f"  neural-tangents failed ({act}): {proc.stderr.strip().splitlines()[-1:]}")
            return None, None
        return np.load(out), json.loads(proc.stdout.strip().splitlines()[-1])


def bench_gp(n: int, d: int) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n + 1000, d))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=len(X))
    print(f"\nExact GP regression, N = {n:,} training points, d = {d}, ReLU depth 3, one core")
    fixed = NNGPRegressor(depth=3, weight_var=1.6, bias_var=0.1, noise=1e-2)
    _, t = timed(fixed.fit, X[:n], y[:n])
    _, tp = timed(fixed.predict, X[n:], return_std=True)
    print(
        f"  one setting (kernel + Cholesky):              fit {t:6.1f} s, "
        f"predict 1,000 with std {tp:5.1f} s"
    )
    search = NNGPRegressor(depth=(1, 2, 3), weight_var=1.6, bias_var=0.1)
    _, t = timed(search.fit, X[:n], y[:n])
    r2 = 1 - np.mean((search.predict(X[n:]) - y[n:]) ** 2) / np.var(y[n:])
    print(f"  search 3 depths x 17 noise (evidence): fit {t:6.1f} s, held-out R2 {r2:.3f}")


def bench_digits(widths, seeds, splits, max_epochs) -> None:
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from neuroseq.nngp import FiniteMLPClassifier

    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    opts = dict(
        depth=3,
        activation="relu",
        weight_var=2.0,
        bias_var=(0.0, 0.5, 2.0),
        noise=tuple(np.logspace(-10, 0, 11)),
    )
    print("\ndigits, 1,000 training / 797 test images (stratified splits), ReLU depth 3")
    print(f"{'model':<28} {'split':>5} {'seed':>5} {'accuracy':>9} {'epochs':>7} {'seconds':>8}")
    for split in range(splits):
        Xtr, Xte, ytr, yte = train_test_split(
            X, y, train_size=1000, random_state=split, stratify=y
        )
        gp, t = timed(NNGPClassifier(**opts).fit, Xtr, ytr)
        acc = np.mean(gp.predict(Xte) == yte)
        print(f"{'NNGP':<28} {split:>5} {'-':>5} {acc:>9.4f} {'-':>7} {t:>8.1f}", flush=True)
        if split > 0:
            continue
        for width in widths:
            scores = []
            for seed in range(seeds):
                net = FiniteMLPClassifier(
                    width=width,
                    depth=3,
                    weight_var=gp.weight_var_,
                    bias_var=gp.bias_var_,
                    max_epochs=max_epochs,
                    random_state=seed,
                )
                _, t = timed(net.fit, Xtr, ytr)
                scores.append(np.mean(net.predict(Xte) == yte))
                print(
                    f"{f'MLP width {width} (Adam)':<28} {split:>5} {seed:>5} {scores[-1]:>9.4f} "
                    f"{net.history_.best_epoch + 1:>7} {t:>8.1f}",
                    flush=True,
                )
            print(f"{f'  mean over {seeds} seeds':<28} {'':>5} {'':>5} {np.mean(scores):>9.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", action="store_true")
    parser.add_argument("--gp", action="store_true")
    parser.add_argument("--digits", action="store_true")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("-d", type=int, default=64)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--tanh-n", type=int, default=500)
    parser.add_argument("--neural-tangents", metavar="PYTHON", help="interpreter with nt")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 64, 256, 1024, 4096])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--max-epochs", type=int, default=150)
    args = parser.parse_args()
    one_core()
    if not (args.kernel or args.gp or args.digits):
        args.kernel = args.gp = True
    if args.kernel:
        bench_kernel(args.n, args.d, args.depth, args.neural_tangents, args.tanh_n)
    if args.gp:
        bench_gp(args.n, args.d)
    if args.digits:
        bench_digits(args.widths, args.seeds, args.splits, args.max_epochs)


if __name__ == "__main__":
    sys.exit(main())
