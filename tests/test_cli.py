"""The `neuroseq` command: every step end to end, and the bad-input table."""

import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from helpers import write_nwb
from neuroseq.cli import main
from neuroseq.io import read_dataset


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neuroseq", *args], capture_output=True, text=True, check=False
    )


def test_python_dash_m_ingest_writes_a_valid_session(nwb_file, tmp_path):
    path, truth = nwb_file
    out = tmp_path / "out" / "session.nc"
    proc = run("ingest", str(path), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    ds = read_dataset(out, schema="neuroseq.session/1")
    assert ds.attrs["session_id"] == "small"
    assert int(ds.spike_counts.sum()) == sum(t.size for t in truth["spikes"])
    assert not list(out.parent.glob(".*.tmp"))  # no temporary file left behind


def test_config_overrides_per_session(nwb_file, tmp_path):
    path, _ = nwb_file
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ingest": {"bin_size_s": 0.05},
                "sessions": {
                    "mouse1": {"path": str(path), "ingest": {"bin_size_s": 0.1}},
                    "mouse2": str(path),
                },
            }
        )
    )
    for session, bin_size in [("mouse1", 0.1), ("mouse2", 0.05)]:
        out = tmp_path / f"{session}.nc"
        assert (
            main(["ingest", str(path), "-o", str(out), "-c", str(config), "--session", session])
            == 0
        )
        ds = read_dataset(out)
        assert ds.attrs["bin_size_s"] == bin_size
        assert ds.attrs["session_id"] == session


def _not_hdf5(tmp_path):
    p = tmp_path / "notes.nwb"
    p.write_text("this is a text file")
    return p, {}


def _hdf5_not_nwb(tmp_path):
    p = tmp_path / "plain.nwb"
    with h5py.File(p, "w") as h5:
        h5["x"] = np.arange(3)
    return p, {}


def _truncated(tmp_path):
    p = tmp_path / "cut.nwb"
    write_nwb(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p, {}


def _small(tmp_path, **kwargs):
    p = tmp_path / "s.nwb"
    write_nwb(p, **kwargs)
    return p


BAD_INPUTS = {
    "missing file": (
        lambda d: (d / "absent.nwb", {}),
        r"absent\.nwb: file: expected an "
        r"existing NWB or CSV file; found no such file",
    ),
    "not HDF5": (
        _not_hdf5,
        r"notes\.nwb: file: expected an NWB 2\.x file \(HDF5\); "
        r"found not HDF5",
    ),
    "HDF5 but not NWB": (
        _hdf5_not_nwb,
        r"plain\.nwb: root attribute nwb_version: expected "
        r"an NWB file; found an HDF5 file without NWB metadata",
    ),
    "truncated NWB": (
        _truncated,
        r"cut\.nwb: file: expected a (complete HDF5|readable NWB) "
        r"file; found",
    ),
    "table absent": (
        lambda d: (_small(d), {"trials": {"table": "choices_table"}}),
        r"s\.nwb: intervals/choices_table: expected the trial table named in "
        r"config ingest\.trials\.table .*found interval tables \['trials'\]",
    ),
    "column absent": (
        lambda d: (_small(d), {"trials": {"columns": {"choice": "response"}}}),
        r"s\.nwb: intervals/trials\.response: expected a column named "
        r"'response'.*found columns \[.*'choice'",
    ),
    "choice outside coding": (
        lambda d: (_small(d, n_trials=3, choices=[1, 0, 7]), {}),
        r"s\.nwb: intervals/trials\.choice: expected choice values in "
        r"the configured coding .*found 1 other values \{'7': 1\}",
    ),
    "non-finite stimulus": (
        lambda d: (_small(d, n_trials=3, stimulus=[1.0, np.nan, 2.0]), {}),
        r"s\.nwb: intervals/trials\.stimulus: expected finite numbers on "
        r"every trial; found 1 non-finite .*row 1",
    ),
    "timestamps going back": (
        lambda d: (_small(d, duration=2.0, wheel_timestamps=np.r_[0:1:0.01, 0.5:1.5:0.01]), {}),
        r"s\.nwb: processing/behavior/BehavioralTimeSeries/wheel_velocity/timestamps: "
        r"expected increasing timestamps; found 1 steps back in time",
    ),
    "config fails the schema": (
        lambda d: (_small(d), {"bin_size_s": -1}),
        r"c.*\.yaml: config key ingest\.bin_size_s: expected a number > 0; found -1",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_a_clear_message_and_no_output(tmp_path, case):
    make, pattern = BAD_INPUTS[case]
    path, ingest = make(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"ingest": ingest}))
    out = tmp_path / "out" / "session.nc"
    proc = run("ingest", str(path), "-o", str(out), "-c", str(config))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("neuroseq ingest: error: "), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # one line, no traceback
    assert re.search(pattern, proc.stderr), proc.stderr
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())
