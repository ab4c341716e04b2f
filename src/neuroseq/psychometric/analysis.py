"""Fit every lapse model to one session and compare them: session.nc -> psychometric.nc."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from neuroseq import schema
from neuroseq.errors import InputError
from neuroseq.psychometric.estimator import LapseModel, check_trials
from neuroseq.psychometric.models import MODELS, PARAMS
from neuroseq.summary import stack_sessions

log = logging.getLogger(__name__)

SCHEMA = "neuroseq.psychometric/1"
N_GRID = 101


def fit_lapse_models(
    stimulus,
    choice,
    condition=None,
    reward_left=None,
    reward_right=None,
    *,
    models: Sequence[str] = tuple(MODELS),
    share: Mapping[str, Any] | None = None,
    link: str = "normal",
    n_starts: int = 5,
    n_bootstrap: int = 200,
    cv_folds: int = 5,
    min_trials: int = 30,
    min_condition_trials: int = 20,
    seed: int = 0,
    source: object = "data",
) -> xr.Dataset:
    """Fit, compare and bootstrap every lapse model on one set of trials.

    Parameters
    ----------
    stimulus, choice, condition, reward_left, reward_right : array_like
        One value per trial; choice 1 right, 0 left, -1 no response (left out of the fits
        and counted in ``n_no_response``).
    models : sequence of str
        Models to fit (see :mod:`neuroseq.psychometric.models`).
    share : mapping, optional
        Parameters shared across conditions (see :class:`LapseModel`).
    link, n_starts : see :class:`LapseModel`.
    n_bootstrap : int
        Parametric bootstrap refits per model (CIs and the goodness-of-fit p-value).
    cv_folds : int
        Folds of the cross-validated log-likelihood: trials dealt at random (seeded) within
        each (condition, stimulus) cell, see :func:`stratified_folds`.
    min_trials : int
        Fewer valid trials than this is an error.
    min_condition_trials : int
        Conditions with fewer responded trials are left out of the fits, with a warning,
        and listed in ``attrs["dropped_conditions"]`` (JSON: condition -> trials).
    seed : int
        Seeds the multi-start, the bootstrap and the folds.

    Returns
    -------
    xarray.Dataset
        The variables of schema ``neuroseq.psychometric/1`` (without provenance attrs).
    """
    unknown = sorted(set(models) - set(MODELS))
    if unknown or not models:
        raise InputError(
            source, "psychometric.models", f"names among {sorted(MODELS)}", f"{unknown or 'none'}"
        )
    choice = np.asarray(choice)
    responded = choice >= 0
    s, c, cond, rl, rr = check_trials(
        np.asarray(stimulus, dtype=float)[responded],
        choice[responded],
        None if condition is None else np.asarray(condition)[responded],
        None if reward_left is None else np.asarray(reward_left)[responded],
        None if reward_right is None else np.asarray(reward_right)[responded],
        source=source,
    )
    all_conditions = (
        np.asarray(condition).astype(str) if condition is not None else np.full(choice.size, "all")
    )
    # Conditions too small to fit (e.g. a block of 3 trials) are left out and recorded.
    counts = {k: int(np.sum(cond == k)) for k in sorted(set(all_conditions.tolist()))}
    dropped = {k: n for k, n in counts.items() if n < min_condition_trials}
    if dropped:
        log.warning(
            "%s: conditions with fewer than %d responded trials left out: %s",
            source,
            min_condition_trials,
            dropped,
        )
        keep = ~np.isin(cond, list(dropped))
        s, c, cond, rl, rr = s[keep], c[keep], cond[keep], rl[keep], rr[keep]
    if s.size < max(min_trials, cv_folds):
        raise InputError(
            source,
            "choice",
            f"at least {max(min_trials, cv_folds)} trials with "
            "a response (config psychometric.min_trials) in conditions of at "
            f"least {min_condition_trials}",
            f"{s.size}",
        )
    conditions = sorted(set(cond.tolist()))
    grid = np.linspace(s.min(), s.max(), N_GRID)
    levels = np.unique(s)
    rng = np.random.default_rng(seed)
    folds = stratified_folds(cond, s, cv_folds, rng)

    fits: dict[str, dict[str, Any]] = {}
    for name in models:
        est = LapseModel(name, share=share, link=link, n_starts=n_starts, random_state=seed).fit(
            s, c, cond, rl, rr
        )
        boot = est.bootstrap(n_bootstrap, random_state=seed + 1)
        cv = 0.0
        for k in range(cv_folds):
            train, test = folds != k, folds == k
            part = LapseModel(
                name, share=share, link=link, n_starts=n_starts, random_state=seed
            ).fit(s[train], c[train], cond[train], rl[train], rr[train])
            cv += part.loglik(s[test], c[test], cond[test], rl[test], rr[test])
        curves = np.stack(
            [
                est.predict_proba(
                    grid,
                    np.full(grid.size, cname),
                    *(np.full(grid.size, r) for r in est._rewards[i]),
                )
                for i, cname in enumerate(conditions)
            ]
        )
        deviance = est.deviance()
        fits[name] = {
            "est": est,
            "boot": boot,
            "cv": cv,
            "curve": curves,
            "deviance": deviance,
            "gof_p": float((1 + np.sum(boot["deviance"] >= deviance)) / (1 + n_bootstrap)),
        }

    ds = _to_dataset(
        fits, conditions, levels, grid, s, c, cond, choice, all_conditions, n_bootstrap
    )
    ds.attrs["dropped_conditions"] = json.dumps(dropped)
    return ds


def stratified_folds(
    condition: np.ndarray, stimulus: np.ndarray, n_folds: int, rng: np.random.Generator
) -> np.ndarray:
    """Fold of each trial: random, but dealt round-robin within each (condition, stimulus).

    Every training split then holds nearly all the levels of every condition, so a fold
    never leaves a condition with a single stimulus level to fit.
    """
    _, cell = np.unique(
        np.column_stack([condition.astype(str), stimulus.astype(str)]), axis=0, return_inverse=True
    )
    cell = cell.ravel()
    order = rng.permutation(cell.size)
    order = order[np.argsort(cell[order], kind="stable")]  # shuffled within each cell
    first = np.searchsorted(cell[order], cell[order])  # where each trial's cell starts
    rank = np.arange(cell.size) - first
    start = rng.integers(0, n_folds, cell.max() + 1)  # so small cells do not all start at 0
    folds = np.empty(cell.size, dtype=np.int64)
    folds[order] = (rank + start[cell[order]]) % n_folds
    return folds


def _to_dataset(
    fits, conditions, levels, grid, s, c, cond, choice, all_conditions, n_bootstrap
) -> xr.Dataset:
    names = list(fits)
    shape = (len(names), len(conditions), len(PARAMS))
    params = np.full(shape, np.nan)
    se = np.full(shape, np.nan)
    at_bound = np.zeros(shape, dtype=np.int8)
    ci = np.full((*shape, 2), np.nan)
    free = np.zeros((len(names), len(PARAMS)), dtype=np.int8)
    for m, name in enumerate(names):
        est, boot = fits[name]["est"], fits[name]["boot"]
        for i, cname in enumerate(conditions):
            for j, pname in enumerate(PARAMS):
                params[m, i, j] = est.params_[cname].get(pname, np.nan)
                se[m, i, j] = est.se_[cname].get(pname, np.nan)
                at_bound[m, i, j] = est.at_bound_[cname].get(pname, False)
        free[m] = [p in MODELS[name].free for p in PARAMS]
        belongs = np.isfinite(params[m])
        draws = boot["params"][:, belongs]  # (n_boot, belonging parameters)
        ci[m][belongs] = np.nanpercentile(draws, [2.5, 97.5], axis=0).T
    n_right = np.zeros((len(conditions), levels.size), dtype=np.int64)
    n_trials = np.zeros_like(n_right)
    for i, cname in enumerate(conditions):
        sel = cond == cname
        pos = np.searchsorted(levels, s[sel])
        n_trials[i] = np.bincount(pos, minlength=levels.size)
        n_right[i] = np.bincount(pos, weights=c[sel], minlength=levels.size).astype(np.int64)
    lo, hi = wilson_interval(n_right, n_trials)
    aic = np.array([fits[n]["est"].aic_ for n in names])
    bic = np.array([fits[n]["est"].bic_ for n in names])
    model_coord = {"model": names}
    ds = xr.Dataset(
        {
            "params": (
                ("model", "condition", "param"),
                params,
                {
                    "units": "stimulus units (mu, sigma), reward units (r_L, r_R), 1/reward "
                    "units (beta), probability (the rest)",
                    "long_name": "maximum-likelihood parameters; NaN where a parameter does not "
                    "belong to the model",
                },
            ),
            "params_se": (
                ("model", "condition", "param"),
                se,
                {
                    "units": "as params",
                    "long_name": "standard error from the inverse Hessian "
                    "of the NLL (free parameters only)",
                },
            ),
            "params_ci": (
                ("model", "condition", "param", "bound"),
                ci,
                {
                    "units": "as params",
                    "long_name": f"95% parametric-bootstrap percentile interval "
                    f"({n_bootstrap} refits)",
                },
            ),
            "at_bound": (
                ("model", "condition", "param"),
                at_bound,
                {"units": "1", "long_name": "1 where a free parameter ended on its bound"},
            ),
            "is_free": (
                ("model", "param"),
                free,
                {"units": "1", "long_name": "1 for fitted parameters, 0 for derived ones"},
            ),
            "nll": ("model", [fits[n]["est"].nll_ for n in names], {"units": "nat"}),
            "aic": ("model", aic, {"units": "nat"}),
            "bic": ("model", bic, {"units": "nat"}),
            "delta_aic": ("model", aic - aic.min(), {"units": "nat"}),
            "delta_bic": ("model", bic - bic.min(), {"units": "nat"}),
            "n_params": ("model", [fits[n]["est"].n_params_ for n in names], {"units": "1"}),
            "cv_loglik": (
                "model",
                [fits[n]["cv"] for n in names],
                {"units": "nat", "long_name": "held-out log-likelihood summed over folds"},
            ),
            "deviance": ("model", [fits[n]["deviance"] for n in names], {"units": "nat"}),
            "gof_p": (
                "model",
                [fits[n]["gof_p"] for n in names],
                {"units": "1", "long_name": "parametric-bootstrap p-value of the deviance"},
            ),
            "curve": (
                ("model", "condition", "stimulus_grid"),
                np.stack([fits[n]["curve"] for n in names]),
                {"units": "1", "long_name": "p(right) at the condition's most common rewards"},
            ),
            "n_right": (("condition", "stimulus"), n_right, {"units": "count"}),
            "n_trials": (("condition", "stimulus"), n_trials, {"units": "count"}),
            "p_right_ci": (
                ("condition", "stimulus", "bound"),
                np.stack([lo, hi], -1),
                {"units": "1", "long_name": "95% Wilson interval of the fraction rightward"},
            ),
            "n_no_response": (
                "condition",
                [int(np.sum((all_conditions == cname) & (choice < 0))) for cname in conditions],
                {"units": "count"},
            ),
        },
        coords={
            **model_coord,
            "condition": conditions,
            "param": list(PARAMS),
            "bound": ["lower", "upper"],
            "stimulus": levels,
            "stimulus_grid": grid,
        },
    )
    ds.attrs["winner_aic"] = names[int(np.argmin(aic))]
    ds.attrs["winner_bic"] = names[int(np.argmin(bic))]
    ds.attrs["winner_cv"] = names[int(np.argmax(ds.cv_loglik.values))]
    return ds


def wilson_interval(k: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, ...]:
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def run_psychometric(session: xr.Dataset, source: object = "session", **options) -> xr.Dataset:
    """Fit the lapse models to a session Dataset (schema ``neuroseq.session/1``)."""
    missing = [v for v in ("stimulus", "choice") if v not in session]
    if missing:
        raise InputError(
            source,
            ", ".join(missing),
            "trial variables stimulus and choice (config ingest.trials.columns)",
            "a session without them",
        )
    get = {
        v: session[v].values if v in session else None
        for v in ("condition", "reward_left", "reward_right")
    }
    return fit_lapse_models(
        session.stimulus.values,
        session.choice.values,
        get["condition"],
        get["reward_left"],
        get["reward_right"],
        source=source,
        **options,
    )


SUMMARY_SCHEMA = "neuroseq.summary.psychometric/1"
_SUMMARY_VARS = (
    "params",
    "params_ci",
    "nll",
    "aic",
    "bic",
    "delta_aic",
    "delta_bic",
    "n_params",
    "cv_loglik",
    "gof_p",
)


def summarize_psychometric(results: Sequence[xr.Dataset]) -> xr.Dataset:
    """Stack per-session results along ``session`` (outer join on models and conditions).

    Conditions absent from a session are NaN there. ``winner`` (session) is the model with
    the lowest AIC in each session; ``winner_count`` (model) how many sessions it won.
    """
    ids = [str(r.attrs.get("session_id", i)) for i, r in enumerate(results)]
    parts = [r[list(_SUMMARY_VARS)].drop_attrs(deep=False) for r in results]
    ds = stack_sessions(parts, ids, source="psychometric results")
    winners = [str(ds.model.values[int(np.nanargmin(a))]) for a in ds.aic.values]
    ds["winner"] = ("session", np.array(winners, dtype=str))
    ds["winner_count"] = (
        "model",
        [winners.count(str(m)) for m in ds.model.values],
        {"units": "count"},
    )
    return ds


@schema.register(SUMMARY_SCHEMA)
def _validate_summary(ds: xr.Dataset) -> None:
    schema.require(ds, SUMMARY_SCHEMA, "params", ("session", "model", "condition", "param"), "f")
    schema.require(ds, SUMMARY_SCHEMA, "aic", ("session", "model"), "f")
    schema.require(ds, SUMMARY_SCHEMA, "winner", ("session",), "OU")


@schema.register(SCHEMA)
def _validate(ds: xr.Dataset) -> None:
    for name, dims in [
        ("params", ("model", "condition", "param")),
        ("params_ci", ("model", "condition", "param", "bound")),
        ("curve", ("model", "condition", "stimulus_grid")),
        ("n_right", ("condition", "stimulus")),
        ("n_trials", ("condition", "stimulus")),
    ]:
        schema.require(ds, SCHEMA, name, dims, "iuf")
    for name in ("nll", "aic", "bic", "n_params", "cv_loglik", "deviance", "gof_p"):
        schema.require(ds, SCHEMA, name, ("model",), "iuf")
        if not np.isfinite(ds[name]).all():
            raise schema.SchemaError(f"{SCHEMA}: non-finite {name}")
    for m, model in enumerate(ds.model.values):
        belongs = ds.params.isel(model=m).notnull().any("condition")
        expected = set(MODELS[str(model)].free)
        have = set(ds.param.values[belongs.values].tolist())
        if not expected <= have:
            raise schema.SchemaError(f"{SCHEMA}: {model} lacks {sorted(expected - have)}")
    if not ((ds.curve >= 0) & (ds.curve <= 1)).all():
        raise schema.SchemaError(f"{SCHEMA}: curve outside [0, 1]")
