"""Ingest and spike binning of a long session: neuroseq against pynapple's TsGroup.count.

Run on demand (never in the test suite)::

    .venv/bin/pip install pynapple          # the peer; benchmark-only
    .venv/bin/python benchmarks/ingest.py [--duration 3600] [--units 300] [--rate 10]

It writes (once, cached) a seeded NWB file with pynwb holding only a Units table: ``units``
units of Poisson spikes, rates lognormal around ``rate`` Hz, over ``duration`` seconds.
Each contender then runs in a fresh Python process, so that its peak memory is its own:

- ``neuroseq bin``: ``neuroseq.io.ingest_nwb`` at ``--bin`` seconds (read + bin);
- ``neuroseq ingest``: the same plus the atomic NetCDF write (the workflow's step);
- ``pynapple count``: ``nap.load_file(path)["units"].count(bin)`` over the same interval
  (wall = load + first count; a second, already compiled count is timed apart).

Peak RSS is read right after the work, before the checks.

Reported: wall time of the work (imports excluded), RSS after imports, peak RSS, and the
increment against the size of the count matrix (bins x units x 4 bytes). Both count
matrices are compared cell by cell.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time
def rss_mb(field="VmRSS"):
    # VmHWM (this process's peak RSS), not getrusage's ru_maxrss: Linux carries ru_maxrss
    # over fork + exec, so a child of a large parent would report the parent's peak.
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
which, path, bin_size, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
import numpy as np
if which.startswith("neuroseq"):
    from neuroseq.io import ingest_nwb, write_dataset
else:
    import pynapple as nap
base = rss_mb()
t0 = time.perf_counter()
if which.startswith("neuroseq"):
    ds = ingest_nwb(path, bin_size_s=bin_size, units={"region": "x"},
                    trials={"table": None}, behavior={"module": None})
    if which == "neuroseq ingest":
        write_dataset(ds, out, schema="neuroseq.session/1", session_id="bench",
                      source_file=None, params={})
    wall = time.perf_counter() - t0
    peak = rss_mb("VmHWM")
    matrix, first = ds.spike_counts.values, float(ds.time[0]) - bin_size / 2
    extra = {}
else:
    units = nap.load_file(path)["units"]
    start = np.floor(min(units[i].t[0] for i in units.keys()) / bin_size) * bin_size
    stop = max(units[i].t[-1] for i in units.keys())
    n = int(np.floor((stop - start) / bin_size)) + 1
    ep = nap.IntervalSet(start=start, end=start + n * bin_size)
    t1 = time.perf_counter()
    counts = units.count(bin_size, ep=ep)  # the first call includes numba's compilation
    cold = time.perf_counter() - t1
    wall = time.perf_counter() - t0
    peak = rss_mb("VmHWM")
    t1 = time.perf_counter()
    units.count(bin_size, ep=ep)
    extra = {"count_cold": cold, "count_warm": time.perf_counter() - t1}
    matrix, first = np.asarray(counts.values), float(start)
# Checks after the measurement, so that they do not count against either contender.
total, per_unit = int(matrix.sum(dtype=np.int64)), matrix.sum(0, dtype=np.int64).tolist()
if which != "neuroseq ingest":
    np.save(out, matrix)
print(json.dumps({"wall": wall, "base": base, "peak": peak, "total": total,
                  "first": first, "shape": list(matrix.shape), "per_unit": per_unit,
                  **extra}))
"""


def make_session(path: Path, duration: float, n_units: int, rate: float, seed: int) -> None:
    from datetime import UTC, datetime

    import pynwb

    rng = np.random.default_rng(seed)
    nwb = pynwb.NWBFile(
        session_description="benchmark",
        identifier=f"bench-{seed}",
        session_start_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    rates = np.exp(rng.normal(np.log(rate), 0.7, n_units))
    for r in rates:
        n = rng.poisson(r * duration)
        nwb.add_unit(spike_times=np.sort(rng.uniform(0, duration, n)))
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def run(which: str, path: Path, bin_size: float, workdir: Path) -> dict:
    out = workdir / ("session.nc" if which == "neuroseq ingest" else f"{which.split()[0]}.npy")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, which, str(path), str(bin_size), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["out"] = out
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=3600.0, help="seconds")
    ap.add_argument("--units", type=int, default=300)
    ap.add_argument("--rate", type=float, default=10.0, help="mean rate, Hz")
    ap.add_argument("--bin", type=float, default=0.01, help="bin size, s")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "neuroseq-bench")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"units_{args.duration:g}s_{args.units}u_{args.rate:g}hz.nwb"
    if not path.exists():
        print(f"writing {path} ...", flush=True)
        make_session(path, args.duration, args.units, args.rate, seed=0)
    print(f"{path.name}: {path.stat().st_size / 1e6:.0f} MB on disk")

    rows = {
        w: run(w, path, args.bin, args.workdir)
        for w in ("neuroseq bin", "neuroseq ingest", "pynapple count")
    }
    ok = {w: r for w, r in rows.items() if "error" not in r}
    shape = next(iter(ok.values()))["shape"]
    output_mb = shape[0] * shape[1] * 4 / 2**20
    print(f"\ncount matrix: {shape[0]:,} bins x {shape[1]} units = {output_mb:.0f} MB as int32")
    print(
        f"{'contender':<16} {'wall s':>8} {'RSS after imports MB':>21} {'peak RSS MB':>12} "
        f"{'increment MB':>13} {'increment / output':>19}"
    )
    for who, r in rows.items():
        if "error" in r:
            print(f"{who:<16} failed: {r['error']}")
            continue
        inc = r["peak"] - r["base"]
        print(
            f"{who:<16} {r['wall']:>8.2f} {r['base']:>21.0f} {r['peak']:>12.0f} "
            f"{inc:>13.0f} {inc / output_mb:>19.2f}"
        )
    nc = args.workdir / "session.nc"
    if nc.exists():
        print(f"session.nc on disk: {nc.stat().st_size / 2**20:.0f} MB (zlib level 1)")
    if "neuroseq bin" in ok and "pynapple count" in ok:
        a, b = ok["neuroseq bin"], ok["pynapple count"]
        same = a["per_unit"] == b["per_unit"] and a["first"] == b["first"]
        ma, mb = np.load(a["out"]), np.load(b["out"])
        n = min(len(ma), len(mb))
        cells = int((ma[:n] != mb[:n]).sum())
        print(
            f"agreement: per-unit totals {'identical' if same else 'DIFFER'}; "
            f"{cells} of {ma[:n].size:,} cells differ; "
            f"neuroseq {a['total']:,} spikes, pynapple {b['total']:,}"
        )
        print(
            f"pynapple: count alone {b['count_cold']:.2f} s on the first call (numba "
            f"compiles), {b['count_warm']:.2f} s on a second; load "
            f"{b['wall'] - b['count_cold']:.2f} s"
        )
        speed = b["wall"] / a["wall"]
        print(
            f"goal 'at least as fast as pynapple': neuroseq bin {speed:.1f}x pynapple's "
            f"speed -> {'met' if speed >= 1 else 'NOT met'}"
        )
    if "neuroseq ingest" in ok:
        inc = ok["neuroseq ingest"]["peak"] - ok["neuroseq ingest"]["base"]
        print(
            f"goal 'peak memory under 2x the output size': ingest + write used "
            f"{inc / output_mb:.2f}x -> {'met' if inc < 2 * output_mb else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
