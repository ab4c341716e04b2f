"""The workflow on a real SLURM cluster (localhost, one fake GPU), against a local run.

Run with ``make test-cluster`` (it installs Debian's slurm-wlm and munge when absent, needs
root, and sets NEUROSEQ_TEST_CLUSTER=1); skipped otherwise. One run of the demo workflow
on two short sessions with ``--profile profiles/slurm`` (the profile users get), one local
run of the same config, then:

- every output of the SLURM run equals the local run's (data equal, timestamps aside);
- the torch rule's jobs asked SLURM for a GPU, saw ``CUDA_VISIBLE_DEVICES`` and, with one
  GPU on the node, never ran at the same time; no other job asked for a GPU.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from cluster.localslurm import LocalSlurm, missing_tools
from helpers import REPO
from outputs import differences

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        os.environ.get("NEUROSEQ_TEST_CLUSTER") != "1",
        reason="needs a SLURM cluster on localhost: `make test-cluster`",
    ),
]

BIN = Path(sys.executable).parent
TORCH_RULES = {"decode"}  # rules that train torch models and ask for a GPU


def config(data: Path) -> dict:
    return {
        "gpus": True,
        "analyses": ["psychometric", "decoding"],
        "sessions": {"s1": str(data / "demo_01.nwb"), "s2": str(data / "demo_02.nwb")},
        "ingest": {"behavior": {"groups": {"nose": "head"}}},
        "psychometric": {
            "models": ["psychometric", "inattention"],
            "min_condition_trials": 5,
            "min_trials": 20,
            "n_bootstrap": 10,
            "cv_folds": 2,
        },
        "decoding": {
            "decoders": ["wiener", "gru"],
            "n_folds": 2,
            "lags_s": [0.0, 0.1],
            "gru": {"max_epochs": 3, "d_model": 16},
        },
    }


def snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(env or os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster():
    missing = missing_tools()
    if missing:
        pytest.fail(f"SLURM/munge tools missing: {missing} (make test-cluster installs them)")
    if os.geteuid() != 0:
        pytest.fail("the localhost cluster runs its daemons as root")
    with LocalSlurm(n_gpus=1) as c:
        yield c


def _rule(job: dict) -> str:
    m = re.match(r"rule_(.+?)(?:_wildcards_.*)?$", job.get("Comment", ""))
    return m.group(1) if m else "?"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_workflow_on_slurm_equals_a_local_run_and_gpu_jobs_get_the_gpu(
    cluster: LocalSlurm, tmp_path: Path
):
    data = tmp_path / "data"
    subprocess.run(
        [str(BIN / "neuroseq"), "simulate", "-o", str(data), "-n", "2", "--duration", "90"],
        check=True,
        capture_output=True,
    )
    runs = {}
    for name in ("local", "slurm"):
        (tmp_path / name / "config").mkdir(parents=True)
        (tmp_path / name / "config" / "config.yaml").write_text(yaml.safe_dump(config(data)))
        runs[name] = tmp_path / name

    local = snakemake(runs["local"], "--cores", "2")
    assert local.returncode == 0, local.stdout + local.stderr

    slurm = snakemake(
        runs["slurm"],
        "--profile",
        str(REPO / "profiles" / "slurm"),
        # This cluster has no accounting database and no accounts (see localslurm.py).
        "--slurm-status-command",
        "squeue",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--latency-wait",
        "5",
        env=cluster.env,
    )
    assert slurm.returncode == 0, slurm.stdout[-5000:] + slurm.stderr[-5000:]

    assert differences(runs["local"] / "results", runs["slurm"] / "results") == []

    jobs = [j for j in cluster.jobs() if j.get("Comment", "").startswith("rule_")]
    by_rule: dict[str, list[dict]] = {}
    for job in jobs:
        assert job["JobState"] == "COMPLETED", job
        by_rule.setdefault(_rule(job), []).append(job)
    # Every cluster rule ran under SLURM (the status rules are local by design).
    assert {"ingest", "psychometric", "decode", "session_figures"} <= set(by_rule)
    assert len(by_rule["decode"]) == 2
    for rule, rule_jobs in by_rule.items():
        for job in rule_jobs:
            asks_gpu = "gpu" in job.get("TresPerJob", "")
            assert asks_gpu == (rule in TORCH_RULES), (rule, job.get("TresPerJob"))
    for session in ("s1", "s2"):
        text = (runs["slurm"] / "logs" / "decoding" / f"{session}.log").read_text()
        assert "CUDA_VISIBLE_DEVICES=0;" in text, text[:500]
    local_log = (runs["local"] / "logs" / "decoding" / "s1.log").read_text()
    assert "CUDA_VISIBLE_DEVICES=<unset>" in local_log

    # One GPU: the GPU jobs ran one after the other (SLURM's times, whole seconds) ...
    decode = sorted(by_rule["decode"], key=lambda j: _time(j["StartTime"]))
    first, second = decode
    assert _time(first["EndTime"]) <= _time(second["StartTime"]), (first, second)
    # ... though the second was queued while the first ran (a CPU was free: the node has
    # two and each job takes one), so it was the GPU that kept them apart.
    assert _time(second["SubmitTime"]) < _time(first["EndTime"]), (first, second)
