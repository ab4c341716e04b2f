"""The Snakemake workflow, run for real: lint, dry run, config errors, a tiny full run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import REPO
from neuroseq.io import read_dataset

pytestmark = pytest.mark.workflow

BIN = Path(sys.executable).parent  # the venv's snakemake and neuroseq


def snakemake(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(cwd), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def write_config(directory: Path, config: dict) -> Path:
    path = directory / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


TINY = {
    "demo": {"n_sessions": 2, "duration_s": 120, "seed": 3},
    "sessions": {"demo_01": "data/demo/demo_01.nwb", "demo_02": "data/demo/demo_02.nwb"},
    "ingest": {"behavior": {"groups": {"nose": "head"}}},
    # ~80 trials a session: fit them all, with few refits, to keep the test short.
    "psychometric": {
        "min_condition_trials": 5,
        "min_trials": 20,
        "n_bootstrap": 20,
        "cv_folds": 3,
        "models": ["psychometric", "exploration"],
    },
    # Two minutes a session: two lambdas and few epochs (the numbers are tested elsewhere).
    "oivae": {
        "lambdas": [0, 1000],
        "model": {"max_epochs": 8, "warmup_epochs": 2, "relax_epochs": 3},
    },
}


def test_lint_passes():
    proc = snakemake("--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dry_run_of_the_demo_plans_every_step():
    proc = snakemake("-n", "--quiet", "rules")
    assert proc.returncode == 0, proc.stderr
    for rule in ("simulate", "ingest", "summarize_sessions", "session_figures", "all"):
        assert rule in proc.stdout
    assert "ingest                    3" in proc.stdout  # one per demo session


def test_a_config_that_fails_the_schema_stops_at_start_naming_the_key(tmp_path):
    write_config(tmp_path, {**TINY, "ingest": {"bin_size_s": -1}})
    proc = snakemake("-n", cwd=tmp_path)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Error validating config file" in out
    assert "['ingest']['bin_size_s']" in out
    write_config(tmp_path, {**TINY, "ingest": {"bin_sizes": 0.01}})
    proc = snakemake("-n", cwd=tmp_path)
    assert proc.returncode != 0
    assert "'bin_sizes' was unexpected" in proc.stdout + proc.stderr


def test_full_run_on_a_tiny_config_and_the_report(tmp_path):
    write_config(tmp_path, TINY)
    proc = snakemake("--cores", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = tmp_path / "results"
    for session in TINY["sessions"]:
        ds = read_dataset(results / "sessions" / session / "session.nc", "neuroseq.session/1")
        assert ds.attrs["session_id"] == session
        assert ds.attrs["source_file"].endswith(f"{session}.nwb")
        assert 50 <= ds.sizes["unit"] <= 150
        assert ds.sizes["trial"] > 10
        groups = {"wheel_velocity", "head", "left_forepaw", "right_forepaw"}
        assert set(ds.feature_group.values) == groups  # config maps nose -> head
        assert "ground_truth" in ds.attrs
        assert np.isfinite(ds.true_latent).all()
        for name in ("raster", "rates", "choices"):
            assert (results / "figures" / session / f"{name}.png").stat().st_size > 5_000
    summary = read_dataset(results / "summary" / "sessions.nc", "neuroseq.summary.sessions/1")
    assert summary.session.values.tolist() == ["demo_01", "demo_02"]
    for session in TINY["sessions"]:
        fit = read_dataset(results / "psychometric" / f"{session}.nc", "neuroseq.psychometric/1")
        assert fit.model.values.tolist() == ["psychometric", "exploration"]
        for name in ("curves", "comparison", "lapses"):
            assert (results / "figures" / session / f"psychometric_{name}.png").is_file()
    for session in TINY["sessions"]:
        decoded = read_dataset(results / "decoding" / f"{session}.nc", "neuroseq.decoding/1")
        assert decoded.decoder.values.tolist() == ["wiener", "kalman", "gru", "transformer"]
        assert "ceiling_r2" in decoded
        assert (results / "figures" / session / "decoding_r2.png").is_file()
    assert read_dataset(results / "summary" / "decoding.nc").sizes["session"] == 2
    for session in TINY["sessions"]:
        latent = read_dataset(results / "oivae" / f"{session}.nc", "neuroseq.oivae/1")
        assert latent.penalty.values.tolist() == [0, 1000]
        assert "map_recovery" in latent
        for name in ("map", "elbo", "recon"):
            assert (results / "figures" / session / f"oivae_{name}.png").is_file()
    assert read_dataset(results / "summary" / "oivae.nc").sizes["session"] == 2
    lapses = read_dataset(results / "summary" / "psychometric.nc")
    assert lapses.session.values.tolist() == ["demo_01", "demo_02"]
    # Nothing to do on a second run: outputs are complete and up to date.
    proc = snakemake("--cores", "2", "-n", cwd=tmp_path)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    proc = snakemake("--report", "results/report.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    html = (results / "report.html").read_text()
    assert "raster" in html
    assert "demo_02" in html
    assert "Psychometric" in html
    assert "Decoding" in html
    assert "oi-VAE" in html
