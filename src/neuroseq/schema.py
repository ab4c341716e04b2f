"""Output schemas: one validator per kind of file, called before every write.

Every Dataset neuroseq writes carries ``attrs["neuroseq_schema"]`` (e.g.
``"neuroseq.session/1"``). :func:`validate` checks the rules that hold for all files (named
dimensions from the fixed vocabulary, units on numeric variables, provenance attributes) and
then the rules of that schema. Analyses register their own validator with :func:`register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import xarray as xr

from neuroseq.errors import SchemaError

#: The fixed vocabulary of dimension names (DESIGN.md), plus the few an analysis declares.
DIMS = frozenset(
    {
        "session",
        "trial",
        "time",
        "unit",
        "feature",
        "condition",
        "stimulus",
        "model",
        "param",
        "fold",
        "decoder",
        "latent",
        "group",
        "n_measurements",
        "width",
        "sparsity",
        "seed",
        "epoch",
        "stimulus_grid",
        "bound",
        "sample",
        "method",
        "init",
        "penalty",
    }
)

PROVENANCE = (
    "neuroseq_schema",
    "neuroseq_version",
    "session_id",
    "source_file",
    "source_sha256",
    "created",
    "params",
    "seed",
)

Validator = Callable[[xr.Dataset], None]
_VALIDATORS: dict[str, Validator] = {}
#: Modules that register the validators of the analyses' schemas when imported.
_PROVIDERS = {
    "neuroseq.psychometric/1": "neuroseq.psychometric.analysis",
    "neuroseq.summary.psychometric/1": "neuroseq.psychometric.analysis",
    "neuroseq.decoding/1": "neuroseq.decoding.evaluate",
    "neuroseq.summary.decoding/1": "neuroseq.decoding.evaluate",
    "neuroseq.pruning/1": "neuroseq.pruning.analysis",
    "neuroseq.summary.pruning/1": "neuroseq.pruning.analysis",
    "neuroseq.uae/1": "neuroseq.latent.uae_analysis",
    "neuroseq.summary.uae/1": "neuroseq.latent.uae_analysis",
    "neuroseq.nngp/1": "neuroseq.nngp.analysis",
    "neuroseq.summary.nngp/1": "neuroseq.nngp.analysis",
    "neuroseq.oivae/1": "neuroseq.latent.oivae_analysis",
    "neuroseq.summary.oivae/1": "neuroseq.latent.oivae_analysis",
}


def register(name: str) -> Callable[[Validator], Validator]:
    """Register ``func`` as the validator of schema ``name`` (e.g. ``"neuroseq.oivae/1"``)."""

    def deco(func: Validator) -> Validator:
        _VALIDATORS[name] = func
        return func

    return deco


def validate(ds: xr.Dataset, schema: str | None = None) -> None:
    """Raise :class:`SchemaError` unless ``ds`` satisfies its schema.

    Parameters
    ----------
    ds : xarray.Dataset
        The Dataset, with provenance attributes already set.
    schema : str, optional
        The schema to check against; default ``ds.attrs["neuroseq_schema"]``.
    """
    schema = schema or ds.attrs.get("neuroseq_schema")
    if schema in _PROVIDERS and schema not in _VALIDATORS:
        importlib.import_module(_PROVIDERS[schema])
    if schema not in _VALIDATORS:
        raise SchemaError(f"unknown schema {schema!r}; known: {sorted(_VALIDATORS)}")
    missing = [k for k in PROVENANCE if k not in ds.attrs]
    _check(not missing, schema, f"provenance attrs missing: {missing}")
    _check(
        ds.attrs["neuroseq_schema"] == schema,
        schema,
        f"attrs neuroseq_schema is {ds.attrs['neuroseq_schema']!r}",
    )
    for name, var in ds.variables.items():
        bad = [d for d in var.dims if d not in DIMS]
        _check(not bad, schema, f"variable {name!r} has dims {bad} outside the vocabulary")
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "iufb":
            _check("units" in var.attrs, schema, f"variable {name!r} has no attrs['units']")
    _VALIDATORS[schema](ds)


def _check(ok: bool, schema: str, message: str) -> None:
    if not ok:
        raise SchemaError(f"{schema}: {message}")


def require(ds: xr.Dataset, schema: str, name: str, dims: tuple[str, ...], kind: str) -> None:
    """Check that ``name`` exists with exactly ``dims`` and a dtype kind in ``kind``."""
    _check(name in ds.variables, schema, f"missing variable {name!r}")
    var = ds[name]
    _check(var.dims == dims, schema, f"{name!r} has dims {var.dims}, expected {dims}")
    _check(
        var.dtype.kind in kind,
        schema,
        f"{name!r} has dtype {var.dtype}, expected kind in {kind!r}",
    )


@register("neuroseq.session/1")
def _validate_session(ds: xr.Dataset) -> None:
    s = "neuroseq.session/1"
    _check(any(d in ds.dims for d in ("trial", "time")), s, "neither a trial nor a time dim")
    if "trial" in ds.dims:
        for name in ("start_time", "stop_time", "stimulus", "reward_left", "reward_right"):
            if name in ds:
                require(ds, s, name, ("trial",), "f")
        if "stimulus" in ds:
            _check(bool(np.isfinite(ds.stimulus).all()), s, "non-finite stimulus")
        if "choice" in ds:
            require(ds, s, "choice", ("trial",), "i")
            _check(bool(np.isin(ds.choice, (-1, 0, 1)).all()), s, "choice outside {-1, 0, 1}")
        if "condition" in ds:
            require(ds, s, "condition", ("trial",), "OU")
    if "time" in ds.dims:
        _check("bin_size_s" in ds.attrs, s, "time dim without attrs bin_size_s")
        t = ds.time.values
        _check(bool(np.all(np.diff(t) > 0)), s, "time is not strictly increasing")
        require(ds, s, "trial_index", ("time",), "i")
    if "unit" in ds.dims:
        require(ds, s, "spike_counts", ("time", "unit"), "iu")
        require(ds, s, "unit_region", ("unit",), "OU")
        _check(bool((ds.spike_counts >= 0).all()), s, "negative spike counts")
    if "feature" in ds.dims:
        require(ds, s, "behavior", ("time", "feature"), "f")
        require(ds, s, "feature_group", ("feature",), "OU")
        require(ds, s, "behavior_missing", ("feature",), "i")


@register("neuroseq.summary.sessions/1")
def _validate_sessions_summary(ds: xr.Dataset) -> None:
    s = "neuroseq.summary.sessions/1"
    for name in ("n_trials", "n_units", "duration_s"):
        require(ds, s, name, ("session",), "iuf")
    require(ds, s, "trials_per_condition", ("session", "condition"), "iu")
    require(ds, s, "firing_rate", ("session", "group"), "f")
