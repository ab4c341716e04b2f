"""Per-session counts, durations and firing rates, stacked along ``session``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from neuroseq.errors import InputError
from neuroseq.io.output import read_dataset


def describe_session(ds: xr.Dataset) -> xr.Dataset:
    """One session's summary (no ``session`` dim yet).

    Parameters
    ----------
    ds : xarray.Dataset
        A session Dataset (schema ``neuroseq.session/1``).

    Returns
    -------
    xarray.Dataset
        The variables of :func:`summarize_sessions` for this session alone.

    Notes
    -----
    ``duration_s`` is the binned time span (``n_bins * bin_size_s``) for sessions with a
    time axis, and the span from the first trial start to the last trial stop for
    trial-only sessions (0 when trials carry no times); ``has_neural`` says which.
    ``firing_rate`` is the mean over the region's units of each unit's spikes / duration.
    A session without a ``condition`` variable counts all its trials under ``"all"``.
    """
    has_time = "time" in ds.dims
    if has_time:
        duration = ds.sizes["time"] * float(ds.attrs["bin_size_s"])
    elif "start_time" in ds:
        duration = float(ds.stop_time.max() - ds.start_time.min())
    else:
        duration = 0.0
    n_trials = ds.sizes.get("trial", 0)
    out = {
        "n_trials": ((), n_trials, {"units": "count"}),
        "n_units": ((), ds.sizes.get("unit", 0), {"units": "count"}),
        "duration_s": ((), duration, {"units": "s"}),
        "has_neural": ((), np.int8(has_time), {"units": "1"}),
        "n_no_response": (
            (),
            int((ds.choice < 0).sum()) if "choice" in ds else 0,
            {"units": "count"},
        ),
    }
    coords: dict[str, object] = {}
    if "condition" in ds:
        names, counts = np.unique(ds.condition.values.astype(str), return_counts=True)
    else:
        names, counts = np.array(["all"]), np.array([n_trials])
    out["trials_per_condition"] = ("condition", counts.astype(np.int64), {"units": "count"})
    coords["condition"] = names
    if "unit" in ds.dims:
        rates = ds.spike_counts.sum("time").values / duration
        regions = ds.unit_region.values.astype(str)
        groups = np.unique(regions)
        out["firing_rate"] = (
            "group",
            [rates[regions == g].mean() for g in groups],
            {"units": "Hz"},
        )
        out["n_units_per_region"] = (
            "group",
            [int((regions == g).sum()) for g in groups],
            {"units": "count"},
        )
        coords["group"] = groups
    else:
        out["firing_rate"] = ("group", np.zeros(0), {"units": "Hz"})
        out["n_units_per_region"] = ("group", np.zeros(0, dtype=np.int64), {"units": "count"})
        coords["group"] = np.array([], dtype=str)
    if "behavior" in ds:
        out["behavior_missing_fraction"] = ((), float(ds.behavior.isnull().mean()), {"units": "1"})
    return xr.Dataset(out, coords=coords)


def stack_sessions(
    parts: Sequence[xr.Dataset], ids: Sequence[str], source: object = "inputs"
) -> xr.Dataset:
    """Concatenate per-session Datasets along a new ``session`` dim (outer join).

    Raises
    ------
    InputError
        When two parts carry the same session id.
    """
    dupes = sorted({i for i in ids if list(ids).count(i) > 1})
    if dupes:
        raise InputError(
            source, "attrs session_id", "one file per session", f"repeated ids {dupes}"
        )
    return xr.concat(
        list(parts),
        dim=xr.DataArray(list(ids), dims="session", name="session"),
        join="outer",
        coords="minimal",
        compat="override",
    )


def summarize_sessions(paths: Sequence[str | Path]) -> xr.Dataset:
    """Summaries of several ``session.nc`` files along ``session``.

    Parameters
    ----------
    paths : sequence of str or pathlib.Path
        ``session.nc`` files (schema ``neuroseq.session/1``), one per session.

    Returns
    -------
    xarray.Dataset
        Along ``session`` (coord: each file's ``attrs["session_id"]``): ``n_trials``,
        ``n_units``, ``n_no_response`` (count), ``duration_s`` (s), ``has_neural`` (1 when
        the session has a time axis, so ``duration_s`` is the binned span; 0 when it is
        the trial span, or 0 without trial times), ``trials_per_condition`` (session,
        condition), ``firing_rate`` (session, group; Hz), ``n_units_per_region``
        (session, group) and, when any session has behaviour,
        ``behavior_missing_fraction`` (NaN for sessions without behaviour).

    Raises
    ------
    InputError
        When two files carry the same session id, or a file is not a session file.

    Notes
    -----
    Regions or conditions absent from a session get 0 trials and 0 units there, and a
    NaN firing rate (no units: no rate), as each variable's ``long_name`` says.
    """
    parts, ids = [], []
    for path in paths:
        ds = read_dataset(path, schema="neuroseq.session/1")
        ids.append(str(ds.attrs["session_id"]))
        parts.append(describe_session(ds))
    ds = stack_sessions(parts, ids, source=", ".join(map(str, paths)))
    for name in ("trials_per_condition", "n_units_per_region"):
        ds[name] = ds[name].fillna(0).astype(np.int64)
        ds[name].attrs.update(units="count", long_name="0 where the session has none")
    ds["trials_per_condition"].attrs["long_name"] += (
        '; trials of sessions without a condition variable count under "all"'
    )
    ds["firing_rate"].attrs.update(
        units="Hz",
        long_name="mean unit rate per region; NaN where the session has no unit in the region",
    )
    if "behavior_missing_fraction" in ds:
        ds["behavior_missing_fraction"].attrs.update(
            units="1",
            long_name="fraction of behaviour bins without a sample; NaN for "
            "sessions without behaviour",
        )
    return ds
