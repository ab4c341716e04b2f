"""How well could any decoder do on the demo sessions? Bayes decoders that know the model.

Run on demand (never in the test suite)::

    .venv/bin/python benchmarks/decoding_limit.py [--sessions 3] [--seed S] [--skip-decoders]

``ceiling_r2`` in decoding.nc reads behaviour from the true latents themselves, which no
decoder sees. This benchmark asks what the spikes allow: it estimates the latents from
the spikes with the generative model itself, then reads behaviour from that estimate
exactly as the ceiling reads it from the truth (ridge on the lagged latent and its two
preceding bins, the decoders' folds). The model is an oracle's: each unit's tuning is a
Poisson GLM fitted on the true latents (all bins), each latent's AR(1) dynamics comes
from its own autocorrelation (the simulator's latents are Ornstein-Uhlenbeck processes,
neuroseq.simulate). Two estimates:

- ``smoother``: the posterior mode of the whole latent path given every spike (Laplace:
  Newton on the log-concave posterior, banded Hessian). It sees the future, so no
  decoder, causal or not, should beat it by more than the approximation's error;
- ``causal``: E[z(t - lag) | spikes up to t], a Laplace-Gaussian forward filter
  (Eden et al. 2004; Koyama et al. 2010) followed by a fixed-lag Rauch-Tung-Striebel pass
  over the lag of behaviour after the latents. A decoder that reads spikes up to t to
  predict behaviour at t (the causal decoders) should stay below it.

The decoders of config/config.yaml run beside them on the same sessions (the demo's:
``demo`` section, simulated afresh into a temporary directory), unless --skip-decoders.

References: Eden UT, Frank LM, Barbieri R, Solo V, Brown EN (2004). Dynamic analysis of
neural encoding by point process adaptive filtering. Neural Computation 16:971-998.
Koyama S, Castellanos Perez-Bolde L, Shalizi CR, Kass RE (2010). Approximate methods for
state-space models. JASA 105:170-180.
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
from scipy.linalg import solveh_banded  # noqa: E402
from sklearn.linear_model import PoissonRegressor  # noqa: E402

from neuroseq.config import load_config  # noqa: E402
from neuroseq.decoding.data import assign_folds, decoding_data  # noqa: E402
from neuroseq.decoding.evaluate import ceiling_r2, run_decoding  # noqa: E402
from neuroseq.io import ingest_file  # noqa: E402
from neuroseq.simulate import simulate_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def fit_model(z: np.ndarray, counts: np.ndarray):
    """Oracle parameters: per-unit Poisson GLM on the true latents, AR(1) per latent."""
    C = np.empty((counts.shape[1], z.shape[1]))
    c = np.empty(counts.shape[1])
    for i in range(counts.shape[1]):
        glm = PoissonRegressor(alpha=1e-8, max_iter=1000).fit(z, counts[:, i])
        C[i], c[i] = glm.coef_, glm.intercept_
    a = np.array([np.corrcoef(z[1:, k], z[:-1, k])[0, 1] for k in range(z.shape[1])])
    var = z.var(0)
    return C, c, a, var * (1 - a**2), var


def smoother(y, C, c, a, q, var, n_iter=50):
    """Posterior mode of the latent path given all counts ``y`` (time x unit)."""
    T, K = len(y), C.shape[1]
    x = np.zeros((T, K))
    prior_diag = np.tile((1 + a**2) / q, (T, 1))
    prior_diag[0] = 1 / var + a**2 / q
    prior_diag[-1] = 1 / q

    def log_post(x):
        eta = c + x @ C.T
        lik = np.sum(y * eta - np.exp(eta))
        d = x[1:] - a * x[:-1]
        return lik - 0.5 * (np.sum(x[0] ** 2 / var) + np.sum(d**2 / q))

    f = log_post(x)
    for _ in range(n_iter):
        lam = np.exp(c + x @ C.T)
        grad = (y - lam) @ C
        d = x[1:] - a * x[:-1]
        grad[0] -= x[0] / var
        grad[1:] -= d / q
        grad[:-1] += a * d / q
        # negative Hessian, banded upper form: ab[K + i - j, j] = J[i, j], i <= j
        ab = np.zeros((K + 1, T * K))
        block = np.einsum("ti,ik,il->tkl", lam, C, C)
        for k in range(K):
            for m in range(k, K):
                ab[K - (m - k), m::K] += block[:, k, m]
        ab[K] += prior_diag.ravel()
        off = np.tile(-a / q, (T, 1))
        off[0] = 0.0
        ab[0] += off.ravel()
        step = solveh_banded(ab, grad.ravel()).reshape(T, K)
        t = 1.0
        while t > 1e-4:
            f_new = log_post(x + t * step)
            if f_new >= f:
                break
            t /= 2
        x, f = x + t * step, f_new
        if np.abs(t * step).max() < 1e-6:
            break
    return x


def causal(y, C, c, a, q, var, lag, n_newton=4):
    """E[z(s) | counts up to s + lag]: Laplace-Gaussian filter, then a fixed-lag RTS pass."""
    T, K = len(y), C.shape[1]
    m = np.zeros((T, K))
    m_pred = np.zeros((T, K))
    P = np.zeros((T, K, K))
    P_pred = np.zeros((T, K, K))
    mean, cov = np.zeros(K), np.diag(var)
    for t in range(T):
        mp = a * mean if t else mean
        Pp = (a[:, None] * cov * a[None, :] + np.diag(q)) if t else cov
        Pp_inv = np.linalg.inv(Pp)
        x = mp.copy()
        for _ in range(n_newton):
            lam = np.exp(c + C @ x)
            H = (C.T * lam) @ C + Pp_inv
            x = x + np.linalg.solve(H, C.T @ (y[t] - lam) - Pp_inv @ (x - mp))
        lam = np.exp(c + C @ x)
        cov = np.linalg.inv((C.T * lam) @ C + Pp_inv)
        mean = x
        m[t], m_pred[t], P[t], P_pred[t] = mean, mp, cov, Pp
    # Smoother gains G_s = P_s A P_pred(s+1)^-1 (A = diag(a)); est_j[t] = E[z(t-j) | <= t].
    G = np.einsum("skl,l,slm->skm", P[:-1], a, np.linalg.inv(P_pred[1:]))
    est = m.copy()  # j = 0
    for j in range(1, lag + 1):
        # est_j[t] = m[t-j] + G[t-j] (est_{j-1}[t] - m_pred[t-j+1]), for t >= j
        prev = est
        est = np.full_like(m, np.nan)
        est[j:] = m[:-j] + np.einsum("tkl,tl->tk", G[: T - j], prev[j:] - m_pred[1 : T - j + 1])
    out = m.copy()  # the last `lag` bins keep their filtered mean
    out[: T - lag] = est[lag:] if lag else m
    return out


def bayes_r2(session, z_hat: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """``ceiling_r2`` with the true latents replaced by ``z_hat``."""
    truth = json.loads(session.attrs["ground_truth"])
    visible = np.asarray(truth["latent_region_map"]).any(1)
    full = np.zeros(session.true_latent.shape)
    full[:, visible] = z_hat
    data = decoding_data(session, n_folds=n_folds)
    fold = assign_folds(data.group, n_folds, seed)
    swapped = session.assign(true_latent=(session.true_latent.dims, full))
    return ceiling_r2(swapped, data, fold, n_folds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=3, help="demo sessions 1..N")
    ap.add_argument("--seed", type=int, help="simulator seed (default: the demo's)")
    ap.add_argument("--skip-decoders", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = load_config(ROOT / "config" / "config.yaml")
    demo, options = config["demo"], {**config["decoding"], "n_permutations": 0}
    n_folds, seed = options["n_folds"], options["seed"]
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.sessions):
            path = simulate_session(
                Path(tmp) / f"demo_{index + 1:02d}.nwb",
                index=index,
                duration_s=demo["duration_s"],
                seed=demo["seed"] if args.seed is None else args.seed,
            )
            session = ingest_file(path, session_id=f"demo_{index + 1:02d}", **config["ingest"])
            truth = json.loads(session.attrs["ground_truth"])
            visible = np.asarray(truth["latent_region_map"]).any(1)
            z = session.true_latent.values[:, visible]
            y = session.spike_counts.values.astype(float)
            lag = round(truth["lag_s"] / session.attrs["bin_size_s"])
            t0 = time.perf_counter()
            params = fit_model(z, y)
            rows = {"ceiling (true latents)": bayes_r2(session, z, n_folds, seed)}
            z_s = smoother(y, *params)
            rows["Bayes smoother (all spikes)"] = bayes_r2(session, z_s, n_folds, seed)
            z_c = causal(y, *params, lag=lag)
            rows["Bayes causal (spikes to t)"] = bayes_r2(session, z_c, n_folds, seed)
            seconds = time.perf_counter() - t0
            if not args.skip_decoders:
                ds = run_decoding(session, **options)
                for d in ds.decoder.values:
                    rows[str(d)] = ds.r2.sel(decoder=d).mean("fold").values
            features = list(session.behavior.feature.values)
            print(
                f"\ndemo_{index + 1:02d}: {y.shape[1]} units, {int(visible.sum())} latents "
                f"carried by units, lag {truth['lag_s']} s; Bayes estimates {seconds:.0f} s; "
                f"held-out R2 ({n_folds} trial folds), mean over features, then per feature"
            )
            print(f"{'':<30} {'mean':>6} " + " ".join(f"{f[:10]:>10}" for f in features))
            for name, r2 in rows.items():
                print(f"{name:<30} {np.mean(r2):>6.3f} " + " ".join(f"{v:>10.3f}" for v in r2))
            r = np.corrcoef(z_s.ravel(), z.ravel())[0, 1]
            r_c = np.corrcoef(z_c.ravel(), z.ravel())[0, 1]
            print(f"latent recovery, Pearson r with the truth: smoother {r:.3f}, causal {r_c:.3f}")


if __name__ == "__main__":
    main()
