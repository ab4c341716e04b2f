import json
import logging

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from helpers import (
    CA1_OPTIONS,
    IBL_TRIALS,
    MTL_OPTIONS,
    QUICKPSY_TRIALS,
    REAL_CA1,
    REAL_IBL,
    REAL_IBL_DF,
    REAL_MTL,
    REAL_QUICKPSY,
    write_nwb,
)
from neuroseq import schema
from neuroseq.errors import InputError
from neuroseq.io import ingest_file, read_dataset, write_dataset


def test_spike_counts_match_the_file(nwb_file):
    path, truth = nwb_file
    ds = ingest_file(path)
    edges = ds.attrs["time_start_s"] + np.arange(ds.sizes["time"] + 1) * ds.attrs["bin_size_s"]
    for i, times in enumerate(truth["spikes"]):
        np.testing.assert_array_equal(ds.spike_counts[:, i], np.histogram(times, edges)[0])
    assert ds.unit_region.values.tolist() == truth["regions"]
    assert ds.attrs["spikes_outside_bins"] == 0


def test_trials_are_mapped_and_bins_know_their_trial(nwb_file):
    path, truth = nwb_file
    ds = ingest_file(path)
    np.testing.assert_array_equal(ds.choice, np.asarray(truth["choice"], dtype=np.int8))
    np.testing.assert_allclose(ds.stimulus, np.asarray(truth["stimulus"], dtype=float))
    assert ds.condition.values.tolist() == truth["condition"]
    assert float(ds.reward_right[0]) == 3.0
    centre = ds.time.values
    for k, start in enumerate(truth["starts"]):
        inside = (centre >= start) & (centre < start + 1.0)
        assert (ds.trial_index.values[inside] == k).all()
    outside = ~np.any([(centre >= s) & (centre < s + 1.0) for s in truth["starts"]], axis=0)
    assert (ds.trial_index.values[outside] == -1).all()


def test_behaviour_is_resampled_grouped_and_gaps_kept(nwb_file):
    path, truth = nwb_file
    ds = ingest_file(path, behavior={"groups": {"nose": "head"}})
    assert ds.feature.values.tolist() == ["wheel_velocity", "nose_x", "nose_y"]
    assert ds.feature_group.values.tolist() == ["wheel_velocity", "head", "head"]
    nose_x = ds.behavior.sel(feature="nose_x")
    ok = np.isfinite(nose_x.values)
    # nose_x = 10 * t exactly (1 px a frame at 10 Hz): linear interpolation is exact.
    np.testing.assert_allclose(nose_x.values[ok], 10.0 * ds.time.values[ok], atol=1e-9)
    lost = (ds.time > 0.4) & (ds.time < 0.8)
    assert np.isnan(nose_x.where(lost, drop=True)).all()
    assert int(ds.behavior_missing.sel(feature="nose_x")) == int((~ok).sum())
    # wheel sampled at 100 Hz onto 20 ms bins: each bin is the mean of its two samples.
    w = ds.behavior.sel(feature="wheel_velocity").values
    np.testing.assert_allclose(w[:100], truth["wheel"][:200].reshape(100, 2).mean(1))


def test_units_without_spikes_are_kept_and_recorded(tmp_path, caplog):
    path = tmp_path / "silent.nwb"
    write_nwb(path, n_units=4, silent_units=2)
    with caplog.at_level(logging.WARNING, logger="neuroseq"):
        ds = ingest_file(path)
    assert ds.sizes["unit"] == 6
    assert json.loads(ds.attrs["units_without_spikes"]) == [4, 5]
    assert int(ds.spike_counts[:, 4:].sum()) == 0
    assert "2 units have no spikes" in caplog.text


def test_custom_choice_coding_and_time_range(tmp_path):
    path = tmp_path / "coded.nwb"
    write_nwb(path, n_trials=4, choices=["R", "L", "none", "R"], duration=20.0)
    ds = ingest_file(
        path,
        time_range=[0.0, 10.0],
        trials={"choice_coding": {"right": ["R"], "left": ["L"], "no_response": ["none"]}},
    )
    assert ds.choice.values.tolist() == [1, 0]  # two trials lie after 10 s
    assert ds.attrs["n_trials_dropped"] == 2
    assert float(ds.time[-1]) < 10.0


def test_round_trip_through_netcdf_is_identical(nwb_file, tmp_path):
    path, _ = nwb_file
    ds = ingest_file(path, session_id="s1")
    out = write_dataset(
        ds,
        tmp_path / "session.nc",
        schema="neuroseq.session/1",
        session_id="s1",
        source_file=path,
        params={"bin_size_s": 0.02},
    )
    back = read_dataset(out, schema="neuroseq.session/1")
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())
    for key, value in ds.attrs.items():
        assert back.attrs[key] == value
    assert back.attrs["source_file"] == str(path)
    assert len(back.attrs["source_sha256"]) == 64
    assert json.loads(back.attrs["params"]) == {"bin_size_s": 0.02}


def test_a_rewrite_removes_the_temporary_files_a_killed_write_left(nwb_file, tmp_path):
    """A SIGKILLed job cannot clean up; writing its output again does, and nothing else."""
    import matplotlib.pyplot as plt

    from neuroseq.report.plotting import save_figure

    path, _ = nwb_file
    killed = {  # what writes killed before their rename leave: hidden, never final
        "session": tmp_path / ".session.nc.partial-k1ll3d.tmp",
        "figure": tmp_path / ".raster.png.partial-k1ll3d.png",
    }
    others = [tmp_path / ".session.nc.json.partial-x.tmp", tmp_path / ".rates.png.partial-x.png"]
    for leftover in (*killed.values(), *others):
        leftover.write_bytes(b"half written")
    write_dataset(
        ingest_file(path, session_id="s1"),
        tmp_path / "session.nc",
        schema="neuroseq.session/1",
        session_id="s1",
        source_file=path,
        params={},
    )
    save_figure(plt.figure(), tmp_path / "raster.png")
    assert not any(p.exists() for p in killed.values())
    assert all(p.read_bytes() == b"half written" for p in others)  # other outputs' files
    hidden = {p.name for p in tmp_path.iterdir() if p.name.startswith(".")}
    assert hidden == {p.name for p in others}  # and the new writes left none of their own
    assert (tmp_path / "session.nc").is_file()
    assert (tmp_path / "raster.png").is_file()


# ------------------------------------------------------------------ real recordings


def test_real_ca1_linear_track(real_data):
    ds = ingest_file(REAL_CA1, **CA1_OPTIONS)
    schema_checked(ds)
    assert ds.sizes["unit"] == 31
    assert int(ds.spike_counts.sum()) == 28829  # every spike of the file is binned
    assert ds.sizes["trial"] == 48
    assert set(ds.direction.values) == {"low_to_high", "high_to_low"}
    assert set(ds.feature.values) == {"led_position_x", "led_position_y", "linearized_position"}
    # Tracking is lost during rest: those bins stay NaN and are counted, never filled.
    lin = ds.behavior.sel(feature="linearized_position")
    assert int(ds.behavior_missing.sel(feature="linearized_position")) == int(lin.isnull().sum())
    assert int(lin.isnull().sum()) > 10_000
    # The file stamps two frames with one time once: they are merged, and recorded.
    assert json.loads(ds.attrs["behavior_repeated_timestamps"])["led_position"] == 1
    # Laps are running: most in-lap bins have a position.
    in_lap = ds.trial_index >= 0
    assert float(lin.where(in_lap).notnull().sum() / in_lap.sum()) > 0.95


@pytest.mark.parametrize(
    ("table", "columns", "coding"),
    [
        ("timediscrimination_table", None, None),
        (
            "recognition_table",
            {"stimulus": "old_new", "choice": "resp_value", "condition": "stimuli_type"},
            {"right": [4, 5, 6], "left": [1, 2, 3], "no_response": [7]},
        ),
    ],
)
def test_real_human_mtl_any_interval_table(real_data, table, columns, coding):
    options = json.loads(json.dumps(MTL_OPTIONS))
    options["trials"]["table"] = table
    if columns:
        options["trials"]["columns"].update(columns)
        options["trials"]["choice_coding"] = coding
        options["trials"]["stimulus_coding"] = {0: 0.0, 1: -1.0, 2: 1.0}
    ds = ingest_file(REAL_MTL, **options)
    schema_checked(ds)
    assert ds.sizes == {"time": ds.sizes["time"], "trial": 180, "unit": 35}
    assert set(ds.unit_region.values) == {"hippocampus_right", "amygdala_right"}
    assert int(ds.spike_counts.sum()) == 214278
    assert (ds.trial_index >= 0).sum() > 0


def test_real_ibl_table_codes_minus_one_as_rightward(real_data):
    ds = ingest_file(REAL_IBL, trials={**IBL_TRIALS, "where": {"session_date": "2020-08-21"}})
    schema_checked(ds)
    assert "time" not in ds.dims
    assert ds.sizes["trial"] == 719
    raw = pd.read_csv(REAL_IBL)
    raw = raw[raw.session_date == "2020-08-21"]
    np.testing.assert_array_equal(ds.choice.values == 1, raw.choice.to_numpy() == -1)
    np.testing.assert_array_equal(ds.choice.values == -1, raw.choice.to_numpy() == 0)
    # Mice choose right far more often on strong right contrast: the coding is not flipped.
    strong_right = ds.choice.where(ds.stimulus >= 50).where(ds.choice >= 0)
    assert float(strong_right.mean()) > 0.8


def test_real_ibl_dataframe_and_quickpsy(real_data):
    ibl = ingest_file(
        REAL_IBL_DF,
        trials={
            "columns": {
                "start_time": "goCue_times",
                "stop_time": "feedback_times",
                "stimulus": "signed_contrast",
                "choice": "right_choice",
                "condition": "probabilityLeft",
                "reward_left": None,
                "reward_right": None,
            }
        },
    )
    schema_checked(ibl)
    assert ibl.sizes["trial"] == 500
    qp = ingest_file(REAL_QUICKPSY, trials=QUICKPSY_TRIALS)
    schema_checked(qp)
    assert qp.sizes["trial"] == 1280
    assert set(qp.condition.values) == {"cond1", "cond2"}


def schema_checked(ds):
    ds = ds.copy()
    ds.attrs.update(dict.fromkeys(schema.PROVENANCE, ""), neuroseq_schema="neuroseq.session/1")
    schema.validate(ds)


# ------------------------------------------------------------------ bad input


def test_schema_rejects_a_bad_session(nwb_file):
    path, _ = nwb_file
    ds = ingest_file(path)
    ds["choice"][0] = 3
    with pytest.raises(schema.SchemaError, match="choice outside"):
        schema_checked(ds)


def test_errors_name_file_field_expected_and_found(tmp_path):
    path = tmp_path / "s.nwb"
    write_nwb(path)
    with pytest.raises(InputError) as err:
        ingest_file(path, trials={"columns": {"stimulus": "contrast"}})
    message = str(err.value)
    assert str(path) in message
    assert "intervals/trials.contrast" in message
    assert "expected a column named 'contrast'" in message
    assert "'stimulus'" in message  # what the table does have
