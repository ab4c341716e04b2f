"""Files behind an http(s) URL, read in place with HTTP range requests.

An NWB file on a web server (a lab's data server, DANDI's S3 buckets) is opened as a
seekable file object: h5py asks for byte ranges, and only the blocks that hold what ingest
reads travel (the HDF5 metadata, the trial table, the spike times of the units read, the
behaviour series kept). Blocks are kept on disk, one sparse file per URL, so that a second
ingest of the same URL reads them locally. This is fsspec's ``blockcache`` file system
over its HTTP file system (aiohttp); its cache index is JSON.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from neuroseq.errors import InputError

log = logging.getLogger(__name__)

URL_SCHEMES = ("http://", "https://")


def is_url(path: object) -> bool:
    """True when ``path`` is an ``http://`` or ``https://`` URL (a str, not a Path)."""
    return isinstance(path, str) and path.lower().startswith(URL_SCHEMES)


def _describe(exc: BaseException) -> tuple[str, str]:
    """(what was expected, what was found) for a failed open, from the exception chain."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for e in chain:
        status = getattr(e, "status", None)
        if isinstance(status, int):
            if status == 404:
                return "a file at this URL", "HTTP 404 (not found)"
            return "a file at this URL", f"HTTP {status} ({getattr(e, 'message', e)})"
    for e in chain:
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError):
            return "a reachable URL", f"cannot connect: {e}"
    return "a reachable URL", f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def open_url(
    url: str, *, cache_dir: str | Path | None = None, block_size: int = 65536
) -> Iterator[IO[bytes]]:
    """Open ``url`` for reading as a seekable binary file that fetches byte ranges.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` URL of a file on a server that honours ``Range``.
    cache_dir : str or Path, optional
        Directory where every block read is kept (a sparse file per URL plus fsspec's
        JSON index); reads of cached blocks do not touch the network. None keeps blocks
        in memory for the life of the file object only.
    block_size : int
        Bytes per range request. HDF5 metadata lies in many small pieces across the
        file, so blocks much larger than 64 KiB fetch bytes nobody asked for.

    Yields
    ------
    file object
        Binary, seekable; give it to ``h5py.File``.

    Raises
    ------
    InputError
        When the URL cannot be reached or answers with an error.
    """
    import fsspec

    if not is_url(url):
        raise InputError(url, "path", "an http:// or https:// URL", repr(url))
    try:
        if cache_dir is None:
            fs = fsspec.filesystem("http")
            handle = fs.open(url, "rb", block_size=block_size, cache_type="blockcache")
        else:
            # blockcache: each block read lands in a sparse local file (mmap) and is
            # recorded in a JSON index in cache_dir; expiry off, so the cache holds
            # until removed; check_files off because HTTP servers give no reliable id.
            fs = fsspec.filesystem(
                "blockcache",
                target_protocol="http",
                cache_storage=str(cache_dir),
                expiry_time=False,
                check_files=False,
            )
            handle = fs.open(url, "rb", block_size=block_size)
    except Exception as exc:  # aiohttp and fsspec raise many types for a bad server
        raise InputError(url, "file", *_describe(exc)) from exc
    log.info(
        "%s: streaming %d bytes in %d-byte ranges (cache: %s)",
        url,
        getattr(handle, "size", -1),
        block_size,
        cache_dir or "memory only",
    )
    with handle:
        yield handle
