"""The Snakemake workflow, run for real: lint, dry run, config errors, a tiny full run."""

from __future__ import annotations

import os
import re
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
    # Decoders: 3 folds, small torch nets for a few epochs, a short permutation null.
    "decoding": {
        "n_folds": 3,
        "lags_s": [0.0, 0.1],
        "n_permutations": 20,
        "gru": {"d_model": 16, "window": 32, "max_epochs": 3},
        "transformer": {"d_model": 16, "window": 32, "max_epochs": 3, "n_layers": 1},
    },
    # Lottery tickets: two rounds, one seed, small nets, one held-out fold, no lag search.
    "pruning": {
        "n_folds": 3,
        "test_folds": 1,
        "lags_s": [0.0],
        "n_rounds": 2,
        "rate": 0.5,
        "n_seeds": 1,
        "mlp": {"hidden": [16, 8], "batch_size": 128, "max_epochs": 4, "patience": 2},
        "transformer": {
            "d_model": 16,
            "n_heads": 2,
            "n_layers": 1,
            "dim_feedforward": 32,
            "window": 32,
            "batch_size": 64,
            "max_epochs": 2,
            "patience": 1,
        },
    },
    # Two minutes a session: few measurements, short training, a transfer source.
    "uae": {
        "n_measurements": [2, 10],
        "eval_vectors": 50,
        "transfer_from": "demo_01",
        "autoencoder": {"max_epochs": 20},
    },
    # ~65 trials a session: small networks, one seed, to keep the test short.
    "nngp": {
        "target": "wheel_velocity",
        "window_s": [0.2, 0.7],
        "n_folds": 3,
        "min_trials": 20,
        "depth": [1, 2],
        "widths": [8, 32],
        "n_seeds": 1,
        "mlp": {"max_epochs": 30},
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


def test_dry_run_of_the_demo_plans_every_step(tmp_path):
    # The demo config in a fresh directory: results of an earlier `make run` in the
    # checkout would leave nothing to plan.
    write_config(tmp_path, yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    proc = snakemake("-n", "--quiet", "rules", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # Everything after ingest is planned once ingest says what each session holds (or
    # that it failed): a dry run from scratch shows the steps up to the checkpoint.
    for rule in ("simulate", "ingest", "all"):
        assert rule in proc.stdout
    assert re.search(r"^ingest\s+3$", proc.stdout, re.M)  # one per demo session


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
        assert 0 <= decoded.choice_balanced_accuracy.mean() <= 1
        weights = results / "decoding" / f"{session}_weights"
        assert (weights / "transformer_fold0.pt").stat().st_size > 1_000
        assert (results / "figures" / session / "decoding_r2.png").is_file()
    assert read_dataset(results / "summary" / "decoding.nc").sizes["session"] == 2
    for session in TINY["sessions"]:
        pruned = read_dataset(results / "pruning" / f"{session}.nc", "neuroseq.pruning/1")
        assert pruned.decoder.values.tolist() == ["mlp", "transformer"]
        assert pruned.sizes["sparsity"] == 3
        assert (results / "figures" / session / "pruning_tickets.png").is_file()
    assert read_dataset(results / "summary" / "pruning.nc").sizes["session"] == 2
    assert (results / "figures" / "summary" / "pruning.png").is_file()
    for session in TINY["sessions"]:
        uae = read_dataset(results / "uae" / f"{session}.nc", "neuroseq.uae/1")
        assert uae.n_measurements.values.tolist() == [2, 10]
        assert (results / "figures" / session / "uae_error.png").is_file()
    methods = ["uae", "uae_random", "lasso", "lasso_dct", "pca"]
    assert uae.method.values.tolist() == [*methods, "uae_transfer"]  # demo_02 <- demo_01
    assert uae.attrs["transfer_source"] == "demo_01"
    assert read_dataset(results / "summary" / "uae.nc").sizes["session"] == 2
    assert (results / "figures" / "summary" / "uae.png").is_file()
    for session in TINY["sessions"]:
        nngp = read_dataset(results / "nngp" / f"{session}.nc", "neuroseq.nngp/1")
        assert nngp.width.values.tolist() == [8, 32]
        assert np.isfinite(float(nngp.nngp_score))
        for name in ("width", "uncertainty"):
            assert (results / "figures" / session / f"nngp_{name}.png").is_file()
    assert read_dataset(results / "summary" / "nngp.nc").sizes["session"] == 2
    assert (results / "figures" / "summary" / "nngp.png").is_file()
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
    assert "Pruning" in html
    assert "Compressed sensing" in html
    assert "NNGP" in html
    assert "oi-VAE" in html
