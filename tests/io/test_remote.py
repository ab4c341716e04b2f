"""Remote sessions: the real NWB files served over HTTP on 127.0.0.1, read with range requests."""

from __future__ import annotations

import json

import pytest
import xarray as xr

from helpers import CA1_OPTIONS, MTL_OPTIONS, REAL_CA1, REAL_MTL, write_nwb
from neuroseq.cli import main
from neuroseq.errors import InputError
from neuroseq.io import ingest_file, read_dataset
from neuroseq.io.remote import is_url
from rangehttp import RangeServer


@pytest.fixture
def server(real_data):
    with RangeServer(real_data) as srv:
        yield srv


@pytest.mark.parametrize(("path", "options"), [(REAL_CA1, CA1_OPTIONS), (REAL_MTL, MTL_OPTIONS)])
def test_a_url_gives_the_same_session_as_the_local_file(server, tmp_path, path, options):
    local = ingest_file(path, session_id="s", **options)
    remote = ingest_file(
        server.url(path.name), session_id="s", remote={"cache_dir": tmp_path}, **options
    )
    xr.testing.assert_identical(local, remote)
    assert all(r[2] is not None for r in server.requests if r[0] == "GET")  # ranges only


def test_a_subset_travels_far_less_than_the_file_and_a_rerun_reads_the_cache(server, tmp_path):
    # Units and laps only (no behaviour): the spike times (230 kB) and the tables.
    options = {**CA1_OPTIONS, "behavior": {"module": None}}
    local = ingest_file(REAL_CA1, session_id="ca1", **options)
    url = server.url(REAL_CA1.name)
    remote = ingest_file(url, session_id="ca1", remote={"cache_dir": tmp_path}, **options)
    xr.testing.assert_identical(local, remote)
    size = REAL_CA1.stat().st_size
    first = server.bytes_sent
    assert 0 < first < 0.25 * size, (first, size)  # measured: 0.75 MB of 5.2 MB
    # The blocks read are on disk (sparse copy + JSON index, no pickle): a second ingest
    # of the same URL sends nothing.
    server.reset()
    again = ingest_file(url, session_id="ca1", remote={"cache_dir": tmp_path}, **options)
    xr.testing.assert_identical(local, again)
    assert server.bytes_sent == 0
    index = tmp_path / "cache"
    assert json.loads(index.read_text())  # fsspec's index is JSON
    # Without a cache directory nothing is kept: the same bytes travel again.
    ingest_file(url, session_id="ca1", remote={"cache_dir": None}, **options)
    assert server.bytes_sent >= first


def test_the_cli_ingests_a_url_and_records_its_source(server, tmp_path):
    url = server.url(REAL_MTL.name)
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps({"ingest": MTL_OPTIONS, "remote": {"cache_dir": str(tmp_path / "cache")}})
    )
    out = tmp_path / "session.nc"
    assert main(["ingest", url, "-o", str(out), "-c", str(config)]) == 0
    ds = read_dataset(out, "neuroseq.session/1")
    assert ds.attrs["session_id"] == REAL_MTL.stem  # the URL's file name
    assert ds.attrs["source_file"] == url
    assert (tmp_path / "cache").is_dir()


def test_bad_urls_fail_with_the_url_named(server, tmp_path):
    with pytest.raises(InputError, match=r"missing\.nwb: file: expected a file at this URL"):
        ingest_file(server.url("missing.nwb"))
    (tmp_path / "notes.nwb").write_text("not an HDF5 file at all\n" * 10)
    with RangeServer(tmp_path) as other:
        with pytest.raises(InputError, match=r"notes\.nwb: file: expected an NWB 2\.x file"):
            ingest_file(other.url("notes.nwb"))
        # A truncated NWB file behind a URL fails like a local one, with the URL named.
        write_nwb(tmp_path / "whole.nwb")
        data = (tmp_path / "whole.nwb").read_bytes()
        (tmp_path / "cut.nwb").write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError, match=r"cut\.nwb: "):
            ingest_file(other.url("cut.nwb"))
    # Nothing listens on this port any more: a clear error, not a hang.
    with pytest.raises(InputError, match=r"expected a reachable URL"):
        ingest_file(other.url("whole.nwb"))


def test_only_http_and_https_are_urls():
    assert is_url("https://example.org/a.nwb")
    assert is_url("HTTP://example.org/a.nwb")
    assert not is_url("ftp://example.org/a.nwb")
    assert not is_url("data/a.nwb")
