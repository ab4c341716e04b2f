"""Shared plotting plumbing: a headless backend and atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # figures are files; no display is ever needed
import matplotlib.pyplot as plt

from neuroseq.io.output import atomic_write


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Save a figure atomically (temporary file, then rename) and close it."""
    path = Path(path)
    try:
        with atomic_write(path, ".png") as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path


def placeholder(message: str, title: str = "") -> plt.Figure:
    """A figure that says what is missing, for sessions that lack a part."""
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="0.3", wrap=True)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def error_bars(value, lower, upper):
    """Asymmetric error-bar lengths from an interval (float rounding never makes them < 0)."""
    return [np.clip(value - lower, 0, None), np.clip(upper - value, 0, None)]
