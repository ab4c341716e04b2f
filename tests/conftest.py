"""Fixtures shared by every test module (factories live in helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REAL, write_nwb


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real recordings in ../shared/data/real (skips when they are absent)."""
    if not REAL.is_dir():
        pytest.skip(f"real recordings not found at {REAL} (set NEUROSEQ_REAL_DATA)")
    return REAL


@pytest.fixture
def nwb_file(tmp_path: Path) -> tuple[Path, dict]:
    """A small seeded NWB file and the truth it was written from."""
    path = tmp_path / "small.nwb"
    return path, write_nwb(path)
