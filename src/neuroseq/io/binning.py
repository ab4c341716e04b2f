"""Spike binning and behaviour resampling onto one regular time grid, vectorised."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Bound on the temporary (units x bins) int64 block of one bincount call.
_BLOCK_BYTES = 16 * 1024**2


@dataclass(frozen=True)
class TimeGrid:
    """A regular grid of ``n_bins`` bins of ``bin_size`` seconds starting at ``start``."""

    start: float
    bin_size: float
    n_bins: int

    @classmethod
    def covering(
        cls, t_min: float, t_max: float, bin_size: float, include_stop: bool = True
    ) -> TimeGrid:
        """Smallest grid aligned to multiples of ``bin_size`` that holds [t_min, t_max].

        With ``include_stop=False`` the interval is half-open, [t_min, t_max).
        """
        start = np.floor(t_min / bin_size + 1e-9) * bin_size
        span = (t_max - start) / bin_size
        n_bins = int(np.floor(span + 1e-9)) + 1 if include_stop else int(np.ceil(span - 1e-9))
        return cls(float(start), float(bin_size), max(n_bins, 1))

    @property
    def stop(self) -> float:
        return self.start + self.n_bins * self.bin_size

    @property
    def centres(self) -> np.ndarray:
        return self.start + (np.arange(self.n_bins) + 0.5) * self.bin_size

    def index(self, t: np.ndarray) -> np.ndarray:
        """Bin index of each time; -1 outside the grid."""
        # Times on a bin edge belong to the bin they open; the 1e-9-bin slack absorbs the
        # float rounding that would put e.g. a 100 Hz sample at 0.56 s into the bin before.
        pos = (np.asarray(t, dtype=float) - self.start) / self.bin_size
        idx = np.floor(pos + 1e-9).astype(np.int64)
        idx[(idx < 0) | (idx >= self.n_bins)] = -1
        return idx


def bin_spikes(
    read_spikes: Callable[[int, int], np.ndarray],
    unit_ends: np.ndarray,
    grid: TimeGrid,
    dtype: type = np.int32,
) -> np.ndarray:
    """Count spikes per (bin, unit) from a ragged spike-time array, one read per unit block.

    Parameters
    ----------
    read_spikes : callable
        ``read_spikes(start, stop)`` returns the flat spike times ``[start:stop]``; an
        ``h5py.Dataset.__getitem__`` wrapped in a lambda reads lazily from disk.
    unit_ends : ndarray of int, shape (n_units,)
        The NWB ``spike_times_index``: the end of each unit's spikes in the flat array.
    grid : TimeGrid
        The bins. Spikes outside the grid are not counted.
    dtype : numpy dtype
        Dtype of the returned counts.

    Returns
    -------
    ndarray, shape (grid.n_bins, n_units)
        Spike counts.

    Notes
    -----
    Units are processed in blocks sized so that one block's ``(bins, units)`` int64
    bincount stays under 16 MiB; within a block, every spike gets the flat index
    ``bin * block_units + unit`` and one ``np.bincount`` counts them all.
    """
    unit_ends = np.asarray(unit_ends, dtype=np.int64)
    n_units = unit_ends.size
    counts = np.zeros((grid.n_bins, n_units), dtype=dtype)
    starts = np.concatenate([[0], unit_ends[:-1]]) if n_units else unit_ends
    per_block = max(1, _BLOCK_BYTES // (8 * grid.n_bins))
    for b0 in range(0, n_units, per_block):
        b1 = min(b0 + per_block, n_units)
        lo, hi = int(starts[b0]), int(unit_ends[b1 - 1])
        if hi <= lo:
            continue
        times = np.asarray(read_spikes(lo, hi), dtype=float)
        owner = np.repeat(np.arange(b1 - b0), unit_ends[b0:b1] - starts[b0:b1])
        idx = grid.index(times)
        keep = idx >= 0
        # Time-major flat index: the block comes out (bins, units), row by row, as the
        # output is laid out, so the copy into it streams instead of striding.
        flat = idx[keep] * (b1 - b0) + owner[keep]
        block = np.bincount(flat, minlength=(b1 - b0) * grid.n_bins)
        counts[:, b0:b1] = block.reshape(grid.n_bins, b1 - b0)
    return counts


def resample(
    timestamps: np.ndarray, values: np.ndarray, grid: TimeGrid, method: str = "auto"
) -> np.ndarray:
    """Resample a sampled signal onto the grid's bins.

    Parameters
    ----------
    timestamps : ndarray, shape (n,)
        Strictly increasing sample times (s).
    values : ndarray, shape (n, c)
        Samples; NaN marks a lost sample and stays missing.
    grid : TimeGrid
        Target bins.
    method : {"auto", "mean", "linear"}
        ``mean`` averages the finite samples inside each bin (bins without one are NaN);
        ``linear`` interpolates at bin centres, NaN next to a NaN sample, outside the
        series, or farther than 1.5 sampling intervals from any sample (no bridging of
        recording gaps). ``auto`` takes ``mean`` when the series is sampled faster than
        the bins, else ``linear``.

    Returns
    -------
    ndarray, shape (grid.n_bins, c)
    """
    values = np.asarray(values, dtype=float).reshape(len(timestamps), -1)
    dt = float(np.median(np.diff(timestamps))) if len(timestamps) > 1 else grid.bin_size
    if method == "auto":
        method = "mean" if dt < grid.bin_size else "linear"
    if method == "mean":
        idx = grid.index(timestamps)
        out = np.full((grid.n_bins, values.shape[1]), np.nan)
        for j in range(values.shape[1]):  # a handful of columns, never a loop over samples
            ok = (idx >= 0) & np.isfinite(values[:, j])
            n = np.bincount(idx[ok], minlength=grid.n_bins)
            s = np.bincount(idx[ok], weights=values[ok, j], minlength=grid.n_bins)
            np.divide(s, n, out=out[:, j], where=n > 0)
        return out
    if method != "linear":
        raise ValueError(f"method must be 'auto', 'mean' or 'linear', got {method!r}")
    centres = grid.centres
    out = np.column_stack(
        [
            np.interp(centres, timestamps, values[:, j], left=np.nan, right=np.nan)
            for j in range(values.shape[1])
        ]
    )
    nearest = np.clip(np.searchsorted(timestamps, centres), 1, len(timestamps) - 1)
    gap = (
        np.minimum(
            np.abs(centres - timestamps[nearest - 1]), np.abs(timestamps[nearest] - centres)
        )
        if len(timestamps) > 1
        else np.abs(centres - timestamps[0])
    )
    out[gap > 1.5 * max(dt, grid.bin_size / 2)] = np.nan
    return out
