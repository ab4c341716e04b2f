"""Fixtures shared by every test module (factories live in helpers.py)."""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per process, as the workflow's rules run (DESIGN.md): on a small
# machine several threads per process oversubscribe the cores and slow small linear
# algebra several-fold. Set before numpy and torch are first imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from helpers import REAL, write_nwb  # noqa: E402


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
