"""oi-VAE of sessions: recovery of the simulator's map, real recordings, bad input, CLI."""

import json

import numpy as np
import pytest
import torch
import yaml

from helpers import CA1_OPTIONS, IBL_TRIALS, MTL_OPTIONS, REAL_CA1, REAL_IBL, REAL_MTL
from neuroseq.cli import main
from neuroseq.config import load_config
from neuroseq.errors import InputError
from neuroseq.io import ingest_file, read_dataset, write_dataset
from neuroseq.latent.oivae_analysis import (
    SCHEMA,
    SUMMARY_SCHEMA,
    choose_lambda,
    map_recovery,
    run_oivae,
    summarize_oivae,
)
from neuroseq.latent.oivae_data import oivae_data, smooth
from neuroseq.report.oivae import oivae_figures, oivae_summary_figure
from neuroseq.simulate import BEHAVIOR_GROUPS, simulate_session

#: Few epochs: for runs whose numbers are not the point.
QUICK = {"max_epochs": 6, "warmup_epochs": 2, "relax_epochs": 2, "batch_size": 128}


@pytest.fixture(autouse=True)
def deterministic_torch():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    yield
    torch.use_deterministic_algorithms(False)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A 4-minute demo session (2 regions, 4 body parts, 4 true latents) and its file."""
    directory = tmp_path_factory.mktemp("oivae")
    nwb = simulate_session(directory / "sim.nwb", index=0, duration_s=240.0, seed=0)
    options = {"behavior": {"groups": dict(BEHAVIOR_GROUPS)}}
    ds = ingest_file(nwb, session_id="sim", **options)
    path = write_dataset(
        ds,
        directory / "session.nc",
        schema="neuroseq.session/1",
        session_id="sim",
        source_file=nwb,
        params=options,
    )
    return ds, path


def write_result(ds, path):
    return write_dataset(
        ds,
        path,
        schema=SCHEMA,
        session_id=ds.attrs.get("session_id", "s"),
        source_file=None,
        params={},
        seed=0,
    )


def test_recovers_the_simulators_latent_to_group_map(simulated, tmp_path):
    session, _ = simulated
    out = run_oivae(session, lambdas=[0, 3000, 10000], model={"batch_size": 64})
    truth = json.loads(session.attrs["ground_truth"])
    assert list(out.group.values) == [
        *truth["regions"],
        "wheel",
        "left_forelimb",
        "head",
        "right_forelimb",
    ]
    assert float(out.lambda_chosen) > 0  # held-out ELBO prefers a sparse map here
    # The map matches the truth (1 = the same groups in the same relative strength), far
    # above maps whose entries are shuffled within each latent, and above the plain VAE.
    assert float(out.map_recovery) > 0.85
    assert float(out.map_recovery) > float(out.map_recovery_chance) + 0.1
    assert float(out.path_map_recovery.sel(penalty=0)) < float(out.map_recovery)
    assert int(out.active.sum()) < out.sizes["latent"]
    # Matched latents follow the true ones in time, too (not used by the score).
    assert float(out.latent_correlation) > 0.6
    # The true latent private to region 0 is matched to a latent loading on region 0.
    j = int(np.flatnonzero(out.matched_true_latent.values == 0)[0])
    assert out.w_norm.values[j].argmax() == 0
    assert out.attrs["behavior_lag_s"] == pytest.approx(truth["lag_s"], abs=0.05)
    np.testing.assert_array_equal(out.true_map.sum("group") > 0, out.matched_true_latent >= 0)

    path = write_result(out, tmp_path / "oivae.nc")
    back = read_dataset(path, SCHEMA)
    assert back.latents.dims == ("time", "latent")
    assert np.isfinite(back.latents).all()
    assert back.elbo_heldout.values[-1] > back.elbo_heldout.values[0]
    for png in oivae_figures(path, tmp_path / "figures"):
        assert png.stat().st_size > 10_000
    other = out.copy()
    other.attrs["session_id"] = "again"
    summary = summarize_oivae([back, other])
    assert summary.sizes["session"] == 2
    summary_path = write_dataset(
        summary,
        tmp_path / "summary.nc",
        schema=SUMMARY_SCHEMA,
        session_id="all",
        source_file=None,
        params={},
    )
    (png,) = oivae_summary_figure(summary_path, tmp_path / "summary")
    assert png.stat().st_size > 10_000


def test_map_recovery_scores_known_maps():
    truth = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]])
    perfect = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 4.0], [0.0, 1.0, 0.0]])
    score, pairs = map_recovery(truth, perfect, np.array([False, True, True]))
    assert score == pytest.approx(1.0)
    assert sorted((k, j) for k, j, _ in pairs) == [(0, 1), (1, 2)]
    dense = np.ones((3, 3))
    score, _ = map_recovery(truth, dense, np.ones(3, bool))
    assert score == pytest.approx((2 / np.sqrt(6) + 1 / np.sqrt(3)) / 2)
    assert map_recovery(truth, perfect, np.zeros(3, bool))[0] == 0.0


def test_one_standard_error_rule():
    blocks = np.array([[-10.0, -10.2, -9.8], [-9.0, -9.1, -8.9], [-9.2, -8.9, -9.0]])
    assert choose_lambda(blocks, "best")[0] == 1
    assert choose_lambda(blocks, "1se")[0] == 2
    worse = blocks.copy()
    worse[2] -= 0.5  # now clearly below the best
    assert choose_lambda(worse, "1se")[0] == 1


def test_smoothing_never_fills_a_gap():
    values = np.arange(20.0)[:, None]
    values[5:8] = np.nan
    out = smooth(values, 1.0)
    assert np.isnan(out[5:8]).all()
    assert np.isfinite(out[:5]).all()
    assert np.isfinite(out[8:]).all()


def test_real_human_mtl_two_regions(real_data):
    ds = ingest_file(REAL_MTL, **{**MTL_OPTIONS, "time_range": [2200.0, 2800.0]})
    out = run_oivae(ds, n_latents=4, lambdas=[0, 3000], model=QUICK)
    assert set(out.group.values) == {"amygdala_right", "hippocampus_right"}
    assert set(out.group_kind.values) == {"region"}
    assert out.group_size.sum() == 35
    assert np.isfinite(out.recon_r2).all()
    assert out.elbo_heldout.values[-1] > out.elbo_heldout.values[0]
    assert "map_recovery" not in out  # no ground truth in a real file
    assert out.attrs["behavior_lag_s"] == 0.0


def test_real_ca1_with_lost_tracking_masked(real_data, tmp_path):
    ds = ingest_file(REAL_CA1, **{**CA1_OPTIONS, "time_range": [4420.0, 5020.0]})
    data = oivae_data(ds, behavior_lags_s=[0.0])
    missing = np.isnan(data.X).sum(0)
    assert missing.sum() > 0  # the tracker lost the rat in places ...
    out = run_oivae(ds, n_latents=4, lambdas=[0, 1000], behavior_lags_s=[0.0, 0.1], model=QUICK)
    assert list(out.group.values) == ["CA1", "led_position", "linearized_position"]
    assert np.isfinite(out.recon_r2).all()  # ... and those bins are left out, not filled
    assert np.isfinite(out.latents).all()
    write_result(out, tmp_path / "ca1.nc")


def test_cli_writes_a_valid_file_and_bad_input_leaves_none(simulated, tmp_path, capsys):
    _, session_path = simulated
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"oivae": {"lambdas": [1000], "model": QUICK}}))
    out = tmp_path / "oivae.nc"
    assert main(["oivae", str(session_path), "-o", str(out), "-c", str(config)]) == 0
    ds = read_dataset(out, SCHEMA)
    assert json.loads(ds.attrs["params"])["lambdas"] == [1000]
    assert ds.attrs["source_sha256"]
    config.write_text(
        yaml.safe_dump(
            {"oivae": {"exclude_groups": ["MOs", "VISp", "wheel", "head", "left_forelimb"]}}
        )
    )
    bad = tmp_path / "bad.nc"
    assert main(["oivae", str(session_path), "-o", str(bad), "-c", str(config)]) == 2
    assert "expected at least 2 groups" in capsys.readouterr().err
    assert not bad.exists()


def test_config_schema_names_a_bad_oivae_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"oivae": {"select": "max"}}))
    with pytest.raises(InputError, match=r"config key oivae.select: expected one of"):
        load_config(path)
    assert load_config(None)["oivae"]["lambdas"] == [0, 3000, 10000, 30000]


def drop_region_units(ds, region, keep):
    units = ds.unit.values[ds.unit_region.values != region]
    extra = ds.unit.values[ds.unit_region.values == region][:keep]
    return ds.sel(unit=np.sort(np.r_[units, extra]))


@pytest.mark.parametrize(
    ("change", "options", "pattern"),
    [
        (
            lambda ds: ds.drop_vars(
                [
                    "spike_counts",
                    "unit",
                    "unit_region",
                    "behavior",
                    "feature",
                    "feature_group",
                    "feature_units",
                    "behavior_missing",
                ]
            ),
            {},
            r"spike_counts, behavior: expected units or behaviour on a time axis",
        ),
        (
            None,
            {"parts": ["units"], "exclude_groups": ["VISp"]},
            r"expected at least 2 groups \(regions and body parts\).*found \['MOs'\]",
        ),
        (
            lambda ds: ds.isel(time=slice(0, 1000)),
            {},
            r"time: expected at least 200 training bins",
        ),
        (
            lambda ds: drop_region_units(ds, "VISp", 1),
            {},
            r"unit_region: expected at least 2 units with spikes per region.*\{'VISp': 1\}",
        ),
        (None, {"n_latents": 0}, r"oivae.n_latents: expected an int >= 1"),
        (None, {"lambdas": [-1]}, r"oivae.lambdas: expected distinct finite numbers >= 0"),
        (None, {"lambdas": []}, r"oivae.lambdas: expected distinct finite numbers"),
        (None, {"select": "max"}, r"oivae.select: expected one of \['1se', 'best'\]"),
        (None, {"model": {"bogus": 1}}, r"oivae.model: expected keys among"),
        (None, {"model": {"lr": -1.0}}, r"OIVAE lr: expected a finite number > 0"),
        (None, {"exclude_groups": ["nowhere"]}, r"oivae.exclude_groups: expected group names"),
        (None, {"parts": ["eeg"]}, r"oivae.parts: expected a non-empty subset"),
    ],
)
def test_bad_input_is_a_clear_error(simulated, change, options, pattern):
    session, _ = simulated
    ds = change(session) if change else session
    with pytest.raises(InputError, match=pattern):
        run_oivae(ds, **{"model": QUICK, **options})


def test_a_trial_table_session_has_nothing_to_group(real_data):
    ds = ingest_file(REAL_IBL, trials={**IBL_TRIALS, "where": {"session_date": "2020-08-21"}})
    with pytest.raises(InputError, match=r"expected units or behaviour on a time axis"):
        run_oivae(ds)
