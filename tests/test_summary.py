"""Summaries across sessions, checked against counts computed here from the sessions."""

import numpy as np
import pytest
import xarray as xr

from helpers import CA1_OPTIONS, MTL_OPTIONS, QUICKPSY_TRIALS, REAL_CA1, REAL_MTL, REAL_QUICKPSY
from neuroseq import schema
from neuroseq.errors import InputError
from neuroseq.io import ingest_file, read_dataset, write_dataset
from neuroseq.summary import stack_sessions, summarize_sessions


@pytest.fixture(scope="module")
def sessions(real_data, tmp_path_factory):
    out = {}
    directory = tmp_path_factory.mktemp("sessions")
    for sid, path, options in [
        ("ca1", REAL_CA1, CA1_OPTIONS),
        ("mtl", REAL_MTL, MTL_OPTIONS),
        ("quickpsy", REAL_QUICKPSY, {"trials": QUICKPSY_TRIALS}),
    ]:
        ds = ingest_file(path, session_id=sid, **options)
        out[sid] = write_dataset(
            ds,
            directory / f"{sid}.nc",
            schema="neuroseq.session/1",
            session_id=sid,
            source_file=path,
            params=options,
        )
    return out


def test_summary_matches_the_sessions(sessions, tmp_path):
    summary = summarize_sessions(list(sessions.values()))
    path = write_dataset(
        summary,
        tmp_path / "summary.nc",
        schema="neuroseq.summary.sessions/1",
        session_id="all",
        source_file=None,
        params={},
    )
    summary = read_dataset(path, schema="neuroseq.summary.sessions/1")
    assert summary.session.values.tolist() == ["ca1", "mtl", "quickpsy"]
    assert summary.n_units.values.tolist() == [31, 35, 0]
    assert summary.n_trials.values.tolist() == [48, 180, 1280]
    ca1 = read_dataset(sessions["ca1"])
    duration = ca1.sizes["time"] * ca1.attrs["bin_size_s"]
    assert float(summary.duration_s.sel(session="ca1")) == pytest.approx(duration)
    expected = float((ca1.spike_counts.sum("time") / duration).mean())
    assert float(summary.firing_rate.sel(session="ca1", group="CA1")) == pytest.approx(expected)
    assert np.isnan(summary.firing_rate.sel(session="quickpsy", group="CA1"))
    per_condition = summary.trials_per_condition.sum("condition")
    assert per_condition.values.tolist() == summary.n_trials.values.tolist()
    assert int(summary.trials_per_condition.sel(session="quickpsy", condition="cond1")) == 640
    assert int(summary.n_units_per_region.sel(session="mtl").sum()) == 35
    assert summary.has_neural.values.tolist() == [1, 1, 0]
    assert int(summary.trials_per_condition.sel(session="ca1", condition="all")) == 48
    assert float(summary.duration_s.sel(session="quickpsy")) == 0.0  # no trial times
    mtl = read_dataset(sessions["mtl"])
    amygdala = mtl.spike_counts.sel(unit=mtl.unit_region == "amygdala_right")
    expected = float(amygdala.sum()) / (amygdala.sizes["unit"] * mtl.sizes["time"] * 0.05)
    rate = float(summary.firing_rate.sel(session="mtl", group="amygdala_right"))
    assert rate == pytest.approx(expected)
    assert np.isnan(summary.behavior_missing_fraction.sel(session="quickpsy"))
    for name, var in summary.data_vars.items():
        assert var.attrs["units"] in ("1", "count", "s", "Hz"), name


def test_duplicate_session_ids_are_an_error(sessions):
    with pytest.raises(
        InputError,
        match=r"expected one file per session; found repeated "
        r"ids \['ca1'\]",
    ):
        summarize_sessions([sessions["ca1"], sessions["ca1"]])


@schema.register("test.labels/1")
def _has_error(ds: xr.Dataset) -> None:
    assert "error" in ds


def test_a_stacked_label_longer_than_the_first_sessions_is_written_whole(tmp_path):
    parts = []
    for session, methods in (("a", ["pca", "uae_random"]), ("b", ["pca", "uae_transfer"])):
        error = xr.Variable("method", [1.0, 2.0], attrs={"units": "1"})
        ds = xr.Dataset({"error": error}, coords={"method": methods})
        path = write_dataset(
            ds,
            tmp_path / f"{session}.nc",
            schema="test.labels/1",
            session_id=session,
            source_file=None,
            params={},
        )
        parts.append(read_dataset(path))  # carries the file's encoding (<U10 for "a")
    stacked = stack_sessions(parts, ["a", "b"])
    path = write_dataset(
        stacked,
        tmp_path / "summary.nc",
        schema="test.labels/1",
        session_id="all",
        source_file=None,
        params={},
    )
    labels = read_dataset(path).method.values.tolist()
    assert sorted(labels) == ["pca", "uae_random", "uae_transfer"]
