"""Compressed sensing of population activity, per session: session.nc -> uae.nc.

How few noisy linear measurements of the population vector keep it? Every method sees
the same population vectors (coarse bins of smoothed spike counts, each unit z-scored on
the training folds), the same folds and the same measurement noise, and recovers the
held-out vectors from ``m`` measurements for every ``m`` of the sweep.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter1d

from neuroseq import schema
from neuroseq.decoding.data import assign_folds, train_mask
from neuroseq.errors import InputError
from neuroseq.latent.uae import LassoRecovery, PCARecovery, UncertaintyAutoencoder
from neuroseq.summary import stack_sessions

log = logging.getLogger(__name__)

SCHEMA = "neuroseq.uae/1"
SUMMARY_SCHEMA = "neuroseq.summary.uae/1"
METHODS = ("uae", "uae_random", "lasso", "lasso_dct", "pca")
#: The method added when an encoder learnt on another session is given.
TRANSFER = "uae_transfer"
#: Fewer held-out population vectors per fold than this is an error.
MIN_VECTORS_PER_FOLD = 20
#: The Gaussian smoothing kernel is cut at this many standard deviations.
TRUNCATE = 3.0


@dataclass
class PopulationVectors:
    """Smoothed spike counts on coarse bins.

    Attributes
    ----------
    X : ndarray (n_vectors, n_units)
        Spike counts per coarse bin, smoothed over time.
    time : ndarray (n_vectors,)
        Bin centres (s).
    trial : ndarray (n_vectors,), int
        Trial of each vector (of its middle fine bin); -1 outside trials.
    units, regions : ndarray (n_units,)
        Ids and regions of the units kept.
    bin_size : float
        Coarse bin (s), a whole multiple of the session's bin.
    gap : int
        Reach of the smoothing kernel in bins: training vectors this close to a test
        vector share spikes with it and are left out of training.
    silent_units : list
        Ids of units without a spike in the session (left out).
    """

    X: np.ndarray
    time: np.ndarray
    trial: np.ndarray
    units: np.ndarray
    regions: np.ndarray
    bin_size: float
    gap: int
    silent_units: list = field(default_factory=list)


def population_vectors(
    session: xr.Dataset,
    *,
    bin_size_s: float = 0.1,
    smooth_s: float = 0.1,
    source: object = "session",
) -> PopulationVectors:
    """Coarsen and smooth a session's spike counts into population vectors.

    Parameters
    ----------
    session : xarray.Dataset
        A ``neuroseq.session/1`` Dataset with units.
    bin_size_s : float
        Coarse bin (s), rounded to a whole number of the session's bins (at least one);
        a last, incomplete coarse bin is left out.
    smooth_s : float
        Standard deviation of the Gaussian kernel over time (s); 0 for none.
    """
    if "unit" not in session.dims or session.sizes["unit"] == 0:
        raise InputError(source, "spike_counts", "a session with units", "no units")
    if not (np.isfinite(bin_size_s) and bin_size_s > 0):
        raise InputError("config", "uae.bin_size_s", "a number > 0", repr(bin_size_s))
    if not (np.isfinite(smooth_s) and smooth_s >= 0):
        raise InputError("config", "uae.smooth_s", "a number >= 0", repr(smooth_s))
    fine = float(session.attrs["bin_size_s"])
    factor = max(1, round(bin_size_s / fine))
    counts = session.spike_counts.values
    n = counts.shape[0] // factor
    total = counts.sum(0)
    keep = total > 0
    units = session.unit.values
    silent = units[~keep].tolist()
    if keep.sum() < 2:
        raise InputError(
            source,
            "spike_counts",
            "at least 2 units with spikes (measurements must be fewer than units)",
            f"{int(keep.sum())} of {units.size} units with spikes",
        )
    if n < 2:
        raise InputError(
            source, "time", f"at least 2 bins of {factor * fine:g} s", f"{counts.shape[0]} bins"
        )
    blocks = counts[: n * factor, keep].reshape(n, factor, -1).sum(1, dtype=np.float64)
    sigma = smooth_s / (factor * fine)
    X = (
        gaussian_filter1d(blocks, sigma, axis=0, mode="nearest", truncate=TRUNCATE)
        if sigma > 0
        else blocks
    )
    trial = session.trial_index.values[factor // 2 : n * factor : factor][:n].astype(np.int64)
    time_c = session.time.values[: n * factor].reshape(n, factor).mean(1)
    return PopulationVectors(
        X=X,
        time=time_c,
        trial=trial,
        units=units[keep],
        regions=session.unit_region.values[keep].astype(str),
        bin_size=factor * fine,
        gap=int(TRUNCATE * sigma + 0.5),  # scipy's kernel radius
        silent_units=silent,
    )


def make_model(
    method: str,
    m: int,
    noise_std: float,
    seed: int,
    options: Mapping[str, Any],
    encoder: np.ndarray | None = None,
):
    """A fresh, unfitted recovery model for ``method`` with ``m`` measurements."""
    uae = dict(options.get("autoencoder") or {})
    lasso = dict(options.get("lasso") or {})
    try:
        if method == "uae":
            return UncertaintyAutoencoder(m, noise_std, "learned", random_state=seed, **uae)
        if method == "uae_random":
            return UncertaintyAutoencoder(m, noise_std, "random", random_state=seed, **uae)
        if method == TRANSFER:
            return UncertaintyAutoencoder(m, noise_std, encoder, random_state=seed, **uae)
        if method == "lasso":
            return LassoRecovery(m, noise_std, "identity", random_state=seed, **lasso)
        if method == "lasso_dct":
            return LassoRecovery(m, noise_std, "dct", random_state=seed, **lasso)
        return PCARecovery(m, noise_std, random_state=seed)
    except TypeError as exc:
        key = "lasso" if method.startswith("lasso") else "autoencoder"
        raise InputError(
            "config", f"uae.{key}", "constructor arguments of the estimator", str(exc)
        ) from exc


def _zscore(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, sd = X.mean(0), X.std(0)
    sd[sd == 0] = 1.0  # a unit silent in the training bins: measured in counts
    return mean, sd


def _check_measurements(n_measurements: Sequence[int], n_units: int, source: object):
    ms = list(n_measurements)
    bad = [m for m in ms if isinstance(m, bool) or not isinstance(m, int | np.integer) or m <= 0]
    if bad or not ms:
        raise InputError("config", "uae.n_measurements", "a list of integers > 0", repr(bad or ms))
    ms = sorted({int(m) for m in ms})
    kept = [m for m in ms if m < n_units]
    skipped = [m for m in ms if m >= n_units]
    if not kept:
        raise InputError(
            source,
            "unit",
            f"more units with spikes than the smallest n_measurements ({ms[0]})",
            f"{n_units} units",
        )
    if skipped:
        log.warning("%s: n_measurements %s >= %d units: skipped", source, skipped, n_units)
    return kept, skipped


def transfer_encoders(
    source_session: xr.Dataset,
    units: np.ndarray,
    n_measurements: Sequence[int],
    *,
    bin_size_s: float,
    smooth_s: float,
    noise_std: float,
    seed: int,
    options: Mapping[str, Any],
    source: object = "transfer source",
) -> tuple[dict[int, np.ndarray], dict[str, Any]]:
    """Learn ``W`` on every vector of another session; lay it out on this session's units.

    Returns
    -------
    encoders : dict
        ``m`` -> ``W`` (m x len(units)) for every ``m`` below the source's unit count.
    info : dict
        ``shared_units`` (count), ``unmatched_units`` (ids of this session's units the
        source lacks), ``skipped_n_measurements``.

    Notes
    -----
    Units are matched by id, so ids must name the same neurons in both sessions (e.g.
    units tracked across days). A unit the source lacks gets a zero column (it is not
    measured); each row is then scaled back to unit norm, the constraint under which
    ``noise_std`` has its meaning.
    """
    pv = population_vectors(
        source_session, bin_size_s=bin_size_s, smooth_s=smooth_s, source=source
    )
    position = {u: i for i, u in enumerate(pv.units.tolist())}
    shared = np.array([u in position for u in units.tolist()])
    if not shared.any():
        raise InputError(
            source, "unit", "units shared with the session (matched by id)", "none in common"
        )
    columns = [position[u] for u in units[shared].tolist()]
    mean, sd = _zscore(pv.X)
    Z = (pv.X - mean) / sd
    encoders, skipped = {}, []
    for m in n_measurements:
        if m >= pv.units.size:
            skipped.append(int(m))
            continue
        est = make_model("uae", m, noise_std, seed, options).fit(Z)
        W = np.zeros((m, units.size))
        W[:, shared] = est.W_[:, columns]
        norms = np.linalg.norm(W, axis=1, keepdims=True)
        encoders[m] = W / np.where(norms > 0, norms, 1.0)
    info = {
        "shared_units": int(shared.sum()),
        "unmatched_units": units[~shared].tolist(),
        "skipped_n_measurements": skipped,
    }
    return encoders, info


def run_uae(
    session: xr.Dataset,
    *,
    methods: Sequence[str] = METHODS,
    n_measurements: Sequence[int] = (2, 5, 10, 25, 50),
    noise_std: float = 0.01,
    bin_size_s: float = 0.1,
    smooth_s: float = 0.1,
    split: str = "block",
    n_folds: int = 3,
    block_s: float = 30.0,
    eval_vectors: int | None = 300,
    seed: int = 0,
    transfer_source: xr.Dataset | None = None,
    source: object = "session",
    **estimator_options: Any,
) -> xr.Dataset:
    """Recover held-out population vectors from ``m`` noisy measurements, every method.

    Parameters
    ----------
    session : xarray.Dataset
        A ``neuroseq.session/1`` Dataset with units.
    methods : sequence of {"uae", "uae_random", "lasso", "lasso_dct", "pca"}
        ``uae``: learnt encoder and decoder; ``uae_random``: fixed random Gaussian
        encoder, learnt decoder; ``lasso`` / ``lasso_dct``: random Gaussian measurements
        recovered by LASSO in the unit basis / a DCT basis over units; ``pca``: the top
        ``m`` principal components. See :mod:`neuroseq.latent.uae`.
    n_measurements : sequence of int
        The sweep of ``m``; values not below the number of units are skipped and listed
        in ``attrs["skipped_n_measurements"]``.
    noise_std : float
        Measurement noise, in units of each unit's training standard deviation (the rows
        of every measurement matrix have unit norm).
    bin_size_s, smooth_s : float
        Coarse bin and Gaussian smoothing (s), see :func:`population_vectors`.
    split : {"block", "trial"}
        Folds of contiguous blocks of ``block_s`` seconds (every vector is used), or of
        whole trials (vectors outside trials are left out).
    n_folds : int
    block_s : float
    eval_vectors : int or None
        Held-out vectors scored per fold, evenly spaced in time over the fold (all
        methods score the same ones); None scores every held-out vector. Neighbouring
        smoothed vectors are close to copies, and LASSO recovery costs one solve per
        vector.
    seed : int
        Seeds the folds (trial split), the models and the measurement noise.
    transfer_source : xarray.Dataset, optional
        Another session: a UAE encoder learnt on all its vectors is applied here and only
        the decoder is re-learnt (method ``uae_transfer``), see :func:`transfer_encoders`.
    **estimator_options
        ``autoencoder={...}`` (UncertaintyAutoencoder arguments, for every UAE method)
        and ``lasso={...}`` (LassoRecovery arguments).

    Returns
    -------
    xarray.Dataset
        The variables of schema ``neuroseq.uae/1`` (without provenance attrs).

    Notes
    -----
    Each unit is z-scored with the mean and standard deviation of the training vectors
    of the fold, so errors are in units of standard deviations and comparable across
    units. Every method of a fold and ``m`` recovers the same noisy measurements' worth
    of signal: the noise draw is shared (seeded by fold and ``m``). Training vectors
    within the smoothing kernel's reach of a test vector are left out of training.
    The uncertainty autoencoder is that of Grover & Ermon (2019, AISTATS).
    """
    methods = list(methods)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise InputError(
            "config", "uae.methods", f"names among {list(METHODS)}", f"{unknown or 'none'}"
        )
    if split not in ("block", "trial"):
        raise InputError("config", "uae.split", "'block' or 'trial'", repr(split))
    if isinstance(n_folds, bool) or not isinstance(n_folds, int | np.integer) or n_folds < 2:
        raise InputError("config", "uae.n_folds", "an integer >= 2", repr(n_folds))
    if not (isinstance(noise_std, int | float) and np.isfinite(noise_std) and noise_std >= 0):
        raise InputError("config", "uae.noise_std", "a finite number >= 0", repr(noise_std))
    pv = population_vectors(session, bin_size_s=bin_size_s, smooth_s=smooth_s, source=source)
    n_units = pv.units.size
    ms, skipped = _check_measurements(n_measurements, n_units, source)
    fold = _folds(pv, split, n_folds, block_s, seed, source)
    attrs: dict[str, Any] = {"transfer_source": "", "transfer_shared_units": 0}
    encoders: dict[int, np.ndarray] = {}
    if transfer_source is not None:
        encoders, info = transfer_encoders(
            transfer_source,
            pv.units,
            ms,
            bin_size_s=bin_size_s,
            smooth_s=smooth_s,
            noise_std=noise_std,
            seed=seed,
            options=estimator_options,
            source=transfer_source.attrs.get("session_id", "transfer source"),
        )
        methods.append(TRANSFER)
        attrs.update(
            transfer_source=str(transfer_source.attrs.get("session_id", "")),
            transfer_shared_units=info["shared_units"],
            transfer_unmatched_units=json.dumps(info["unmatched_units"]),
            transfer_skipped_n_measurements=json.dumps(info["skipped_n_measurements"]),
        )
    shape = (len(methods), len(ms), n_folds)
    out = {
        name: np.full(shape, np.nan)
        for name in ("recon_error", "relative_error", "fit_seconds", "n_epochs", "lasso_alpha")
    }
    unit_sq = np.zeros((len(methods), len(ms), n_units))
    unit_var = np.zeros(n_units)
    mean_error = np.zeros(n_folds)
    n_test = np.zeros(n_folds, dtype=np.int64)
    for k in range(n_folds):
        train, test = train_mask(fold, k, pv.gap), _spread(fold == k, eval_vectors)
        mean, sd = _zscore(pv.X[train])
        Z_train = (pv.X[train] - mean) / sd
        Z_test = (pv.X[test] - mean) / sd
        mean_error[k] = np.linalg.norm(Z_test, axis=1).mean()  # predicting the mean (0)
        unit_var += (Z_test**2).sum(0)
        n_test[k] = test.sum()
        for j, m in enumerate(ms):
            noise_seed = int(np.random.SeedSequence([seed, k, m]).generate_state(1)[0])
            for i, method in enumerate(methods):
                if method == TRANSFER and m not in encoders:
                    continue
                model = make_model(method, m, noise_std, seed, estimator_options, encoders.get(m))
                t0 = time.perf_counter()
                model.fit(Z_train)
                out["fit_seconds"][i, j, k] = time.perf_counter() - t0
                recovered = model.reconstruct(model.measure(Z_test, random_state=noise_seed))
                err = recovered - Z_test
                out["recon_error"][i, j, k] = np.linalg.norm(err, axis=1).mean()
                out["relative_error"][i, j, k] = (err**2).sum() / (Z_test**2).sum()
                unit_sq[i, j] += (err**2).sum(0)
                if hasattr(model, "history_"):
                    out["n_epochs"][i, j, k] = len(model.history_.train_loss)
                if hasattr(model, "alpha_"):
                    out["lasso_alpha"][i, j, k] = model.alpha_
            log.info(
                "fold %d, m=%d: %s",
                k,
                m,
                ", ".join(
                    f"{name} {out['recon_error'][i, j, k]:.3f}" for i, name in enumerate(methods)
                ),
            )
    with np.errstate(invalid="ignore", divide="ignore"):
        unit_error = unit_sq / unit_var
    attrs.update(
        bin_size_s=pv.bin_size,
        smooth_s=float(smooth_s),
        noise_std=float(noise_std),
        split=split,
        n_units=int(n_units),
        n_vectors=int((fold >= 0).sum()),
        gap_bins=int(pv.gap),
        silent_units=json.dumps(pv.silent_units),
        skipped_n_measurements=json.dumps(skipped),
    )
    return _to_dataset(out, unit_error, mean_error, n_test, methods, ms, pv, attrs)


def _spread(mask: np.ndarray, n: int | None) -> np.ndarray:
    """``mask`` thinned to ``n`` of its True entries, evenly spaced (all when None)."""
    idx = np.flatnonzero(mask)
    if n is None or idx.size <= n:
        return mask
    out = np.zeros_like(mask)
    out[idx[np.linspace(0, idx.size - 1, n).round().astype(int)]] = True
    return out


def _folds(
    pv: PopulationVectors, split: str, n_folds: int, block_s: float, seed: int, source: object
) -> np.ndarray:
    if split == "trial":
        if not (pv.trial >= 0).any():
            raise InputError(
                source, "trial_index", "trials (config uae.split: trial)", "no trials"
            )
        group = pv.trial
    else:
        per_block = max(1, round(block_s / pv.bin_size))
        group = np.arange(len(pv.X)) // per_block
    n_groups = np.unique(group[group >= 0]).size
    if n_groups < n_folds:
        raise InputError(
            source, f"{split}s", f"at least {n_folds} (config uae.n_folds)", f"{n_groups}"
        )
    fold = assign_folds(group, n_folds, seed, contiguous=split == "block")
    per_fold = np.bincount(fold[fold >= 0], minlength=n_folds)
    train = [int(train_mask(fold, k, pv.gap).sum()) for k in range(n_folds)]
    if per_fold.min() < MIN_VECTORS_PER_FOLD or min(train) < 2 * MIN_VECTORS_PER_FOLD:
        raise InputError(
            source,
            "time",
            f"at least {MIN_VECTORS_PER_FOLD} population vectors of {pv.bin_size:g} s per "
            f"fold (and twice that for training)",
            f"{per_fold.tolist()} per fold, {train} for training",
        )
    return fold


_DEFINITIONS = {
    "recon_error": (
        "1",
        "mean over held-out vectors of ||x - x_hat||_2, with x z-scored per unit on the "
        "training folds (standard deviations); NaN where a method did not run",
    ),
    "relative_error": (
        "1",
        "sum of ||x - x_hat||^2 over held-out vectors / sum of ||x - training mean||^2 "
        "(the fraction of population variance not recovered; 1 = the mean predictor)",
    ),
    "fit_seconds": ("s", "wall time of fit"),
    "n_epochs": ("count", "training epochs (early stopping); NaN for closed-form methods"),
    "lasso_alpha": ("1", "LASSO penalty chosen on training vectors; NaN for other methods"),
}


def _to_dataset(out, unit_error, mean_error, n_test, methods, ms, pv, attrs) -> xr.Dataset:
    dims = ("method", "n_measurements", "fold")
    data = {
        name: (dims, values, {"units": _DEFINITIONS[name][0], "long_name": _DEFINITIONS[name][1]})
        for name, values in out.items()
    }
    data["unit_error"] = (
        ("method", "n_measurements", "unit"),
        unit_error,
        {
            "units": "1",
            "long_name": "per unit, sum over held-out vectors of all folds of the squared "
            "error / sum of (x - training mean)^2 (fraction of the unit's variance not "
            "recovered); NaN where a method did not run",
        },
    )
    data["mean_error"] = (
        "fold",
        mean_error,
        {"units": "1", "long_name": "recon_error of predicting the training mean"},
    )
    data["n_test_vectors"] = ("fold", n_test, {"units": "count"})
    return xr.Dataset(
        data,
        coords={
            "method": list(methods),
            "n_measurements": np.asarray(ms, dtype=np.int64),
            "fold": np.arange(len(mean_error)),
            "unit": pv.units,
            "unit_region": ("unit", pv.regions),
        },
        attrs=attrs,
    )


def summarize_uae(results: Sequence[xr.Dataset]) -> xr.Dataset:
    """Mean errors over folds per session, method and ``m``, stacked along ``session``.

    Methods or ``m`` absent from a session (skipped, or no transfer source) are NaN there.
    """
    ids = [str(r.attrs.get("session_id", i)) for i, r in enumerate(results)]
    parts = [
        xr.Dataset(
            {
                "recon_error": r.recon_error.mean("fold"),
                "recon_error_sd": r.recon_error.std("fold"),
                "relative_error": r.relative_error.mean("fold"),
                "mean_error": r.mean_error.mean("fold"),
                "n_units": r.attrs["n_units"],
            }
        )
        for r in results
    ]
    ds = stack_sessions(parts, ids, source="uae results")
    for name, (units, text) in {
        "recon_error": ("1", "mean over folds of recon_error; NaN where not run"),
        "recon_error_sd": ("1", "sd over folds of recon_error"),
        "relative_error": ("1", "mean over folds of relative_error; NaN where not run"),
        "mean_error": ("1", "recon_error of predicting the training mean"),
        "n_units": ("count", "units with spikes"),
    }.items():
        ds[name].attrs.update(units=units, long_name=text)
    return ds


@schema.register(SCHEMA)
def _validate(ds: xr.Dataset) -> None:
    dims = ("method", "n_measurements", "fold")
    for name in ("recon_error", "relative_error", "fit_seconds"):
        schema.require(ds, SCHEMA, name, dims, "f")
    schema.require(ds, SCHEMA, "unit_error", ("method", "n_measurements", "unit"), "f")
    schema.require(ds, SCHEMA, "mean_error", ("fold",), "f")
    schema.require(ds, SCHEMA, "unit_region", ("unit",), "OU")
    ran = [str(m) for m in ds.method.values if str(m) != TRANSFER]
    if not np.isfinite(ds.recon_error.sel({"method": ran})).all():
        raise schema.SchemaError(f"{SCHEMA}: non-finite recon_error of {ran}")
    if (ds.recon_error < 0).any():
        raise schema.SchemaError(f"{SCHEMA}: negative recon_error")
    if not (ds.n_measurements < ds.attrs["n_units"]).all():
        raise schema.SchemaError(f"{SCHEMA}: n_measurements not below the number of units")


@schema.register(SUMMARY_SCHEMA)
def _validate_summary(ds: xr.Dataset) -> None:
    dims = ("session", "method", "n_measurements")
    for name in ("recon_error", "relative_error"):
        schema.require(ds, SUMMARY_SCHEMA, name, dims, "f")
    schema.require(ds, SUMMARY_SCHEMA, "mean_error", ("session",), "f")
