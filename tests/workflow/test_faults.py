"""The workflow under faults and bad input, run for real with Snakemake.

- a run killed (SIGKILL, the decode process and Snakemake itself) while torch trains, then
  resumed, leaves nothing that looks finished and is corrupt, and ends with outputs equal
  to those of an uninterrupted run of the same config (so two runs of one config give the
  same data in every output: every output of the resumed run was made anew);
- broken sessions among good ones (a truncated file, a missing file, an absent table) fail
  only their own jobs with a clear message; ``--keep-going`` finishes every other job and
  the summaries; the report builds and says which session failed and why; a session
  whose path holds spaces, quotes and ``$(...)`` is read as it is, and nothing runs it;
  a session given as a URL (a local HTTP server) is streamed and gives the local data.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
import yaml

from helpers import REPO
from neuroseq.io import ingest_file, read_dataset
from neuroseq.status import read_status
from outputs import differences
from rangehttp import RangeServer

pytestmark = pytest.mark.workflow

BIN = Path(sys.executable).parent


def snakemake_argv(workdir: Path, *args: str) -> list[str]:
    return [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]


def env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_argv(workdir, *args), capture_output=True, text=True, env=env(), check=False
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """Two short simulated sessions, shared by the tests of this module."""
    data = tmp_path_factory.mktemp("demo")
    subprocess.run(
        [str(BIN / "neuroseq"), "simulate", "-o", str(data), "-n", "2", "--duration", "90"],
        check=True,
        capture_output=True,
        env=env(),
    )
    return data


ANALYSES = {
    "analyses": ["psychometric", "decoding"],
    "psychometric": {
        "models": ["psychometric"],
        "min_condition_trials": 5,
        "min_trials": 20,
        "n_bootstrap": 10,
        "cv_folds": 2,
    },
}


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in map(int, kids):
            out += [kid, *_children(kid)]
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def test_a_run_killed_while_training_resumes_to_the_outputs_of_an_unbroken_run(demo, tmp_path):
    config = {
        "sessions": {"a": str(demo / "demo_01.nwb")},
        **ANALYSES,
        "decoding": {
            "decoders": ["wiener", "gru"],
            "n_folds": 2,
            "lags_s": [0.0, 0.1],
            "gru": {"max_epochs": 5, "patience": 5, "d_model": 16},
        },
    }
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    for workdir in (whole, broken):
        write_config(workdir, config)

    proc = snakemake(whole, "--cores", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # The same config again, killed as a node failure would kill it: Snakemake and every
    # job it runs (the training among them), SIGKILL, no chance to clean up.
    run = subprocess.Popen(
        snakemake_argv(broken, "--cores", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    log = broken / "logs" / "decoding" / "a.log"
    deadline = time.monotonic() + 300
    while not (log.is_file() and "epoch" in log.read_text()):
        assert run.poll() is None, "the run ended before training started"
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.05)
    tree = _children(run.pid)  # every job running now, the training among them
    assert any("decode" in _cmdline(p) for p in tree), "no decode process found"
    for pid in (run.pid, *tree):
        with contextlib.suppress(ProcessLookupError):  # a job may end on its own meanwhile
            os.kill(pid, signal.SIGKILL)
    run.wait(timeout=30)
    assert "epoch" in log.read_text()
    assert not (broken / "results" / "decoding" / "a.nc").exists()
    # Whatever has a final name is complete and valid (writes are temp file + rename).
    finished = list((broken / "results").rglob("*.nc"))
    assert finished  # ingest and psychometric were done before the kill
    for path in finished:
        ds = read_dataset(path)
        read_dataset(path, schema=ds.attrs["neuroseq_schema"])

    # Resume: release the lock the killed run held, then run again.
    assert snakemake(broken, "--unlock").returncode == 0
    proc = snakemake(broken, "--cores", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\n(local)?rule decode:", proc.stderr)  # the killed job ran again
    # Every output of the resumed run was made anew in its own processes, so this is also
    # the determinism check: two runs of one config, identical data in every output.
    assert differences(whole / "results", broken / "results") == []


def test_broken_sessions_fail_alone_and_the_report_says_why(demo, tmp_path):
    data = tmp_path / "data"
    odd_dir = data / "odd dir"
    odd_dir.mkdir(parents=True)
    # A path a shell would misread (spaces, quotes, a command substitution, a `;`).
    odd = odd_dir / """it's "odd" $(touch PWNED);.nwb"""
    shutil.copy(demo / "demo_02.nwb", odd)
    whole = (demo / "demo_01.nwb").read_bytes()
    (data / "cut.nwb").write_bytes(whole[: len(whole) // 3])
    server = RangeServer(demo)  # "good" is read over HTTP, with range requests
    config = {
        "results_dir": "my results",  # spaces in every output path
        "remote": {"cache_dir": str(tmp_path / "cache")},
        "sessions": {
            "good": server.url("demo_01.nwb"),
            "odd": str(odd),
            "truncated": str(data / "cut.nwb"),
            "missing": str(data / "nowhere.nwb"),
            "no_table": {
                "path": str(demo / "demo_01.nwb"),
                "ingest": {"trials": {"table": "laps"}},
            },
        },
        **ANALYSES,
        "decoding": {"decoders": ["wiener"], "n_folds": 2, "lags_s": [0.0]},
    }
    workdir = tmp_path / "run"
    write_config(workdir, config)

    with server:
        proc = snakemake(workdir, "--cores", "2", "--keep-going")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0  # the run says that something failed ...
    for session, reason in [
        ("truncated", r"cut\.nwb: file: expected (a complete HDF5 file|a readable NWB file)"),
        ("missing", r"nowhere\.nwb: file: expected an existing NWB or CSV file; found no such"),
        ("no_table", r"intervals/laps: expected the trial table named in config"),
    ]:
        # ... names each failed session and why, in its own job ...
        assert re.search(rf"session {session} failed at ingest: .*{reason}", out), session
        status = read_status(workdir / "my results" / "sessions" / session / "status.json")
        assert status["status"] == "failed"
        assert not (workdir / "my results" / "sessions" / session / "session.nc").exists()
        assert not (workdir / "my results" / "figures" / session).exists()
    # Only those sessions' own jobs failed.
    assert re.findall(r"Error in rule (\w+):", out) == ["session_failed"] * 3
    failed = re.findall(r"\n\s+output: my results/failed/(\w+)\n", out)
    assert sorted(set(failed)) == ["missing", "no_table", "truncated"]
    # ... and everything else finished, summaries over the good sessions included.
    results = workdir / "my results"
    for session in ("good", "odd"):
        read_dataset(results / "sessions" / session / "session.nc", "neuroseq.session/1")
        read_dataset(results / "psychometric" / f"{session}.nc", "neuroseq.psychometric/1")
        read_dataset(results / "decoding" / f"{session}.nc", "neuroseq.decoding/1")
        assert (results / "figures" / session / "raster.png").is_file()
    summary = read_dataset(results / "summary" / "sessions.nc")
    assert sorted(summary.session.values.tolist()) == ["good", "odd"]
    assert read_dataset(results / "summary" / "decoding.nc").sizes["session"] == 2
    odd_session = read_dataset(results / "sessions" / "odd" / "session.nc")
    assert odd_session.attrs["source_file"] == str(odd)
    # The session read from a URL holds what the local file gives.
    remote = read_dataset(results / "sessions" / "good" / "session.nc")
    assert remote.attrs["source_file"] == server.url("demo_01.nwb")
    assert 0 < server.bytes_sent <= (demo / "demo_01.nwb").stat().st_size
    local = ingest_file(demo / "demo_01.nwb", session_id="good")
    xr.testing.assert_equal(remote, local)  # data and coords; attrs hold provenance
    assert not list(tmp_path.rglob("PWNED"))
    assert not list(Path.cwd().glob("PWNED"))
    table = (results / "summary" / "status.csv").read_text()
    assert table.count(",failed,") == 3
    assert table.count(",ok,") == 2

    # The report builds, and its status page names the failed sessions and the reasons.
    proc = snakemake(workdir, "--report", "report.html")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (workdir / "report.html").read_text()
    page = (results / "summary" / "status.html").read_text()
    assert "5 sessions, 3 failed" in page
    assert "intervals/laps" in page
    assert "sessions: ingested or failed" in report
    assert _embedded(report, "5 sessions, 3 failed")


def _embedded(report: str, text: str) -> bool:
    """Whether ``text`` is in the report, as is or inside one of its base64 payloads."""
    if text in report:
        return True
    for blob in re.findall(r"base64,([A-Za-z0-9+/=]{40,})", report):
        try:
            if text.encode() in base64.b64decode(blob):
                return True
        except ValueError:
            continue
    return False
