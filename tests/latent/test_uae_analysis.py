"""Compressed sensing of sessions: demo and real recordings, transfer, outputs, bad input."""

import json

import numpy as np
import pytest
import torch
import xarray as xr
import yaml

from helpers import CA1_OPTIONS, REAL_CA1
from neuroseq.cli import main
from neuroseq.errors import InputError
from neuroseq.io import ingest_file, read_dataset, write_dataset
from neuroseq.latent.uae_analysis import (
    SCHEMA,
    population_vectors,
    run_uae,
    summarize_uae,
    transfer_encoders,
)
from neuroseq.simulate import simulate_session

FAST = {"max_epochs": 40, "patience": 8}


@pytest.fixture(autouse=True)
def deterministic_torch():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    yield
    torch.use_deterministic_algorithms(False)


def population(loading, *, seed, n_bins=6000, unit_ids=None, bin_s=0.02):
    """A session of Poisson units driven by a smooth 3-d latent through ``loading``.

    Two calls with one ``loading`` and different seeds are two recordings of the same
    neurons (different latent trajectories and spikes).
    """
    rng = np.random.default_rng(seed)
    z = np.zeros((n_bins, loading.shape[1]))
    for t in range(1, n_bins):
        z[t] = 0.98 * z[t - 1] + 0.2 * rng.standard_normal(loading.shape[1])
    counts = rng.poisson(np.exp(np.log(0.3) + z @ loading.T))
    n_units = loading.shape[0]
    ids = np.arange(n_units) if unit_ids is None else np.asarray(unit_ids)
    return xr.Dataset(
        {"spike_counts": (("time", "unit"), counts, {"units": "count"})},
        coords={
            "time": np.arange(n_bins) * bin_s + bin_s / 2,
            "unit": ids,
            "unit_region": ("unit", np.array(["CA1"] * n_units)),
            "trial_index": ("time", np.full(n_bins, -1)),
        },
        attrs={"bin_size_s": bin_s, "session_id": f"population-{seed}"},
    )


def loading(n_units=30, seed=0):
    return np.random.default_rng(seed).normal(0, 0.8, (n_units, 3))


@pytest.fixture(scope="module")
def demo_session(tmp_path_factory):
    """A 5-minute demo session (60 units in 2 regions), simulated and ingested."""
    path = simulate_session(
        tmp_path_factory.mktemp("uae") / "demo.nwb", index=0, duration_s=300, seed=5
    )
    return ingest_file(path, session_id="demo")


def test_uae_beats_pca_at_every_m_on_a_demo_session(demo_session, tmp_path):
    ds = run_uae(demo_session, methods=["uae", "pca"], n_measurements=[2, 5, 10, 25, 50])
    error = ds.recon_error.mean("fold")
    ratio = error.sel({"method": "uae"}) / error.sel({"method": "pca"})
    # Measured 0.969 / 0.976 / 0.973 / 0.977 / 0.991 (the 12-minute demo sessions: 0.94-0.98)
    assert (ratio < 1).all(), ratio.values
    assert (ds.recon_error < ds.mean_error).all()  # every method beats the mean predictor
    assert ds.attrs["n_units"] == 60
    assert ds.attrs["skipped_n_measurements"] == "[]"
    path = write_dataset(
        ds, tmp_path / "uae.nc", schema=SCHEMA, session_id="demo", source_file=None, params={}
    )
    back = read_dataset(path, schema=SCHEMA)
    xr.testing.assert_allclose(back.recon_error, ds.recon_error)
    assert set(back.unit_region.values) == {"MOs", "VISp"}


def test_transfer_of_an_encoder_between_recordings_of_the_same_neurons():
    """Encoder learnt on one session, decoder re-learnt on another: as good as in-domain.

    The target has 4 units the source never recorded (ids 30-33): they get no weight.
    """
    L = loading(34)
    source = population(L[:30], seed=1)
    target = population(L, seed=2)
    options = dict(n_measurements=[3], n_folds=2, autoencoder=FAST)
    methods = ["uae", "uae_random", "pca"]
    ds = run_uae(target, methods=methods, transfer_source=source, **options)
    error = ds.recon_error.mean("fold").sel(n_measurements=3).to_pandas()
    # Measured: transfer 2.83, in-domain UAE 2.50, PCA 3.97, random encoder 5.16 (with
    # every unit matched, transfer 2.72 against 2.78 in-domain).
    assert error["uae_transfer"] < 0.7 * error["uae_random"]
    assert error["uae_transfer"] < error["pca"]
    assert error["uae_transfer"] < 1.2 * error["uae"]
    assert ds.attrs["transfer_source"] == "population-1"
    assert ds.attrs["transfer_shared_units"] == 30
    assert json.loads(ds.attrs["transfer_unmatched_units"]) == [30, 31, 32, 33]
    # An encoder learnt on unrelated neurons (the same ids) transfers nothing.
    stranger = population(loading(34, seed=9), seed=3)
    control = run_uae(target, methods=["pca"], transfer_source=stranger, **options)
    assert float(control.recon_error.sel({"method": "uae_transfer"}).mean()) > 1.3 * float(
        error["uae_transfer"]
    )


def test_transferred_encoder_gives_unmatched_units_no_weight():
    target_ids = np.array([5, 6, 7, 100])
    source = population(loading(8), seed=1, n_bins=3000)  # ids 0..7
    encoders, info = transfer_encoders(
        source,
        target_ids,
        [2, 9],
        bin_size_s=0.1,
        smooth_s=0.1,
        noise_std=0.01,
        seed=0,
        options={"autoencoder": {"max_epochs": 2}},
    )
    assert set(encoders) == {2}  # m = 9 is not below the source's 8 units
    assert info["skipped_n_measurements"] == [9]
    W = encoders[2]
    assert W.shape == (2, 4)
    np.testing.assert_array_equal(W[:, 3], 0.0)
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 1.0)


def test_population_vectors_sum_counts_and_leave_out_silent_units():
    ds = population(loading(5), seed=4, n_bins=1003)
    counts = ds.spike_counts.values.copy()
    counts[:, 2] = 0
    ds["spike_counts"] = (("time", "unit"), counts, {"units": "count"})
    pv = population_vectors(ds, bin_size_s=0.1, smooth_s=0.0)
    assert pv.bin_size == pytest.approx(0.1)
    assert pv.X.shape == (200, 4)  # 1003 bins of 20 ms -> 200 of 100 ms (3 left over)
    np.testing.assert_array_equal(pv.X.sum(0), counts[:1000][:, [0, 1, 3, 4]].sum(0))
    assert pv.silent_units == [2]
    assert pv.units.tolist() == [0, 1, 3, 4]
    smooth = population_vectors(ds, bin_size_s=0.1, smooth_s=0.2)
    assert smooth.gap == 6  # the kernel reaches 3 sd = 0.6 s
    np.testing.assert_allclose(smooth.X.sum(0), pv.X.sum(0), rtol=0.02)


def test_m_values_not_below_the_number_of_units_are_skipped_and_recorded():
    ds = run_uae(
        population(loading(6), seed=5, n_bins=6000),
        methods=["pca", "lasso"],
        n_measurements=[10, 2, 6],
    )
    assert ds.n_measurements.values.tolist() == [2]
    assert json.loads(ds.attrs["skipped_n_measurements"]) == [6, 10]
    assert np.isfinite(ds.unit_error).all()
    assert np.isnan(ds.lasso_alpha.sel({"method": "pca"})).all()


def test_real_ca1_place_cells_compress_far_better_with_the_uae(real_data):
    """Real rat CA1 (31 units): place-cell activity is sparse, so a nonlinear decoder wins."""
    session = ingest_file(REAL_CA1, **dict(CA1_OPTIONS, bin_size_s=0.1))
    ds = run_uae(
        session,
        methods=["uae", "pca"],
        n_measurements=[5, 10, 50],
        bin_size_s=0.5,
        smooth_s=0.5,
    )
    assert json.loads(ds.attrs["skipped_n_measurements"]) == [50]
    assert ds.attrs["n_units"] == 31
    assert set(ds.unit_region.values) == {"CA1"}
    rel = ds.relative_error.mean("fold")
    # Measured: UAE 0.36 / 0.19, PCA 0.67 / 0.50 of the variance not recovered.
    for m in (5, 10):
        uae, pca = (float(rel.sel({"method": k, "n_measurements": m})) for k in ("uae", "pca"))
        assert uae < 0.7 * pca, (m, uae, pca)


def test_cli_writes_uae_nc_its_figures_and_the_summary(nwb_file, tmp_path):
    path, _ = nwb_file
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "uae": {
                    "n_measurements": [2, 3, 8],
                    "methods": ["uae", "uae_random", "lasso", "lasso_dct", "pca"],
                    "autoencoder": {"max_epochs": 3},
                    "eval_vectors": 30,
                    "block_s": 5,
                }
            }
        )
    )
    session = tmp_path / "session.nc"
    assert main(["ingest", str(path), "-o", str(session), "--session", "small"]) == 0
    out = tmp_path / "uae.nc"
    args = ["uae", str(session), "-o", str(out), "-c", str(config)]
    assert main([*args, "--transfer-source", str(session)]) == 0
    ds = read_dataset(out, schema=SCHEMA)
    assert ds.method.values.tolist()[-1] == "uae_transfer"
    assert ds.n_measurements.values.tolist() == [2, 3]  # 6 units: m = 8 skipped
    assert json.loads(ds.attrs["params"])["n_measurements"] == [2, 3, 8]
    assert (ds.n_test_vectors == 30).all()
    figures = tmp_path / "figures"
    assert main(["uae-figures", str(out), "-o", str(figures)]) == 0
    assert (figures / "uae_error.png").stat().st_size > 10_000
    summary = summarize_uae([ds, ds.assign_attrs(session_id="other")])
    assert summary.session.values.tolist() == ["small", "other"]
    summary_nc = tmp_path / "summary.nc"
    assert main(["summarize", str(out), "-o", str(summary_nc)]) == 0
    assert main(["uae-figures", "--summary", str(summary_nc), "-o", str(figures)]) == 0
    assert (figures / "uae.png").is_file()


def _no_units():
    ds = population(loading(4), seed=0, n_bins=6000)
    return ds.drop_vars(["spike_counts", "unit", "unit_region"])


def _one_active_unit():
    ds = population(loading(3), seed=0, n_bins=6000)
    counts = ds.spike_counts.values.copy()
    counts[:, 1:] = 0
    return ds.assign(spike_counts=(("time", "unit"), counts, {"units": "count"}))


SMALL = population(loading(6), seed=0, n_bins=6000)  # 2 minutes: 4 blocks of 30 s


@pytest.mark.parametrize(
    ("session", "options", "match"),
    [
        (_no_units(), {}, r"spike_counts: expected a session with units; found no units"),
        (_one_active_unit(), {}, r"at least 2 units with spikes.*found 1 of 3"),
        (SMALL, {"n_measurements": [0, 2]}, r"uae.n_measurements: expected a list of integers"),
        (SMALL, {"n_measurements": [-1]}, r"integers > 0; found \[-1\]"),
        (SMALL, {"n_measurements": [6, 7]}, r"more units with spikes than .* found 6 units"),
        (SMALL.isel(time=slice(0, 150)), {"block_s": 1.0}, r"at least 20 population vectors"),
        (SMALL.isel(time=slice(0, 4)), {}, r"time: expected at least 2 bins"),
        (SMALL, {"n_folds": 1}, r"uae.n_folds: expected an integer >= 2"),
        (SMALL, {"split": "trial"}, r"trial_index: expected trials"),
        (SMALL, {"split": "random"}, r"uae.split"),
        (SMALL, {"block_s": 70.0}, r"blocks: expected at least 3 \(config uae.n_folds\); found 2"),
        (SMALL, {"methods": ["uae", "ica"]}, r"uae.methods: expected names among"),
        (SMALL, {"noise_std": -0.1}, r"uae.noise_std: expected a finite number >= 0"),
        (SMALL, {"bin_size_s": 0.0}, r"uae.bin_size_s"),
        (SMALL, {"smooth_s": -1.0}, r"uae.smooth_s"),
        (SMALL, {"methods": ["uae"], "autoencoder": {"depth": 3}}, r"uae.autoencoder"),
        (SMALL, {"methods": ["lasso"], "lasso": {"l1": 1}}, r"uae.lasso"),
        (
            SMALL,
            {"transfer_source": population(loading(6), seed=1, unit_ids=np.arange(50, 56))},
            r"unit: expected units shared with the session \(matched by id\)",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(session, options, match):
    with pytest.raises(InputError, match=match):
        run_uae(session, source="s.nc", **{"n_measurements": [2], **options})
