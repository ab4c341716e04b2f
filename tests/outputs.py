"""Compare two results directories file by file: data equal, provenance timestamps aside.

Each directory is a workflow's ``results/``; source paths in the files' provenance are
relative to its parent (the workflow's working directory).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import xarray as xr

#: Attributes that record when a file was made, not what it holds.
TIMESTAMPS = {"created"}
#: Variables that measure wall-clock time (they differ between any two runs). An analysis
#: that records how long it ran adds its variable here.
WALL_CLOCK = {"fit_seconds"}
#: Wall-clock figures inside HTML tables (the decoders' fit time).
WALL_CLOCK_HTML = re.compile(r'<span class="wall-clock">[^<]*</span>')
#: Files that are not outputs (Snakemake's marker inside directory outputs).
IGNORED = {".snakemake_timestamp"}


def result_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in IGNORED
    )


def _nc_differences(a: Path, b: Path, root: Path) -> list[str]:
    out = []
    with xr.open_dataset(a, engine="h5netcdf") as da, xr.open_dataset(b, engine="h5netcdf") as db:
        da, db = da.load(), db.load()
    names_a, names_b = set(da.variables), set(db.variables)
    if names_a != names_b:
        return [f"variables differ: {sorted(names_a ^ names_b)}"]
    for name in sorted(names_a - WALL_CLOCK):
        va, vb = da[name], db[name]
        if va.dims != vb.dims or va.shape != vb.shape:
            out.append(f"{name}: dims {va.dims}{va.shape} vs {vb.dims}{vb.shape}")
            continue
        x, y = va.values, vb.values
        same = (
            np.array_equal(x, y, equal_nan=True) if x.dtype.kind in "fc" else np.array_equal(x, y)
        )
        if not same:
            out.append(f"{name}: values differ")
        if va.attrs != vb.attrs:
            out.append(f"{name}: attrs differ")
    skip = set(TIMESTAMPS)
    # The checksum of a source that is itself an output (session.nc) covers that file's
    # own `created` stamp; its data are compared on their own.
    source = (root.parent / str(da.attrs.get("source_file", ""))).resolve()
    if source.is_relative_to(root.resolve()) and source.is_file():
        skip.add("source_sha256")
    attrs_a = {k: v for k, v in da.attrs.items() if k not in skip}
    attrs_b = {k: v for k, v in db.attrs.items() if k not in skip}
    for key in sorted(set(attrs_a) | set(attrs_b)):
        if not _equal(attrs_a.get(key), attrs_b.get(key)):
            out.append(f"attrs[{key!r}] differs")
    return out


def _equal(x, y) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return np.array_equal(np.asarray(x), np.asarray(y))
    return x == y


def differences(a: Path, b: Path) -> list[str]:
    """What differs between results directories ``a`` and ``b`` (empty: the same)."""
    files_a, files_b = result_files(a), result_files(b)
    if files_a != files_b:
        return [f"file lists differ: {sorted(set(files_a) ^ set(files_b))}"]
    out = []
    for rel in files_a:
        fa, fb = a / rel, b / rel
        if rel.endswith(".nc"):
            out += [f"{rel}: {d}" for d in _nc_differences(fa, fb, a)]
        elif rel.endswith(".json"):
            ja, jb = json.loads(fa.read_text()), json.loads(fb.read_text())
            for j in (ja, jb):
                for key in TIMESTAMPS:
                    j.pop(key, None)
            if ja != jb:
                out.append(f"{rel}: JSON differs")
        elif rel.endswith(".html"):
            ha, hb = (WALL_CLOCK_HTML.sub("", f.read_text()) for f in (fa, fb))
            if ha != hb:
                out.append(f"{rel}: HTML differs (wall-clock figures aside)")
        elif fa.read_bytes() != fb.read_bytes():
            out.append(f"{rel}: bytes differ")
    return out
