"""oi-VAE of one session along a lambda path: session.nc -> oivae.nc.

Every lambda of the grid is fitted on the same training bins from the same seed and scored
by its ELBO on held-out time blocks; the model reported is chosen by that held-out ELBO
(see :func:`choose_lambda`), and the whole path is kept. On simulated sessions the learned
latent-to-group map is scored against the simulator's (:func:`map_recovery`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment

from neuroseq import schema
from neuroseq.errors import InputError
from neuroseq.latent.oivae import OIVAE
from neuroseq.latent.oivae_data import PARTS, OIVAEData, oivae_data, true_group_map
from neuroseq.summary import stack_sessions

log = logging.getLogger(__name__)

SCHEMA = "neuroseq.oivae/1"
SUMMARY_SCHEMA = "neuroseq.summary.oivae/1"
SELECTION = ("1se", "best")
#: OIVAE arguments a config may set under ``oivae.model``.
MODEL_OPTIONS = frozenset(OIVAE().get_params()) - {"n_latents", "lam", "random_state"}


def run_oivae(
    session: xr.Dataset,
    *,
    n_latents: int = 8,
    lambdas: Sequence[float] = (0.0, 3000.0, 10000.0, 30000.0),
    select: str = "1se",
    parts: Sequence[str] = PARTS,
    bin_size_s: float = 0.1,
    smooth_s: float = 0.1,
    behavior_lags_s: Sequence[float] = tuple(np.round(np.arange(11) * 0.02, 2)),
    block_s: float = 10.0,
    heldout_fraction: float = 0.2,
    min_group_units: int = 2,
    exclude_groups: Sequence[str] = (),
    model: Mapping[str, Any] | None = None,
    seed: int = 0,
    source: object = "session",
) -> xr.Dataset:
    """Fit oi-VAE along a lambda path and return ``oivae.nc``'s data.

    Parameters
    ----------
    session : xarray.Dataset
        A ``neuroseq.session/1`` Dataset with units, behaviour or both.
    n_latents : int
        Latents available to every fit.
    lambdas : sequence of float
        The grid of group-lasso weights, on the scale of the ELBO summed over the
        training bins (see :class:`neuroseq.latent.oivae.OIVAE`).
    select : {"1se", "best"}
        ``best``: the lambda with the highest held-out ELBO; ``1se``: the largest lambda
        whose held-out ELBO is within one standard error of the best
        (:func:`choose_lambda`).
    parts, bin_size_s, smooth_s, behavior_lags_s, block_s, heldout_fraction,
    min_group_units, exclude_groups :
        How the session becomes grouped arrays (:func:`neuroseq.latent.oivae_data.oivae_data`).
    model : mapping, optional
        Further :class:`OIVAE` arguments (``group_dim``, ``hidden``, ``max_epochs``, ...).
    seed : int
        Seeds the split and every fit.

    Returns
    -------
    xarray.Dataset
        The variables of schema ``neuroseq.oivae/1`` (without provenance attrs).
    """
    options = _check_options(n_latents, lambdas, select, model)
    data = oivae_data(
        session,
        parts=tuple(parts),
        bin_size_s=bin_size_s,
        smooth_s=smooth_s,
        behavior_lags_s=tuple(behavior_lags_s),
        block_s=block_s,
        heldout_fraction=heldout_fraction,
        min_group_units=min_group_units,
        exclude_groups=tuple(exclude_groups),
        seed=seed,
        source=source,
    )
    lambdas = np.asarray(sorted(float(v) for v in lambdas))
    truth = None
    if "ground_truth" in session.attrs:
        truth = true_group_map(session.attrs["ground_truth"], data, session)
    fits, path = [], _empty_path(len(lambdas), n_latents, len(data.groups))
    X_train, X_held = data.X[data.train], data.X[data.heldout]
    blocks = data.heldout_block[data.heldout]
    block_means = []
    for i, lam in enumerate(lambdas):
        t0 = time.perf_counter()
        est = OIVAE(n_latents=n_latents, lam=lam, random_state=seed, **options).fit(
            X_train, data.column_group, X_heldout=X_held
        )
        elbo = est.elbo(X_held)
        block_means.append([elbo[blocks == b].mean() for b in np.unique(blocks)])
        order = latent_order(est.w_norm_, est.active_)
        path["heldout_elbo"][i] = elbo.mean()
        path["train_elbo"][i] = est.history_.train_elbo[-1]
        path["n_active"][i] = est.active_.sum()
        path["w_norm"][i] = est.w_norm_[order]
        path["recon_r2"][i] = est.recon_r2(X_held)
        path["fit_seconds"][i] = time.perf_counter() - t0
        if truth is not None:
            path["map_recovery"][i] = map_recovery(truth, est.w_norm_, est.active_)[0]
        fits.append((est, order))
        log.info(
            "lambda %g: held-out ELBO %.3f per bin, %d active latents (%.1f s)",
            lam,
            path["heldout_elbo"][i],
            path["n_active"][i],
            path["fit_seconds"][i],
        )
    chosen, se = choose_lambda(np.asarray(block_means), select)
    path["heldout_elbo_se"][:] = se
    est, order = fits[chosen]
    ds = _dataset(data, lambdas, path, est, order, chosen)
    if truth is not None:
        _add_recovery(ds, truth, data, est, order)
    ds.attrs.update(
        selection=select,
        lambda_chosen=float(lambdas[chosen]),
        bin_size_s=data.bin_size,
        smooth_s=float(smooth_s),
        behavior_lag_s=data.behavior_lag,
        behavior_lag_scores=json.dumps({f"{k:g}": v for k, v in data.lag_scores.items()}),
        n_train_bins=int(data.train.sum()),
        n_heldout_bins=int(data.heldout.sum()),
        n_heldout_blocks=int(np.unique(blocks).size),
        penalized_epochs=int(est.penalized_epochs_),
        warmup_epochs=int(est.warmup_epochs),
        dropped_columns=json.dumps(data.dropped),
    )
    return ds


def _check_options(n_latents, lambdas, select, model) -> dict[str, Any]:
    if isinstance(n_latents, bool) or not isinstance(n_latents, int | np.integer) or n_latents < 1:
        raise InputError("config", "oivae.n_latents", "an int >= 1", repr(n_latents))
    values = list(lambdas)
    ok = bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) and v >= 0
        for v in values
    )
    if not ok or len(set(values)) != len(values):
        raise InputError(
            "config", "oivae.lambdas", "distinct finite numbers >= 0, at least one", repr(values)
        )
    if select not in SELECTION:
        raise InputError("config", "oivae.select", f"one of {list(SELECTION)}", repr(select))
    options = dict(model or {})
    unknown = sorted(set(options) - MODEL_OPTIONS)
    if unknown:
        raise InputError(
            "config", "oivae.model", f"keys among {sorted(MODEL_OPTIONS)}", f"{unknown}"
        )
    OIVAE(n_latents=n_latents, **options)._check_params()  # fail before any data work
    return options


def choose_lambda(block_elbo: np.ndarray, select: str = "1se") -> tuple[int, np.ndarray]:
    """Index of the chosen lambda, and the standard error of each lambda's gap to the best.

    Parameters
    ----------
    block_elbo : ndarray (n_lambdas, n_blocks)
        Mean held-out ELBO per bin of every held-out block, lambdas in increasing order.
    select : {"1se", "best"}

    Notes
    -----
    The gap of lambda ``l`` to the best lambda ``b`` is the mean over held-out blocks of
    ``ELBO_l - ELBO_b``, paired by block; its standard error is the blocks' standard
    deviation of that difference over ``sqrt(n_blocks)`` (0 with one block). ``1se``
    takes the largest lambda whose gap is at most one standard error, the one-standard-
    error rule of Hastie, Tibshirani & Friedman (2009, section 7.10): the sparsest map the
    held-out data cannot tell from the best.
    """
    mean = block_elbo.mean(1)
    best = int(np.argmax(mean))
    diff = block_elbo - block_elbo[best]
    n_blocks = block_elbo.shape[1]
    se = diff.std(1, ddof=1) / np.sqrt(n_blocks) if n_blocks > 1 else np.zeros(len(mean))
    if select == "best":
        return best, se
    within = np.flatnonzero(diff.mean(1) >= -se)
    return int(within.max()), se


def latent_order(w_norm: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Latents in display order: active first, grouped by their strongest group, then by
    decreasing norm. Latent labels are arbitrary in a VAE; this only makes maps readable.
    """
    top = w_norm.argmax(1)
    return np.lexsort((-w_norm.max(1), top, ~active))


def map_recovery(
    truth: np.ndarray, w_norm: np.ndarray, active: np.ndarray
) -> tuple[float, list[tuple[int, int, float]]]:
    """Score a learned latent-to-group map against a true 0/1 map.

    Parameters
    ----------
    truth : ndarray (K_true, G)
        1 where true latent ``k`` drives group ``g``.
    w_norm : ndarray (K, G)
        Learned ``||w_j^(g)||``.
    active : ndarray of bool (K,)

    Returns
    -------
    score : float
        Mean over the true latents that drive some group of the cosine similarity between
        the true row and the learned row matched to it (0 when none is left to match).
    pairs : list of (true latent, learned latent, cosine)

    Notes
    -----
    Each group's column of ``w_norm`` is divided by its largest entry first (groups differ
    in size and scale; what matters is which latents reach a group, relatively). True and
    active learned latents are then matched one to one so that the summed cosine is
    largest (Hungarian algorithm). A learned latent that loads on exactly the groups of
    its true latent, with similar relative weights, scores 1; one that loads on unrelated
    groups scores 0. Latents are identified only up to permutation and sign, which the
    matching and the norms remove.

    :func:`run_oivae` scores the map over every group, regions and body parts: the
    demo's latent-to-region map alone (private latents and one shared one over 2-4
    regions) is too simple to tell maps apart, shuffled maps scoring 0.91-0.93 on it.
    """
    rows = np.flatnonzero(truth.any(1))
    if rows.size == 0:
        return float("nan"), []
    B = w_norm / np.where(w_norm.max(0) > 0, w_norm.max(0), 1.0)
    cand = np.flatnonzero(active)
    if cand.size == 0:
        return 0.0, []
    A = truth[rows].astype(float)
    cos = _cosine(A, B[cand])
    r, c = linear_sum_assignment(-cos)
    pairs = [(int(rows[i]), int(cand[j]), float(cos[i, j])) for i, j in zip(r, c, strict=True)]
    return float(cos[r, c].sum() / rows.size), pairs


def map_recovery_chance(
    truth: np.ndarray, w_norm: np.ndarray, active: np.ndarray, n_perm: int = 200, seed: int = 0
) -> float:
    """Mean :func:`map_recovery` when each learned latent's norms are shuffled over groups.

    The shuffle keeps how many groups each latent reaches, and how strongly, but not
    which; the score of a map that knows nothing about the truth.
    """
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n_perm):
        shuffled = np.array([rng.permutation(row) for row in w_norm])
        scores.append(map_recovery(truth, shuffled, active)[0])
    return float(np.mean(scores))


def _cosine(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(A, axis=1, keepdims=True)
    nb = np.linalg.norm(B, axis=1, keepdims=True)
    return (A @ B.T) / np.where(na > 0, na, 1.0) / np.where(nb > 0, nb, 1.0).T


def _empty_path(n_lambdas: int, k: int, g: int) -> dict[str, np.ndarray]:
    return {
        "heldout_elbo": np.zeros(n_lambdas),
        "heldout_elbo_se": np.zeros(n_lambdas),
        "train_elbo": np.zeros(n_lambdas),
        "n_active": np.zeros(n_lambdas, dtype=np.int64),
        "w_norm": np.zeros((n_lambdas, k, g)),
        "recon_r2": np.zeros((n_lambdas, g)),
        "fit_seconds": np.zeros(n_lambdas),
        "map_recovery": np.full(n_lambdas, np.nan),
    }


def _dataset(
    data: OIVAEData,
    lambdas: np.ndarray,
    path: dict[str, np.ndarray],
    est: OIVAE,
    order: np.ndarray,
    chosen: int,
) -> xr.Dataset:
    hist = est.history_
    nats = "nats per bin (standardised data)"
    latents = est.transform(data.X)[:, order]
    ds = xr.Dataset(
        {
            "w_norm": (
                ("latent", "group"),
                est.w_norm_[order],
                {"units": "1", "long_name": "||w_j^(g)||, column norm of W_g per latent"},
            ),
            "active": (
                "latent",
                est.active_[order].astype(np.int8),
                {"units": "1", "long_name": f"1: largest norm > {est.active_tol} x the largest"},
            ),
            "elbo_train": (
                "epoch",
                np.asarray(hist.train_elbo),
                {"units": nats, "long_name": "ELBO of training bins after each epoch"},
            ),
            "elbo_heldout": (
                "epoch",
                np.asarray(hist.heldout_elbo),
                {"units": nats, "long_name": "ELBO of held-out bins after each epoch"},
            ),
            "latents": (
                ("time", "latent"),
                latents,
                {"units": "1", "long_name": "posterior mean E[z | x] of every bin"},
            ),
            "recon_r2": (
                "group",
                est.recon_r2(data.X[data.heldout]),
                {"units": "1", "long_name": "held-out R2 of the reconstruction f(W E[z|x])"},
            ),
            "heldout": (
                "time",
                data.heldout.astype(np.int8),
                {"units": "1", "long_name": "1: bin held out from training"},
            ),
            "path_heldout_elbo": (
                "penalty",
                path["heldout_elbo"],
                {"units": nats, "long_name": "held-out ELBO per bin at each lambda"},
            ),
            "path_heldout_elbo_se": (
                "penalty",
                path["heldout_elbo_se"],
                {
                    "units": nats,
                    "long_name": "standard error over held-out blocks of the gap to the best",
                },
            ),
            "path_train_elbo": ("penalty", path["train_elbo"], {"units": nats}),
            "path_n_active": ("penalty", path["n_active"], {"units": "count"}),
            "path_w_norm": (
                ("penalty", "latent", "group"),
                path["w_norm"],
                {"units": "1", "long_name": "w_norm of each fit (latents in display order)"},
            ),
            "path_recon_r2": (("penalty", "group"), path["recon_r2"], {"units": "1"}),
            "path_fit_seconds": ("penalty", path["fit_seconds"], {"units": "s"}),
            "lambda_chosen": ((), float(lambdas[chosen]), {"units": "1"}),
        },
        coords={
            "latent": np.arange(est.n_latents),
            "group": np.asarray(data.groups, dtype=str),
            "group_kind": ("group", np.asarray(data.group_kind, dtype=str)),
            "group_size": (
                "group",
                np.asarray([int((data.column_group == g).sum()) for g in data.groups]),
                {"units": "count"},
            ),
            "penalty": (
                "penalty",
                lambdas,
                {"units": "1", "long_name": "group-lasso weight lambda (summed-ELBO scale)"},
            ),
            "time": ("time", data.time, {"units": "s"}),
            "epoch": np.arange(len(hist.train_elbo)),
        },
    )
    if np.isfinite(path["map_recovery"]).any():
        ds["path_map_recovery"] = (
            "penalty",
            path["map_recovery"],
            {"units": "1", "long_name": "map_recovery of each fit"},
        )
    return ds


def _add_recovery(
    ds: xr.Dataset, truth: np.ndarray, data: OIVAEData, est: OIVAE, order: np.ndarray
) -> None:
    w_norm, active = est.w_norm_[order], est.active_[order]
    score, pairs = map_recovery(truth, w_norm, active)
    matched = np.full(est.n_latents, -1)
    true_row = np.zeros_like(w_norm)
    corr = []
    for k, j, _ in pairs:
        matched[j] = k
        true_row[j] = truth[k]
        if data.true_latent is not None:
            z, zhat = data.true_latent[:, k], ds.latents.values[:, j]
            corr.append(abs(np.corrcoef(z, zhat)[0, 1]))
    ds["map_recovery"] = (
        (),
        score,
        {
            "units": "1",
            "long_name": "mean cosine between each true latent's group map and its matched "
            "learned latent's (map_recovery)",
        },
    )
    ds["map_recovery_chance"] = (
        (),
        map_recovery_chance(truth, w_norm, active),
        {"units": "1", "long_name": "the same score with each latent's norms shuffled"},
    )
    ds["matched_true_latent"] = (
        "latent",
        matched,
        {"units": "1", "long_name": "true latent matched to each learned latent; -1: none"},
    )
    ds["true_map"] = (
        ("latent", "group"),
        true_row,
        {"units": "1", "long_name": "the simulator's map of the matched true latent"},
    )
    if corr:
        ds["latent_correlation"] = (
            (),
            float(np.mean(corr)),
            {
                "units": "1",
                "long_name": "mean |Pearson r| between matched true and learned latents",
            },
        )


def summarize_oivae(results: Sequence[xr.Dataset]) -> xr.Dataset:
    """Per session: chosen lambda, active latents, reconstruction, recovery; the path.

    Groups and lambdas absent from a session are NaN there (outer join).
    """
    ids = [str(r.attrs.get("session_id", i)) for i, r in enumerate(results)]
    parts = []
    for r in results:
        best = r.path_heldout_elbo.max()
        part = xr.Dataset(
            {
                "lambda_chosen": r.lambda_chosen,
                "n_active": ((), int(r.active.sum()), {"units": "count"}),
                "recon_r2": r.recon_r2.reset_coords(drop=True),
                "path_n_active": r.path_n_active,
                "path_heldout_elbo_gap": (
                    "penalty",
                    (r.path_heldout_elbo - best).values,
                    {"units": r.path_heldout_elbo.attrs["units"]},
                ),
            },
            coords={"penalty": r.penalty.values},
        )
        for name in ("map_recovery", "map_recovery_chance", "latent_correlation"):
            if name in r:
                part[name] = r[name]
        parts.append(part)
    ds = stack_sessions(parts, ids, source="oivae results")
    for name in ("lambda_chosen", "recon_r2", "map_recovery", "map_recovery_chance"):
        if name in ds:
            ds[name].attrs["units"] = "1"
    for name in ("n_active", "path_n_active"):
        ds[name].attrs["units"] = "count"
    ds["path_heldout_elbo_gap"].attrs.update(
        units="nats per bin (standardised data)",
        long_name="held-out ELBO minus the session's best along the path",
    )
    if "latent_correlation" in ds:
        ds["latent_correlation"].attrs["units"] = "1"
    ds["penalty"].attrs.update(units="1", long_name="group-lasso weight lambda")
    return ds


@schema.register(SCHEMA)
def _validate(ds: xr.Dataset) -> None:
    for name, dims in [
        ("w_norm", ("latent", "group")),
        ("active", ("latent",)),
        ("elbo_train", ("epoch",)),
        ("elbo_heldout", ("epoch",)),
        ("latents", ("time", "latent")),
        ("recon_r2", ("group",)),
        ("path_heldout_elbo", ("penalty",)),
        ("path_n_active", ("penalty",)),
        ("path_w_norm", ("penalty", "latent", "group")),
        ("lambda_chosen", ()),
    ]:
        schema.require(ds, SCHEMA, name, dims, "iuf")
    if not (np.isfinite(ds.w_norm).all() and (ds.w_norm >= 0).all()):
        raise schema.SchemaError(f"{SCHEMA}: w_norm must be finite and >= 0")
    if not np.isin(ds.active, (0, 1)).all():
        raise schema.SchemaError(f"{SCHEMA}: active must be 0 or 1")
    if float(ds.lambda_chosen) not in set(ds.penalty.values.tolist()):
        raise schema.SchemaError(f"{SCHEMA}: lambda_chosen is not on the lambda path")
    if ds.sizes["group"] < 2:
        raise schema.SchemaError(f"{SCHEMA}: fewer than 2 groups")


@schema.register(SUMMARY_SCHEMA)
def _validate_summary(ds: xr.Dataset) -> None:
    schema.require(ds, SUMMARY_SCHEMA, "lambda_chosen", ("session",), "f")
    schema.require(ds, SUMMARY_SCHEMA, "recon_r2", ("session", "group"), "f")
    schema.require(ds, SUMMARY_SCHEMA, "path_heldout_elbo_gap", ("session", "penalty"), "f")
