"""From a session Dataset to oi-VAE arrays: groups, coarse bins, a held-out split; bars data.

Neural groups are brain regions (``unit_region``), behaviour groups are body parts
(``feature_group``). Spike counts are summed into coarser bins, smoothed with a Gaussian
kernel and passed through ``log1p``; behaviour is averaged within the coarse bins, bins
without any valid sample staying NaN (left out of the likelihood, never filled).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter1d

from neuroseq.errors import InputError
from neuroseq.io.output import session_groups

#: Fewest training bins a fit accepts.
MIN_TRAIN_BINS = 200
PARTS = ("units", "behavior")


@dataclass
class OIVAEData:
    """Arrays of one session on coarse bins.

    Attributes
    ----------
    X : ndarray (n_bins, n_columns)
        ``log1p`` of smoothed counts, then behaviour; NaN where behaviour is missing.
    column_group : ndarray of str (n_columns,)
        Group of each column.
    groups : list of str
        Group names, regions first (in order of first appearance), then behaviour.
    group_kind : list of str
        ``"region"`` or ``"behavior"`` per group.
    columns : list of str
        ``unit <id>`` or the feature name, per column.
    train, heldout : ndarray of bool (n_bins,)
        Bins fitted on and bins scored; the ``gap`` bins next to held-out blocks are in
        neither (the smoothing kernel reaches across block edges).
    heldout_block : ndarray of int (n_bins,)
        Block of each held-out bin, -1 elsewhere.
    time : ndarray (n_bins,)
        Centres of the coarse bins (s).
    bin_size : float
        Coarse bin width (s).
    true_latent : ndarray (n_bins, K_true) or None
        The simulator's latents averaged into the coarse bins (demo sessions).
    dropped : dict
        Columns left out and why (``{"silent units": [...], "empty features": [...]}``).
    behavior_lag : float
        Lag of behaviour after activity applied (s); 0 without behaviour or units.
    lag_scores : dict
        Candidate lag (s) -> R2 of a ridge readout of behaviour from activity (training
        bins, generalised cross-validation); empty when the lag was not chosen.
    """

    X: np.ndarray
    column_group: np.ndarray
    groups: list[str]
    group_kind: list[str]
    columns: list[str]
    train: np.ndarray
    heldout: np.ndarray
    heldout_block: np.ndarray
    time: np.ndarray
    bin_size: float
    true_latent: np.ndarray | None = None
    dropped: dict[str, list[str]] = field(default_factory=dict)
    behavior_lag: float = 0.0
    lag_scores: dict[float, float] = field(default_factory=dict)


def oivae_data(
    session: xr.Dataset,
    *,
    parts: tuple[str, ...] | list[str] = PARTS,
    bin_size_s: float = 0.1,
    smooth_s: float = 0.1,
    behavior_lags_s: tuple[float, ...] | list[float] = (0.0,),
    block_s: float = 10.0,
    heldout_fraction: float = 0.2,
    min_group_units: int = 2,
    exclude_groups: tuple[str, ...] | list[str] = (),
    seed: int = 0,
    source: object = "session",
) -> OIVAEData:
    """Collect the groups of a session on coarse bins and split them by time blocks.

    Parameters
    ----------
    session : xarray.Dataset
        A ``neuroseq.session/1`` Dataset with units, behaviour or both.
    parts : sequence of {"units", "behavior"}
        Which parts of the session become groups (those present are used).
    bin_size_s : float
        Coarse bin width (s), rounded to a whole number of the session's bins.
    smooth_s : float
        Standard deviation of the Gaussian kernel smoothing the coarse counts (s); 0: none.
    behavior_lags_s : sequence of float
        Candidate lags of behaviour after activity (s): behaviour at ``t + lag`` is paired
        with activity at ``t`` (shifted on the session's own bins, before coarsening; the
        last ``lag`` of behaviour becomes missing). With several candidates, the lag whose
        ridge readout of behaviour from activity scores best on the training bins is used.
    block_s : float
        Length of the contiguous time blocks dealt to the held-out set (s).
    heldout_fraction : float
        Fraction of the blocks held out (at least one), chosen with ``seed``.
    min_group_units : int
        Regions with fewer units are an error (name them in ``exclude_groups``).
    exclude_groups : sequence of str
        Groups (regions or body parts) to leave out.
    seed : int
    source : str
        Named in error messages.

    Raises
    ------
    InputError
        No units and no behaviour, fewer than two groups, a region below
        ``min_group_units``, too few bins, or an unknown group in ``exclude_groups``.
    """
    if not set(parts) <= set(PARTS) or not parts:
        raise InputError(
            "config", "oivae.parts", f"a non-empty subset of {list(PARTS)}", f"{list(parts)}"
        )
    has_units = "unit" in session.dims and session.sizes["unit"] > 0 and "units" in parts
    has_behavior = "feature" in session.dims and session.sizes["feature"] > 0
    has_behavior = has_behavior and "behavior" in parts
    if not (has_units or has_behavior):
        raise InputError(
            source,
            "spike_counts, behavior",
            f"units or behaviour on a time axis (config oivae.parts {list(parts)})",
            "neither",
        )
    session_bin = float(session.attrs["bin_size_s"])
    factor = max(1, round(bin_size_s / session_bin))
    n = session.sizes["time"] // factor
    bin_size = factor * session_bin
    if n == 0:
        raise InputError(source, "time", f"bins spanning at least {bin_size:g} s", "none")
    blocks, columns, col_group, groups, kinds = [], [], [], [], []
    dropped: dict[str, list[str]] = {}
    known = set()
    if has_units:
        known |= set(session.unit_region.values.astype(str))
    if has_behavior:
        known |= set(session.feature_group.values.astype(str))
    unknown = sorted(set(exclude_groups) - known)
    if unknown:
        raise InputError(
            "config", "oivae.exclude_groups", f"group names among {sorted(known)}", f"{unknown}"
        )
    if has_units:
        regions = session.unit_region.values.astype(str)
        has_units = bool((~np.isin(regions, list(exclude_groups))).any())
    if has_units:
        keep = ~np.isin(regions, list(exclude_groups))
        counts = _coarsen(
            session.spike_counts.values[:, keep].astype(np.float64), factor, n, how="sum"
        )
        silent = counts.sum(0) == 0
        ids = session.unit.values[keep]
        if silent.any():
            dropped["silent units"] = [str(u) for u in ids[silent]]
        names, sizes = np.unique(regions[keep][~silent], return_counts=True)
        small = {str(r): int(c) for r, c in zip(names, sizes, strict=True) if c < min_group_units}
        if small:
            raise InputError(
                source,
                "unit_region",
                f"at least {min_group_units} units with spikes per region "
                "(config oivae.min_group_units; or list the region in oivae.exclude_groups)",
                f"{small}",
            )
        smoothed = smooth(counts, smooth_s / bin_size)
        blocks.append(np.log1p(smoothed[:, ~silent]))
        columns += [f"unit {u}" for u in ids[~silent]]
        col_group += list(regions[keep][~silent])
        for r in regions[keep][~silent]:
            if r not in groups:
                groups.append(str(r))
                kinds.append("region")
    time = session.time.values[: n * factor].reshape(n, factor).mean(1)
    train, heldout, block = split_blocks(
        n,
        bin_size,
        block_s,
        heldout_fraction,
        gap=int(np.ceil(3 * smooth_s / bin_size)),
        seed=seed,
    )
    lag, lag_scores = 0.0, {}
    if has_behavior:
        feature_group = session.feature_group.values.astype(str)
        keep = ~np.isin(feature_group, list(exclude_groups))
        raw = session.behavior.values[:, keep].astype(np.float64)
        names = session.feature.values[keep].astype(str)
        empty = ~np.isfinite(raw).any(0)
        if empty.any():
            dropped["empty features"] = names[empty].tolist()
        raw = raw[:, ~empty]
        lags = sorted({max(0, round(lag / session_bin)) for lag in behavior_lags_s} or {0})
        # Behaviour is smoothed like the counts, so that both read the same filtered latent.
        candidates = {
            k: smooth(_coarsen(_shift(raw, k), factor, n), smooth_s / bin_size) for k in lags
        }
        best = lags[0]
        if blocks and blocks[0].shape[1] and len(lags) > 1 and raw.shape[1]:
            neural = np.concatenate(blocks, axis=1)
            lag_scores = {
                k * session_bin: ridge_r2(neural[train], values[train])
                for k, values in candidates.items()
            }
            best = lags[int(np.argmax(list(lag_scores.values())))]
            lag = best * session_bin
        blocks.append(candidates[best])
        columns += names[~empty].tolist()
        for g in feature_group[keep][~empty]:
            # A body part named like a region keeps its own group.
            label = f"{g} (behavior)" if g in groups and kinds[groups.index(g)] == "region" else g
            col_group.append(label)
            if label not in groups:
                groups.append(label)
                kinds.append("behavior")
    if len(groups) < 2:
        raise InputError(
            source,
            "unit_region, feature_group",
            "at least 2 groups (regions and body parts) for a latent-to-group map",
            f"{groups}",
        )
    if train.sum() < MIN_TRAIN_BINS or not heldout.any():
        raise InputError(
            source,
            "time",
            f"at least {MIN_TRAIN_BINS} training bins of {bin_size:g} s and one held-out "
            f"block of {block_s:g} s (config oivae.bin_size_s, oivae.block_s)",
            f"{int(train.sum())} training bins, {int(heldout.any())} held-out blocks "
            f"({n} bins in all)",
        )
    true_latent = None
    if "true_latent" in session and "ground_truth" in session.attrs:
        true_latent = _coarsen(session.true_latent.values.astype(np.float64), factor, n)
    return OIVAEData(
        X=np.concatenate(blocks, axis=1),
        column_group=np.asarray(col_group, dtype=str),
        groups=groups,
        group_kind=kinds,
        columns=columns,
        train=train,
        heldout=heldout,
        heldout_block=block,
        time=time,
        bin_size=bin_size,
        true_latent=true_latent,
        dropped=dropped,
        behavior_lag=lag,
        lag_scores=lag_scores,
    )


def oivae_groups(
    session: str | os.PathLike[str] | Mapping[str, Sequence[str]],
    parts: Sequence[str] = PARTS,
    exclude_groups: Sequence[str] = (),
) -> list[str]:
    """Groups a session offers oi-VAE (regions with units, then body parts).

    ``session`` is a ``session.nc`` path or the groups ingest recorded for it
    (:func:`neuroseq.io.output.session_groups`). The workflow runs oi-VAE only on
    sessions with at least two.
    """
    groups = session if isinstance(session, Mapping) else session_groups(session)
    found = [g for part in PARTS if part in parts for g in groups.get(part, [])]
    return [g for g in found if g not in set(exclude_groups)]


def _coarsen(values: np.ndarray, factor: int, n: int, how: str = "mean") -> np.ndarray:
    """``how="sum"`` (counts) or the NaN-aware mean (NaN only where no bin has a value)."""
    cut = values[: n * factor].reshape(n, factor, values.shape[1])
    if how == "sum":
        return cut.sum(1)
    ok = np.isfinite(cut)
    total = np.where(ok, cut, 0.0).sum(1)
    count = ok.sum(1)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time (``sigma`` in bins), NaN-aware.

    Missing entries stay missing; the others average their observed neighbours only
    (the kernel renormalised over them), so no value is ever made up for a gap.
    """
    if sigma <= 0:
        return values
    ok = np.isfinite(values)
    if ok.all():
        return gaussian_filter1d(values, sigma, axis=0, mode="nearest")
    num = gaussian_filter1d(np.where(ok, values, 0.0), sigma, axis=0, mode="nearest")
    den = gaussian_filter1d(ok.astype(float), sigma, axis=0, mode="nearest")
    out = num / np.where(den > 0, den, 1.0)
    out[~ok] = np.nan
    return out


def _shift(values: np.ndarray, k: int) -> np.ndarray:
    """Row t takes row t + k (NaN past the end): behaviour k bins after activity."""
    if k == 0:
        return values
    out = np.full_like(values, np.nan)
    out[:-k] = values[k:]
    return out


def ridge_r2(X: np.ndarray, y: np.ndarray) -> float:
    """Mean R2 over the columns of ``y`` of a ridge readout from ``X`` (GCV over alphas).

    Rows where a column of ``y`` is missing are left out for that column.
    """
    from sklearn.linear_model import RidgeCV  # here: the workflow imports this module

    scores = []
    for j in range(y.shape[1]):
        ok = np.isfinite(y[:, j])
        if ok.sum() < 10:
            continue
        model = RidgeCV(alphas=np.logspace(-2, 4, 7)).fit(X[ok], y[ok, j])
        # best_score_ is minus the leave-one-out mean squared error (efficient GCV).
        scores.append(1.0 + model.best_score_ / np.var(y[ok, j]))
    return float(np.mean(scores)) if scores else float("nan")


def split_blocks(
    n: int, bin_size: float, block_s: float, fraction: float, gap: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training bins, held-out bins and held-out block ids, from contiguous time blocks.

    A seeded ``fraction`` of the blocks (at least one, never all) is held out;
    ``gap`` bins on each side of a held-out block belong to neither set.
    """
    per_block = max(1, round(block_s / bin_size))
    block_of = np.arange(n) // per_block
    n_blocks = int(block_of[-1]) + 1 if n else 0
    heldout = np.zeros(n, dtype=bool)
    block = np.full(n, -1)
    if n_blocks < 2:
        return ~heldout, heldout, block
    n_held = min(n_blocks - 1, max(1, round(fraction * n_blocks)))
    chosen = np.sort(np.random.default_rng(seed).choice(n_blocks, n_held, replace=False))
    heldout = np.isin(block_of, chosen)
    block[heldout] = block_of[heldout]
    near = heldout.copy()
    if gap > 0:
        near = np.convolve(heldout.astype(float), np.ones(2 * gap + 1), mode="same") > 0
    return ~near, heldout, block


def true_group_map(truth_json: str, data: OIVAEData, session: xr.Dataset) -> np.ndarray | None:
    """The simulator's latent-to-group map over ``data.groups`` (K_true x G), 0/1.

    Regions read ``latent_region_map``; a behaviour group is driven by every latent that
    drives one of its series (``latent_behavior_map``), a series being matched to the
    session's features by name (``<series>`` or ``<series>_*``). Groups the truth does not
    describe make the map unusable (None).
    """
    truth = json.loads(truth_json)
    if "latent_region_map" not in truth:
        return None
    region_map = np.asarray(truth["latent_region_map"], dtype=int)
    regions = list(truth.get("regions", []))
    out = np.zeros((region_map.shape[0], len(data.groups)), dtype=int)
    series_map = {
        k: np.asarray(v, dtype=int) for k, v in truth.get("latent_behavior_map", {}).items()
    }
    names = session.feature.values.astype(str) if "feature" in session.dims else np.array([])
    feature_group = (
        session.feature_group.values.astype(str) if "feature" in session.dims else np.array([])
    )
    for g, (name, kind) in enumerate(zip(data.groups, data.group_kind, strict=True)):
        if kind == "region":
            if name not in regions:
                return None
            out[:, g] = region_map[:, regions.index(name)]
            continue
        base = name.removesuffix(" (behavior)")
        members = names[feature_group == base]
        found = False
        for series, row in series_map.items():
            if any(m == series or m.startswith(series + "_") for m in members):
                out[:, g] |= row
                found = True
        if not found:
            return None
    return out


def simulate_bars(
    n: int, *, size: int = 8, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bars images: row ``r`` of every ``size x size`` image has the brightness ``z_r``.

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Image side; also the number of true latents and of groups (one per row).
    noise : float
        Standard deviation of independent Gaussian pixel noise.
    seed : int

    Returns
    -------
    X : ndarray (n, size * size)
        Images, row-major.
    groups : ndarray of str (size * size,)
        ``row0`` ... per pixel.
    z : ndarray (n, size)
        The true latents, ``z ~ N(0, I)``.

    Notes
    -----
    After the synthetic bars case of Ainsworth et al. (2018, ICML, section 5.1), where
    each group (image row) is driven by one latent of its own; here the latents are
    Gaussian, so every rotation of them explains the pixels equally well and only the
    group-sparsity prior can single out the one-latent-per-row solution.
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, size))
    X = np.repeat(z, size, axis=1) + noise * rng.standard_normal((n, size * size))
    groups = np.repeat([f"row{r}" for r in range(size)], size)
    return X, groups, z
