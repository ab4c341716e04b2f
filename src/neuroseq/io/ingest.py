"""NWB file (or CSV trial table) -> the standardized session Dataset (``neuroseq.session/1``).

The NWB file is opened with pynwb and read lazily: spike times are read one block of units
at a time straight from the HDF5 dataset, and no table is converted whole to pandas except
the (small) trial table. A file behind an http(s) URL is read the same way through a file
object that fetches byte ranges (:mod:`neuroseq.io.remote`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import h5py
import numpy as np
import pandas as pd
import pynwb
import xarray as xr

from neuroseq.errors import InputError
from neuroseq.io.binning import TimeGrid, bin_spikes, resample
from neuroseq.io.remote import is_url, open_url
from neuroseq.io.trials import standardize_trials

log = logging.getLogger(__name__)

TRUTH_JSON = "neuroseq_ground_truth"
TRUTH_LATENT = "neuroseq_true_latent"


def ingest_file(
    path: str | Path,
    *,
    session_id: str | None = None,
    remote: Mapping[str, Any] | None = None,
    **options: Any,
) -> xr.Dataset:
    """Ingest an NWB file or a CSV trial table, choosing by the file's suffix.

    Parameters
    ----------
    path : str or Path
        ``.nwb`` (any HDF5 NWB 2.x file) or ``.csv`` (one row per trial), local or an
        ``http(s)://`` URL (a str), which is streamed with range requests.
    session_id : str, optional
        Stored in ``attrs``; default the file's stem.
    remote : mapping, optional
        The config's ``remote`` section (``cache_dir``, ``block_size``) for URLs; default:
        64 KiB ranges, cached in memory only.
    **options
        The config's ``ingest`` section: ``bin_size_s``, ``time_range``, ``units``,
        ``trials``, ``behavior`` (see ``config.schema.yaml``).
    """
    if is_url(path):
        stem = Path(urlsplit(path).path).stem
        if Path(urlsplit(path).path).suffix.lower() in (".csv", ".tsv"):
            with open_url(path, **dict(remote or {})) as fh:
                return ingest_table(
                    fh, session_id=session_id or stem, trials=options.get("trials", {}), name=path
                )
        return ingest_nwb(path, session_id=session_id, remote=remote, **options)
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file", "an existing NWB or CSV file", "no such file")
    if path.suffix.lower() in (".csv", ".tsv"):
        return ingest_table(path, session_id=session_id, trials=options.get("trials", {}))
    return ingest_nwb(path, session_id=session_id, **options)


def ingest_table(
    path: str | Path | IO[bytes],
    *,
    session_id: str | None = None,
    trials: Mapping[str, Any],
    name: str | None = None,
) -> xr.Dataset:
    """A CSV trial table -> a behaviour-only session Dataset (``trial`` dim only).

    ``path`` may be an open binary file; ``name`` (its URL) then names it in errors.
    """
    source = Path(name or path)
    tsv = source.suffix.lower() == ".tsv"
    try:
        table = pd.read_csv(path if hasattr(path, "read") else source, sep="\t" if tsv else ",")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            name or source, "file", "a CSV table with a header row", f"{type(exc).__name__}: {exc}"
        ) from exc
    ds = standardize_trials(
        table, source=name or source, table_name=source.name, **_trial_options(trials)
    )
    ds.attrs.update(session_id=session_id or source.stem)
    return ds


def _trial_options(trials: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "columns",
        "choice_coding",
        "stimulus_coding",
        "stimulus_scale",
        "extra_columns",
        "where",
    )
    from neuroseq.config import validate_config

    filled = validate_config({"ingest": {"trials": dict(trials)}})["ingest"]["trials"]
    return {k: filled[k] for k in keys}


def open_nwb(path: Path) -> pynwb.NWBHDF5IO:
    """Open a local NWB file read-only, turning every way it can fail into an InputError.

    Closing the returned reader closes the file.
    """
    return _nwb_io(_open_h5(path), path)


def _open_h5(path: Path) -> h5py.File:
    if not h5py.is_hdf5(path):
        with open(path, "rb") as fh:
            head = fh.read(8)
        raise InputError(path, "file", "an NWB 2.x file (HDF5)", f"not HDF5 (starts {head!r})")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, "file", "a complete HDF5 file", f"unreadable: {exc}") from exc


def _nwb_io(h5: h5py.File, source: object) -> pynwb.NWBHDF5IO:
    # The caller's h5py.File (a local path or a streamed URL) becomes pynwb's reader,
    # which closes it.
    if h5.attrs.get("nwb_version") is None:
        h5.close()
        raise InputError(
            source,
            "root attribute nwb_version",
            "an NWB file",
            "an HDF5 file without NWB metadata",
        )
    try:
        io = pynwb.NWBHDF5IO(file=h5, mode="r")
        io.read()
    except Exception as exc:  # hdmf raises many types for damaged files
        h5.close()
        raise InputError(
            source, "file", "a readable NWB file", f"{type(exc).__name__}: {exc}"
        ) from exc
    return io


@contextlib.contextmanager
def _open_source(
    source: str | Path, remote: Mapping[str, Any] | None
) -> Iterator[pynwb.NWBHDF5IO]:
    with contextlib.ExitStack() as stack:
        if is_url(source):
            fh = stack.enter_context(open_url(str(source), **dict(remote or {})))
            try:
                h5 = h5py.File(fh, "r")
            except OSError as exc:
                raise InputError(
                    source, "file", "an NWB 2.x file (HDF5)", f"not readable as HDF5: {exc}"
                ) from exc
        else:
            h5 = _open_h5(Path(source))
        stack.callback(h5.close)
        io = _nwb_io(h5, source)
        stack.callback(io.close)
        yield io


def ingest_nwb(
    path: str | Path,
    *,
    session_id: str | None = None,
    bin_size_s: float = 0.02,
    time_range: Sequence[float] | None = None,
    units: Mapping[str, Any] | None = None,
    trials: Mapping[str, Any] | None = None,
    behavior: Mapping[str, Any] | None = None,
    remote: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Read an NWB file into the standardized session Dataset.

    See DESIGN.md ("Data model") for the variables. Spike counts are binned at
    ``bin_size_s`` on a grid that covers every spike, trial and behaviour sample (or
    ``time_range``); behaviour is resampled onto the same bins. ``path`` may be an
    ``http(s)://`` URL (a str): the file is then streamed with range requests
    (``remote``: the config's ``remote`` section, see :func:`neuroseq.io.remote.open_url`),
    and only the parts read here travel.
    """
    from neuroseq.config import validate_config

    path = path if is_url(path) else Path(path)
    name = Path(urlsplit(path).path).stem if is_url(path) else path.stem
    opts = validate_config(
        {
            "ingest": {
                "bin_size_s": bin_size_s,
                "time_range": time_range,
                "units": dict(units or {}),
                "trials": dict(trials or {}),
                "behavior": dict(behavior or {}),
            }
        }
    )["ingest"]
    with warnings.catch_warnings():
        # Older files trigger namespace-version chatter that says nothing about the data.
        warnings.filterwarnings("ignore", module="hdmf")
        warnings.filterwarnings("ignore", module="pynwb")
        with _open_source(path, remote) as io:
            return _ingest_open(io.read(), path, session_id or name, opts)


def _ingest_open(
    nwb: pynwb.NWBFile, path: Path, session_id: str, opts: dict[str, Any]
) -> xr.Dataset:
    trial_ds = _read_trials(nwb, path, opts["trials"])
    series = _read_behavior(nwb, path, opts["behavior"])
    spikes = _units_index(nwb)

    if opts["time_range"] is not None:
        t_min, t_max = map(float, opts["time_range"])
        if not t_max > t_min:
            raise InputError(
                "config",
                "ingest.time_range",
                "[start, stop] with stop > start",
                opts["time_range"],
            )
    else:
        t_min, t_max = _extent(spikes, series, trial_ds, path)
    grid = TimeGrid.covering(
        t_min, t_max, opts["bin_size_s"], include_stop=opts["time_range"] is None
    )

    ds = (
        xr.Dataset(coords={"time": ("time", grid.centres, {"units": "s"})})
        if (spikes is not None or series)
        else xr.Dataset()
    )
    attrs: dict[str, Any] = {"session_id": session_id}
    if "time" in ds.dims:
        attrs["bin_size_s"] = grid.bin_size
        attrs["time_start_s"] = grid.start
    if trial_ds is not None:
        trial_ds, n_dropped = _clip_trials(trial_ds, t_min, t_max, opts["time_range"])
        attrs["n_trials_dropped"] = n_dropped
        ds = ds.merge(trial_ds)
        if "time" in ds.dims:
            ds["trial_index"] = ("time", _trial_index(grid, trial_ds), {"units": "1"})
    elif "time" in ds.dims:
        ds["trial_index"] = ("time", np.full(grid.n_bins, -1, dtype=np.int64), {"units": "1"})
    if spikes is not None:
        ds = ds.merge(_spike_variables(nwb, path, spikes, grid, opts["units"], attrs))
    if series:
        ds = ds.merge(_behavior_variables(series, grid, opts["behavior"]))
        attrs["behavior_repeated_timestamps"] = json.dumps(
            {s["name"]: s["merged_samples"] for s in series if s["merged_samples"]}
        )
    ds = ds.merge(_ground_truth(nwb, grid, attrs) if "time" in ds.dims else xr.Dataset())
    ds.attrs.update(attrs)
    return ds


# ---------------------------------------------------------------- trials


def _read_trials(nwb: pynwb.NWBFile, path: Path, opts: dict[str, Any]) -> xr.Dataset | None:
    name = opts["table"]
    if name is None:
        return None
    table = nwb.trials if name == "trials" else nwb.intervals.get(name) if nwb.intervals else None
    if table is None:
        found = sorted(nwb.intervals) if nwb.intervals else []
        raise InputError(
            path,
            f"intervals/{name}",
            "the trial table named in config ingest.trials.table (null for none)",
            f"interval tables {found}",
        )
    df = table.to_dataframe(index=True)
    df.index = np.asarray(table.id.data[:], dtype=np.int64)
    return standardize_trials(
        df,
        source=path,
        table_name=f"intervals/{name}",
        **{
            k: opts[k]
            for k in (
                "columns",
                "choice_coding",
                "stimulus_coding",
                "stimulus_scale",
                "extra_columns",
                "where",
            )
        },
    )


def _clip_trials(
    trials: xr.Dataset, t_min: float, t_max: float, time_range: Any
) -> tuple[xr.Dataset, int]:
    if time_range is None or "start_time" not in trials:
        return trials, 0
    keep = (trials.start_time >= t_min) & (trials.stop_time <= t_max)
    return trials.isel(trial=keep.values), int((~keep).sum())


def _trial_index(grid: TimeGrid, trials: xr.Dataset) -> np.ndarray:
    out = np.full(grid.n_bins, -1, dtype=np.int64)
    if "start_time" not in trials or "stop_time" not in trials:
        return out
    order = np.argsort(trials.start_time.values, kind="stable")
    starts = trials.start_time.values[order]
    stops = trials.stop_time.values[order]
    centres = grid.centres
    pos = np.searchsorted(starts, centres, side="right") - 1
    inside = (pos >= 0) & (centres < stops[np.clip(pos, 0, None)])
    out[inside] = order[pos[inside]]
    return out


# ---------------------------------------------------------------- units


def _units_index(nwb: pynwb.NWBFile) -> dict[str, Any] | None:
    units = nwb.units
    if units is None or len(units) == 0:
        return None
    return {
        "ids": np.asarray(units.id.data[:], dtype=np.int64),
        "ends": np.asarray(units.spike_times_index.data[:], dtype=np.int64),
        "data": units.spike_times.data,
    }


def _spike_variables(
    nwb: pynwb.NWBFile,
    path: Path,
    spikes: dict[str, Any],
    grid: TimeGrid,
    opts: dict[str, Any],
    attrs: dict[str, Any],
) -> xr.Dataset:
    data = spikes["data"]
    counts = bin_spikes(lambda lo, hi: data[lo:hi], spikes["ends"], grid)
    n_per_unit = np.diff(np.concatenate([[0], spikes["ends"]]))
    silent = spikes["ids"][n_per_unit == 0].tolist()
    if silent:
        log.warning(
            "%s: %d units have no spikes (kept, listed in attrs units_without_spikes): %s",
            path,
            len(silent),
            silent,
        )
    attrs["units_without_spikes"] = json.dumps(silent)
    attrs["spikes_outside_bins"] = int(n_per_unit.sum() - counts.sum(dtype=np.int64))
    regions = _unit_regions(nwb, path, opts)
    return xr.Dataset(
        {"spike_counts": (("time", "unit"), counts, {"units": "count"})},
        coords={"unit": spikes["ids"], "unit_region": ("unit", regions)},
    )


def _unit_regions(nwb: pynwb.NWBFile, path: Path, opts: dict[str, Any]) -> np.ndarray:
    units = nwb.units
    n = len(units)
    if opts["region"] is not None:
        return np.full(n, opts["region"], dtype=object).astype(str)
    column = opts["region_column"]
    if column is not None and column not in units.colnames:
        raise InputError(
            path,
            f"units.{column}",
            "the column named in config ingest.units.region_column",
            f"columns {list(units.colnames)}",
        )
    column = column or ("location" if "location" in units.colnames else None)
    if column is not None:
        return _text(units[column].data[:])
    if "electrodes" in units.colnames:
        rows = _first_rows(units["electrodes"])
        return _text(nwb.electrodes["location"].data[:])[rows]
    if "electrode_group" in units.colnames:
        return np.array([g.location for g in units["electrode_group"].data[:]], dtype=str)
    raise InputError(
        path,
        "units",
        "a region per unit: a units `location` column, an "
        "`electrodes` column linked to the electrodes table, or config "
        "ingest.units.region",
        f"only the columns {list(units.colnames)}",
    )


def _first_rows(column: Any) -> np.ndarray:
    # `electrodes` is a DynamicTableRegion, ragged (behind a VectorIndex) or one row per unit.
    if hasattr(column, "target") and hasattr(column.target, "table"):
        ends = np.asarray(column.data[:], dtype=np.int64)
        flat = np.asarray(column.target.data[:], dtype=np.int64)
        return flat[np.concatenate([[0], ends[:-1]])]
    return np.asarray(column.data[:], dtype=np.int64)


def _text(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=str)


# ---------------------------------------------------------------- behaviour


def _read_behavior(nwb: pynwb.NWBFile, path: Path, opts: dict[str, Any]) -> list[dict[str, Any]]:
    module_name, wanted = opts["module"], opts["series"]
    if module_name is None:
        return []
    module = nwb.processing.get(module_name)
    if module is None:
        if wanted:
            raise InputError(
                path,
                f"processing/{module_name}",
                "the behaviour module named in config ingest.behavior.module",
                f"modules {sorted(nwb.processing)}",
            )
        log.info("%s: no processing/%s module: no behaviour", path, module_name)
        return []
    found = {}
    for interface in module.data_interfaces.values():
        if isinstance(interface, pynwb.TimeSeries):
            found[interface.name] = (f"processing/{module_name}/{interface.name}", interface)
            continue
        # Containers (Position, BehavioralTimeSeries, ...) hold their series in one dict.
        for attr in ("time_series", "spatial_series"):
            for ts in (getattr(interface, attr, None) or {}).values():
                found[ts.name] = (f"processing/{module_name}/{interface.name}/{ts.name}", ts)
    names = list(found) if wanted is None else list(wanted)
    missing = [n for n in names if n not in found]
    if missing:
        raise InputError(
            path,
            f"processing/{module_name}",
            f"time series {missing} (config ingest.behavior.series)",
            f"series {sorted(found)}",
        )
    return [_series(path, *found[n]) for n in names]


def _series(path: Path, where: str, ts: pynwb.TimeSeries) -> dict[str, Any]:
    data = np.asarray(ts.data[:], dtype=float) * ts.conversion + getattr(ts, "offset", 0.0)
    data = data.reshape(data.shape[0], -1)
    if ts.timestamps is not None:
        t = np.asarray(ts.timestamps[:], dtype=float)
    else:
        t = ts.starting_time + np.arange(data.shape[0]) / ts.rate
    if t.shape[0] != data.shape[0]:
        raise InputError(
            path,
            f"{where}/timestamps",
            f"{data.shape[0]} timestamps (one per sample)",
            f"{t.shape[0]}",
        )
    steps = np.diff(t)
    bad = np.flatnonzero(~(steps >= 0))
    if bad.size:
        raise InputError(
            path,
            f"{where}/timestamps",
            "increasing timestamps",
            f"{bad.size} steps back in time or non-finite (first at sample "
            f"{bad[0] + 1}: {float(t[bad[0]])} -> {float(t[bad[0] + 1])})",
        )
    n_merged = int((steps == 0).sum())
    if n_merged:
        # Trackers sometimes stamp two frames with one time: average them (recorded).
        t, data = _merge_repeated(t, data)
    if data.shape[1] == 1:
        cols = [ts.name]
    elif data.shape[1] <= 3:
        cols = [f"{ts.name}_{axis}" for axis in "xyz"[: data.shape[1]]]
    else:
        cols = [f"{ts.name}_{j}" for j in range(data.shape[1])]
    return {
        "name": ts.name,
        "t": t,
        "data": data,
        "features": cols,
        "unit": ts.unit,
        "merged_samples": n_merged,
    }


def _merge_repeated(t: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    times, inverse = np.unique(t, return_inverse=True)
    merged = np.full((times.size, data.shape[1]), np.nan)
    for j in range(data.shape[1]):
        ok = np.isfinite(data[:, j])
        n = np.bincount(inverse[ok], minlength=times.size)
        total = np.bincount(inverse[ok], weights=data[ok, j], minlength=times.size)
        np.divide(total, n, out=merged[:, j], where=n > 0)
    return times, merged


def _behavior_variables(
    series: list[dict[str, Any]], grid: TimeGrid, opts: dict[str, Any]
) -> xr.Dataset:
    blocks, names, groups, units = [], [], [], []
    for s in series:
        blocks.append(resample(s["t"], s["data"], grid, opts["resample"]))
        names += s["features"]
        groups += [opts["groups"].get(s["name"], s["name"])] * len(s["features"])
        units += [s["unit"]] * len(s["features"])
    values = np.concatenate(blocks, axis=1)
    return xr.Dataset(
        {
            "behavior": (("time", "feature"), values, {"units": "per feature: see feature_units"}),
            "behavior_missing": (
                "feature",
                np.isnan(values).sum(0).astype(np.int64),
                {"units": "count", "long_name": "bins with no valid behaviour sample"},
            ),
        },
        coords={
            "feature": np.array(names, dtype=str),
            "feature_group": ("feature", np.array(groups, dtype=str)),
            "feature_units": ("feature", np.array(units, dtype=str)),
        },
    )


# ---------------------------------------------------------------- extent, ground truth


def _extent(spikes, series, trials, path: Path) -> tuple[float, float]:
    lo, hi = [], []
    if spikes is not None and spikes["ends"][-1] > 0:
        data = spikes["data"]
        step = 8_000_000
        for i in range(0, int(spikes["ends"][-1]), step):
            chunk = np.asarray(data[i : i + step], dtype=float)
            lo.append(np.nanmin(chunk))
            hi.append(np.nanmax(chunk))
    for s in series:
        lo.append(s["t"][0])
        hi.append(s["t"][-1])
    if trials is not None and "start_time" in trials:
        lo.append(float(trials.start_time.min()))
        hi.append(float(trials.stop_time.max()))
    if not lo:
        raise InputError(path, "file", "spikes, behaviour or timed trials to bin", "none")
    return float(min(lo)), float(max(hi))


def _ground_truth(nwb: pynwb.NWBFile, grid: TimeGrid, attrs: dict[str, Any]) -> xr.Dataset:
    scratch = nwb.scratch or {}
    if TRUTH_JSON not in scratch:
        return xr.Dataset()
    text = scratch[TRUTH_JSON].data
    text = text[()] if hasattr(text, "shape") and text.shape == () else text
    text = text.decode() if isinstance(text, bytes) else str(text)
    attrs["ground_truth"] = text
    if TRUTH_LATENT not in scratch:
        return xr.Dataset()
    truth = json.loads(text)
    z = np.asarray(scratch[TRUTH_LATENT].data[:], dtype=float)
    t = np.arange(z.shape[0]) * float(truth["latent_dt_s"])
    return xr.Dataset(
        {
            "true_latent": (
                ("time", "latent"),
                resample(t, z, grid),
                {"units": "1", "long_name": "simulator's latent state"},
            )
        },
        coords={"latent": np.arange(z.shape[1])},
    )
