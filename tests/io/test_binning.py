import numpy as np
import pytest

from neuroseq.io import binning
from neuroseq.io.binning import TimeGrid, bin_spikes, resample


def _ragged(rng, n_units, duration):
    trains = [
        np.sort(rng.uniform(-1.0, duration + 1.0, rng.integers(0, 500))) for _ in range(n_units)
    ]
    ends = np.cumsum([t.size for t in trains])
    return np.concatenate(trains), ends, trains


def test_grid_covers_extent_aligned_to_bins():
    grid = TimeGrid.covering(4397.03, 6379.45, 0.02)
    assert grid.start == pytest.approx(4397.02)
    assert grid.start <= 4397.03
    assert grid.stop > 6379.45
    assert grid.index(np.array([grid.start - 1e-9, grid.stop + 1e-9])).tolist() == [-1, -1]


@pytest.mark.parametrize("block_bytes", [64 * 1024**2, 8 * 1000])
def test_bin_spikes_matches_histogram(monkeypatch, block_bytes):
    monkeypatch.setattr(binning, "_BLOCK_BYTES", block_bytes)  # force many unit blocks
    rng = np.random.default_rng(1)
    flat, ends, trains = _ragged(rng, 23, 30.0)
    grid = TimeGrid(0.0, 0.01, 3000)
    counts = bin_spikes(lambda lo, hi: flat[lo:hi], ends, grid)
    edges = grid.start + np.arange(grid.n_bins + 1) * grid.bin_size
    expected = np.column_stack([np.histogram(t, edges)[0] for t in trains])
    np.testing.assert_array_equal(counts, expected)
    assert counts.dtype == np.int32


def test_bin_spikes_reads_each_block_once():
    rng = np.random.default_rng(2)
    flat, ends, _ = _ragged(rng, 10, 5.0)
    reads = []

    def read(lo, hi):
        reads.append((lo, hi))
        return flat[lo:hi]

    bin_spikes(read, ends, TimeGrid(0.0, 0.1, 50))
    assert reads == [(0, int(ends[-1]))]


def test_resample_linear_is_exact_on_a_line_and_keeps_gaps():
    t = np.arange(0.0, 10.0, 0.05)
    x = np.column_stack([3.0 * t + 1.0])
    x[40:44] = np.nan
    grid = TimeGrid(0.0, 0.1, 100)
    out = resample(t, x, grid, "linear")
    c = grid.centres
    ok = np.isfinite(out[:, 0])
    np.testing.assert_allclose(out[ok, 0], 3.0 * c[ok] + 1.0)
    assert np.isnan(out[(c > 2.0) & (c < 2.15), 0]).all()  # the lost samples stay lost
    assert np.isnan(out[c > t[-1], 0]).all()  # no extrapolation


def test_resample_linear_does_not_bridge_recording_gaps():
    t = np.concatenate([np.arange(0, 5, 0.1), np.arange(8, 10, 0.1)])
    grid = TimeGrid(0.0, 0.1, 100)
    out = resample(t, np.ones((t.size, 1)), grid, "linear")
    c = grid.centres
    assert np.isnan(out[(c > 5.2) & (c < 7.8), 0]).all()
    assert np.isfinite(out[(c > 1) & (c < 4.9), 0]).all()


def test_resample_mean_averages_samples_in_each_bin():
    t = (np.arange(1000) + 0.5) * 0.001  # samples between, never on, bin edges
    x = np.column_stack([t, -t])
    x[:150, 1] = np.nan
    grid = TimeGrid(0.0, 0.1, 10)
    out = resample(t, x, grid)  # auto: sampled faster than the bins -> mean
    np.testing.assert_allclose(out[:, 0], [t[i * 100 : (i + 1) * 100].mean() for i in range(10)])
    assert np.isnan(out[0, 1])  # no valid sample at all in the first bin
    np.testing.assert_allclose(out[1, 1], -t[150:200].mean())
