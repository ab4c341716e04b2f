"""How the workflow scales with the number of sessions: run time, and DAG build time.

Run on demand (never in the test suite)::

    .venv/bin/python benchmarks/scaling.py [--runs 1 2 4 8] [--duration 120] [--dag 10 100 500]

1. Wall time of the demo workflow, ``snakemake --cores 2`` from simulated NWB files to the
   last figure (simulation not timed), for each number of sessions in ``--runs``. The
   sessions are the demo simulator's, ``--duration`` seconds long (12 minutes in the demo;
   shorter here so that the sweep takes minutes), with the demo config's analyses
   (``config/config.yaml``: every analysis; the lapse models take conditions of 5 trials
   or more, as 2-minute sessions have about 80 trials).
2. DAG build time: wall time of ``snakemake -n --quiet`` (Python start, parsing, the DAG,
   the dry-run listing) for configs of ``--dag`` sessions, twice each: from scratch (the
   DAG holds the ingest checkpoints; the rest is planned as they complete) and after
   ingest (every session's status and session.nc in place, so every analysis, figure and
   summary job is planned: about 13 per session).

Each snakemake call runs in a fresh process with one BLAS/torch thread per job.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def snakemake(workdir: Path, *args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return wall


def demo_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.pop("sessions")
    # A 2-minute session has ~80 trials over four conditions: fit the lapse models on
    # conditions of 5 trials or more (the demo asks for 20 in 12-minute sessions).
    config["psychometric"].update(min_trials=20, min_condition_trials=5)
    return config


def run_times(counts: list[int], duration: float, root: Path) -> list[tuple[int, float]]:
    data = root / "data"
    subprocess.run(
        [
            *(str(BIN / "neuroseq"), "simulate", "-o", str(data)),
            *("-n", str(max(counts)), "--duration", str(duration)),
        ],
        check=True,
        capture_output=True,
        env=ENV,
    )
    out = []
    for n in counts:
        workdir = root / f"run{n}"
        (workdir / "config").mkdir(parents=True)
        config = demo_config()
        config["sessions"] = {
            f"demo_{i:02d}": str(data / f"demo_{i:02d}.nwb") for i in range(1, n + 1)
        }
        (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
        wall = snakemake(workdir, "--cores", "2")
        out.append((n, wall))
        print(f"  {n} session(s): {wall:7.1f} s", flush=True)
    return out


def dag_times(counts: list[int], root: Path) -> list[tuple[int, float, float]]:
    # One small real session, ingested once, stands in for every session after ingest.
    sys.path.insert(0, str(REPO / "tests"))
    from helpers import write_nwb

    small = root / "small.nwb"
    write_nwb(small, duration=60.0, n_units=8, n_trials=40)
    stub = root / "stub"
    subprocess.run(
        [
            *(str(BIN / "neuroseq"), "ingest", str(small), "--session", "stub"),
            *("-o", str(stub / "session.nc"), "--status", str(stub / "status.json")),
        ],
        check=True,
        capture_output=True,
        env=ENV,
    )
    status = (stub / "status.json").read_text()
    out = []
    for n in counts:
        workdir = root / f"dag{n}"
        (workdir / "config").mkdir(parents=True)
        (workdir / "data").mkdir()
        sessions = {f"s{i:04d}": f"data/s{i:04d}.nwb" for i in range(n)}
        for path in sessions.values():
            shutil.copy(small, workdir / path)
        (workdir / "config" / "config.yaml").write_text(yaml.safe_dump({"sessions": sessions}))
        scratch = snakemake(workdir, "-n", "--quiet", "rules")
        for session in sessions:
            d = workdir / "results" / "sessions" / session
            d.mkdir(parents=True)
            shutil.copy(stub / "session.nc", d / "session.nc")
            (d / "status.json").write_text(status.replace('"stub"', f'"{session}"'))
        ingested = snakemake(workdir, "-n", "--quiet", "rules")
        out.append((n, scratch, ingested))
        print(f"  {n} sessions: {scratch:5.1f} s from scratch, {ingested:5.1f} s after ingest")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--duration", type=float, default=120.0, help="session length, s")
    parser.add_argument("--dag", type=int, nargs="*", default=[10, 100, 500])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="neuroseq-scaling-") as tmp:
        root = Path(tmp)
        runs = []
        if args.runs:
            print(f"workflow wall time, --cores 2, {args.duration:g}-s demo sessions:")
            runs = run_times(args.runs, args.duration, root)
        dags = []
        if args.dag:
            print("snakemake -n (DAG build) wall time:")
            dags = dag_times(args.dag, root)
    print("\n| sessions | workflow wall (s) | per session (s) |\n|---|---|---|")
    for n, wall in runs:
        print(f"| {n} | {wall:.0f} | {wall / n:.0f} |")
    print("\n| sessions | dry run from scratch (s) | dry run after ingest (s) |\n|---|---|---|")
    for n, scratch, ingested in dags:
        print(f"| {n} | {scratch:.1f} | {ingested:.1f} |")


if __name__ == "__main__":
    main()
