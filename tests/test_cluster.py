"""Cluster conventions that hold without a cluster: the SLURM profile, per-rule resources,
GPU requests, session ids, quoting, status records, the output comparison the cluster and
fault tests rely on. (The run on a real SLURM cluster is tests/cluster, `make test-cluster`.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from helpers import REPO, write_nwb
from neuroseq.cli import main
from neuroseq.config import check_session_id, validate_config
from neuroseq.errors import InputError
from neuroseq.io.output import session_groups
from neuroseq.latent.oivae_data import PARTS, oivae_groups
from neuroseq.status import read_status, status_html, write_status
from outputs import differences

BIN = Path(sys.executable).parent
RULES = REPO / "workflow" / "rules"


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_the_slurm_profile_sets_defaults_and_leaves_partitions_to_the_user():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "profile.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert {"mem_mb", "runtime"} <= set(profile["default-resources"])
    assert profile["rerun-incomplete"] is True
    assert profile["retries"] >= 1
    for rules in RULES.glob("*.smk"):
        text = rules.read_text()
        assert not re.search(r"slurm_(partition|account)|\bpartition\s*=", text), rules


# The rules that train torch models: the only ones that ask for a GPU.
TORCH_RULES = {"decode", "prune", "uae", "nngp", "oivae"}


def _jobs(dry_run: str) -> dict[str, list[dict[str, str]]]:
    """Rule -> the resources of each of its jobs, from `snakemake -n` output."""
    jobs: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", dry_run):
        m = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        res = re.search(r"resources: (.*)", block)
        if m and res:
            pairs = dict(kv.split("=", 1) for kv in res.group(1).split(", "))
            jobs.setdefault(m.group(1), []).append(pairs)
    return jobs


@pytest.mark.workflow
def test_rules_declare_memory_and_time_and_only_torch_rules_ask_for_a_gpu(tmp_path):
    write_nwb(tmp_path / "small.nwb", duration=60.0, n_units=8, n_trials=40)
    config = {"sessions": {"small": "small.nwb"}, "gpus": True}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    # Ingest first: what follows is planned once ingest says what the session holds.
    proc = snakemake(tmp_path, "--cores", "1", "results/sessions/small")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for gpus in (True, False):
        proc = snakemake(tmp_path, "-n", "--config", f"gpus={gpus}")
        assert proc.returncode == 0, proc.stderr
        jobs = _jobs(proc.stdout)
        assert {"psychometric", "session_figures"} | TORCH_RULES - {"oivae"} <= set(jobs)
        for rule, resources in jobs.items():
            for r in resources:
                if rule in ("all", "session_failed", "session_status"):
                    continue
                # Memory and time come from the rule, not the defaults (mem 1000, 60 min
                # in the slurm profile; Snakemake's own default has no runtime).
                assert "mem_mb" in r, (rule, r)
                assert "runtime" in r, (rule, r)
                wants_gpu = r.get("gpu", "0") != "0"
                assert wants_gpu == (gpus and rule in TORCH_RULES), (rule, r)
    # Memory scales with the input: decode's request grows with session.nc's size.
    decode = _jobs(snakemake(tmp_path, "-n").stdout)["decode"][0]
    size_mb = (tmp_path / "results" / "sessions" / "small" / "session.nc").stat().st_size / 1e6
    assert int(decode["mem_mb"]) == int(2000 + 150 * size_mb)
    # The config names the analyses to run; the others get no job.
    config["analyses"] = ["psychometric"]
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    jobs = _jobs(snakemake(tmp_path, "-n").stdout)
    assert "psychometric" in jobs
    assert not jobs.keys() & TORCH_RULES


@pytest.mark.workflow
def test_a_failed_transfer_source_leaves_the_other_sessions_compressed_without_it(tmp_path):
    write_nwb(tmp_path / "small.nwb", duration=60.0, n_units=8, n_trials=40)
    config = {
        "analyses": ["uae"],
        "sessions": {"good": "small.nwb", "source": "missing.nwb"},
        "uae": {"transfer_from": "source"},
    }
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    for session in config["sessions"]:
        proc = snakemake(tmp_path, "--cores", "1", f"results/sessions/{session}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = snakemake(tmp_path, "-n", "-p")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    commands = re.findall(r"Shell command: (neuroseq uae .*)", out)
    assert len(commands) == 1  # the good session's, without the failed source
    assert "results/sessions/good/session.nc" in commands[0]
    assert "--transfer-source" not in commands[0]
    assert "rule session_failed:" in out  # the source's failure still fails its own job


@pytest.mark.parametrize("bad", ["../evil", "a/b", "a..b", ".hidden", "x y", "", "a" * 101])
def test_session_ids_that_could_escape_a_directory_are_refused(bad, tmp_path, capsys):
    with pytest.raises(InputError, match="session id"):
        check_session_id(bad)
    with pytest.raises(InputError, match="config key sessions"):
        validate_config({"sessions": {bad: "x.nwb"}})
    nwb = tmp_path / "small.nwb"
    write_nwb(nwb, duration=5.0, n_units=2, n_trials=3, with_behavior=False)
    out = tmp_path / "out" / "session.nc"
    assert main(["ingest", str(nwb), "--session", bad, "-o", str(out)]) == 2
    assert "session id: expected text matching" in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.nc"))
    assert not (tmp_path.parent / "evil").exists()


def test_a_file_name_that_is_no_safe_id_needs_an_explicit_session(tmp_path, capsys):
    nwb = tmp_path / "my session (2).nwb"
    write_nwb(nwb, duration=5.0, n_units=2, n_trials=3, with_behavior=False)
    out = tmp_path / "session.nc"
    assert main(["ingest", str(nwb), "-o", str(out)]) == 2
    assert "'my session (2)'" in capsys.readouterr().err
    assert main(["ingest", str(nwb), "--session", "my_session_2", "-o", str(out)]) == 0


def test_every_shell_command_quotes_what_comes_from_the_config():
    # Session ids are constrained; paths, URLs and directories are not: every placeholder
    # in a shell command is quoted, except {threads} (an int) and wildcards, which the
    # session-id constraint makes safe (quoted all the same where they appear).
    for rules in RULES.glob("*.smk"):
        for command in re.findall(r'shell:\n((?:\s+".*"\n)+)', rules.read_text()):
            for field in re.findall(r"\{([^}]+)\}", command):
                assert field == "threads" or field.endswith(":q"), (rules.name, field)


def test_status_records_round_trip_and_bad_ones_are_refused(tmp_path):
    err = InputError("a <b>.nwb", "intervals/trials", "a trial table", "none")
    path = write_status(tmp_path / "s.json", session_id="s1", step="ingest", source="x", error=err)
    record = read_status(path)
    assert record["status"] == "failed"
    assert record["error"]["field"] == "intervals/trials"
    page = status_html([record])
    assert "&lt;b&gt;" in page  # escaped
    assert "<b>.nwb" not in page
    ok = read_status(
        write_status(
            tmp_path / "t.json",
            session_id="s2",
            step="ingest",
            source="y",
            contents={"units", "trials"},
        )
    )
    assert ok["status"] == "ok"
    assert ok["contents"] == ["trials", "units"]
    (tmp_path / "bad.json").write_text('{"neuroseq_schema": "other/1"}')
    with pytest.raises(InputError, match=r"neuroseq_schema: expected 'neuroseq\.status/1'"):
        read_status(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match="expected a JSON status record"):
        read_status(tmp_path / "broken.json")


def test_ingest_records_the_groups_so_the_workflow_plans_oivae_without_the_file(tmp_path):
    write_nwb(tmp_path / "small.nwb", duration=30.0, n_units=8, n_trials=10)
    out, status = tmp_path / "s" / "session.nc", tmp_path / "s" / "status.json"
    argv = ["ingest", str(tmp_path / "small.nwb"), "-o", str(out), "--status", str(status)]
    assert main(argv) in (0, None)
    record = read_status(status)
    assert record["groups"] == session_groups(out)
    assert record["groups"]["units"]
    assert record["groups"]["behavior"]
    for parts, exclude in ((PARTS, ()), (["units"], ()), (PARTS, record["groups"]["units"])):
        assert oivae_groups(record["groups"], parts, exclude) == oivae_groups(out, parts, exclude)


def test_the_output_comparison_finds_a_changed_value_and_ignores_timestamps(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "results").mkdir(parents=True)
    ds = xr.Dataset({"x": ("time", np.arange(5.0)), "fit_seconds": ("time", np.ones(5))})
    ds.attrs.update(created="2026-01-01T00:00:00+00:00", seed=0)
    ds.to_netcdf(tmp_path / "a" / "results" / "r.nc", engine="h5netcdf")
    later = ds.copy()
    later.attrs["created"] = "2026-06-01T00:00:00+00:00"
    later["fit_seconds"] = ("time", np.full(5, 2.0))  # wall-clock time: not compared
    later.to_netcdf(tmp_path / "b" / "results" / "r.nc", engine="h5netcdf")
    assert differences(tmp_path / "a" / "results", tmp_path / "b" / "results") == []
    changed = later.copy()
    changed["x"] = ("time", np.array([0.0, 1.0, 2.0, 3.0, 4.5]))
    changed.to_netcdf(tmp_path / "b" / "results" / "r.nc", engine="h5netcdf")
    assert differences(tmp_path / "a" / "results", tmp_path / "b" / "results") == [
        "r.nc: x: values differ"
    ]
    (tmp_path / "b" / "results" / "extra.png").write_bytes(b"png")
    assert (
        "file lists differ"
        in differences(tmp_path / "a" / "results", tmp_path / "b" / "results")[0]
    )


class _Payload:
    """Pickled, it runs ``open(marker, "w")`` when unpickled: what a hostile file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["GRUDecoder", "TransformerDecoder"])
def test_loading_a_decoder_file_never_unpickles_code(name, tmp_path):
    import pickle

    import torch

    import neuroseq.decoding as decoding

    cls = getattr(decoding, name)
    rng = np.random.default_rng(0)
    X, y = rng.poisson(1.0, (400, 5)).astype(float), rng.normal(size=(400, 2))
    est = cls(max_epochs=1, window=8, d_model=8, random_state=0).fit(X, y)
    path = est.save(tmp_path / "decoder.pt")
    cls.load(path)  # the genuine file loads
    marker = tmp_path / "pwned"
    torch.save({"weights": _Payload(marker)}, path)  # same name, hostile content
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        cls.load(path)
    assert not marker.exists()


def test_no_module_unpickles_or_loads_torch_files_unsafely():
    # The real paths are tested above and in tests/io (status and cache index are JSON);
    # this keeps new code from adding an unsafe one.
    for path in (REPO / "src" / "neuroseq").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from) (c?pickle|dill|joblib)\b", text, re.M), path
        for call in re.findall(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in call, path
        assert "allow_pickle=True" not in text, path
        assert not re.search(r"yaml\.(load|unsafe_load)\(", text), path
