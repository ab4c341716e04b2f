"""The one writer every step uses: provenance attrs, schema check, atomic NetCDF write."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import neuroseq
from neuroseq import schema as schemas


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def provenance(
    *,
    schema: str,
    session_id: str,
    source_file: str | Path | None,
    params: Mapping[str, Any],
    seed: int | None = None,
) -> dict[str, Any]:
    """Build the provenance attrs DESIGN.md requires of every output file."""
    source = "" if source_file is None else str(source_file)
    return {
        "neuroseq_schema": schema,
        "neuroseq_version": neuroseq.__version__,
        "session_id": session_id,
        "source_file": source,
        "source_sha256": sha256_file(source) if source and Path(source).is_file() else "",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": json.dumps(_jsonable(params), sort_keys=True),
        # NetCDF attrs cannot hold None: -1 means "no randomness was involved".
        "seed": -1 if seed is None else int(seed),
    }


def write_dataset(
    ds: xr.Dataset,
    path: str | Path,
    *,
    schema: str,
    session_id: str,
    source_file: str | Path | None,
    params: Mapping[str, Any],
    seed: int | None = None,
) -> Path:
    """Validate ``ds`` against ``schema`` and write it atomically as NetCDF-4.

    The file is written to a temporary name in the target directory and renamed into place
    only once complete, so a killed job never leaves a file that looks finished; on any
    error the temporary file is removed and the target is left untouched.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    # Encodings read from input files would be reused here: a string label's width taken
    # from the first session read ("uae_random", <U10) would cut a longer one to fit.
    ds = ds.drop_encoding()
    ds.attrs.update(
        provenance(
            schema=schema, session_id=session_id, source_file=source_file, params=params, seed=seed
        )
    )
    schemas.validate(ds, schema)
    with atomic_write(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=_encoding(ds))
    return path


@contextlib.contextmanager
def atomic_write(path: str | Path, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary file beside ``path`` to write; on success move it into place
    (with a normal file's permissions), on any error remove it and leave ``path`` as it was.

    The temporary file is ``.<name>.partial-<random><suffix>`` (the suffix tells writers
    such as matplotlib the format). The ones an earlier write of ``path`` left behind are
    removed first: a job killed outright (SIGKILL, out of memory, a cluster's time limit)
    cannot clean up, the rerun that writes ``path`` again does. Outputs have one writer at
    a time (a workflow runs one job per output), so nothing live is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.partial-"
    for stale in path.parent.glob(f"{glob.escape(prefix)}*{suffix}"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone already once moved into place


def _encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    # Compress the big arrays; zlib level 1 costs little time and shrinks count matrices 5-10x.
    return {
        name: {"zlib": True, "complevel": 1}
        for name, var in ds.data_vars.items()
        if var.dtype.kind in "iuf" and var.size >= 4096
    }


def read_dataset(path: str | Path, schema: str | None = None) -> xr.Dataset:
    """Open a neuroseq NetCDF file, fully loaded, and check it against its schema."""
    from neuroseq.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file", "an existing neuroseq NetCDF file", "no such file")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise InputError(path, "file", "a NetCDF-4 file", f"{type(exc).__name__}: {exc}") from exc
    found = ds.attrs.get("neuroseq_schema")
    if schema is not None and found != schema:
        raise InputError(path, "attrs neuroseq_schema", repr(schema), repr(found))
    return ds


def session_contents(path: str | Path) -> set[str]:
    """What a ``session.nc`` holds: ``choices``, ``units``, ``behavior``, ``trials``.

    The workflow reads this after ingest to schedule only the analyses a session can feed
    (a behaviour-only session gets no decoder, a linear-track session no lapse model).
    """
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        parts = {
            "trials": "trial" in ds.dims,
            "units": "unit" in ds.dims,
            "behavior": "feature" in ds.dims,
            "choices": "stimulus" in ds and "choice" in ds,
        }
    return {name for name, present in parts.items() if present}


def session_groups(session: xr.Dataset | str | Path) -> dict[str, list[str]]:
    """The groups a session offers, in order: ``units`` (brain regions of its units) and
    ``behavior`` (the feature groups, e.g. body parts); empty where a part is absent.

    Ingest records them in the session's status, so that the workflow can plan oi-VAE
    (two groups or more) without opening every ``session.nc``.
    """
    if not isinstance(session, xr.Dataset):
        with xr.open_dataset(session, engine="h5netcdf") as ds:
            return session_groups(ds)
    groups = {"units": [], "behavior": []}
    if "unit" in session.dims:
        groups["units"] = [str(r) for r in dict.fromkeys(session.unit_region.values.astype(str))]
    if "feature" in session.dims:
        found = session.feature_group.values.astype(str)
        groups["behavior"] = [str(g) for g in dict.fromkeys(found)]
    return groups
