"""Report figures of uae.nc: recovery error against the number of measurements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from neuroseq.io.output import read_dataset
from neuroseq.report.plotting import plt, save_figure

#: One colour per method, the same in every figure.
COLOURS = {
    "uae": "tab:red",
    "uae_random": "tab:orange",
    "uae_transfer": "tab:purple",
    "lasso": "tab:blue",
    "lasso_dct": "tab:cyan",
    "pca": "k",
}


def uae_figures(result_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``uae_error.png``: recovery error and per-unit error against ``m``."""
    ds = read_dataset(result_nc, schema="neuroseq.uae/1")
    return [save_figure(_error(ds), Path(output_dir) / "uae_error.png")]


def _error(ds: xr.Dataset) -> plt.Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    m = ds.n_measurements.values
    for name in ds.method.values:
        err = ds.recon_error.sel({"method": name})
        if not np.isfinite(err).any():
            continue
        colour = COLOURS.get(str(name))
        left.errorbar(
            m,
            err.mean("fold").values,
            yerr=err.std("fold").values,
            marker="o",
            ms=4,
            capsize=2,
            color=colour,
            label=str(name),
        )
        unit = ds.unit_error.sel({"method": name})
        q = unit.quantile([0.25, 0.5, 0.75], dim="unit").values
        right.plot(m, q[1], marker="o", ms=4, color=colour, label=str(name))
        right.fill_between(m, q[0], q[2], color=colour, alpha=0.12)
    left.axhline(float(ds.mean_error.mean()), color="0.5", ls="--", lw=1, label="training mean")
    left.set_ylabel("held-out error ||x - x_hat|| (SD units)")
    right.axhline(1.0, color="0.5", ls="--", lw=1)
    right.set_ylabel("per-unit error (fraction of variance; median, IQR)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(m, [str(v) for v in m])
        ax.minorticks_off()
        ax.set_xlabel("measurements m")
        ax.set_ylim(bottom=0)
    left.legend(fontsize=7, frameon=False)
    skipped = ds.attrs.get("skipped_n_measurements", "[]")
    note = f"; m skipped (>= units): {skipped}" if skipped != "[]" else ""
    transfer = ds.attrs.get("transfer_source", "")
    if transfer:
        note += f"; transfer from {transfer} ({ds.attrs['transfer_shared_units']} shared units)"
    fig.suptitle(
        f"{ds.attrs.get('session_id', '')}: recovery of {ds.attrs['n_units']} units from m "
        f"measurements (noise {ds.attrs['noise_std']:g}, {ds.sizes['fold']} folds){note}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def uae_summary_figure(summary_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``uae.png``: relative error per method and session, and UAE / PCA."""
    ds = read_dataset(summary_nc, schema="neuroseq.summary.uae/1")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    m = ds.n_measurements.values
    markers = "osD^vP*Xh"
    for name in ds.method.values:
        colour = COLOURS.get(str(name))
        rel = ds.relative_error.sel({"method": name})
        if not np.isfinite(rel).any():
            continue
        for i, session in enumerate(ds.session.values):
            left.plot(
                m,
                rel.sel(session=session),
                color=colour,
                marker=markers[i % len(markers)],
                ms=3,
                lw=0.8,
                alpha=0.6,
            )
        left.plot([], [], color=colour, label=str(name))
    for i, session in enumerate(ds.session.values):
        left.plot([], [], color="0.4", ls="", marker=markers[i % len(markers)], label=str(session))
    if {"uae", "pca"} <= set(ds.method.values.tolist()):
        ratio = ds.recon_error.sel({"method": "uae"}) / ds.recon_error.sel({"method": "pca"})
        for i, session in enumerate(ds.session.values):
            right.plot(
                m,
                ratio.sel(session=session),
                marker=markers[i % len(markers)],
                label=str(session),
            )
        right.axhline(1.0, color="0.5", ls="--", lw=1)
        right.set_ylabel("UAE error / PCA error (below 1: UAE better)")
        right.legend(fontsize=7, frameon=False)
    else:
        right.set_axis_off()
    left.set_ylabel("fraction of population variance not recovered")
    left.axhline(1.0, color="0.5", ls="--", lw=1)
    left.legend(fontsize=7, frameon=False, ncol=2)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(m, [str(v) for v in m])
        ax.minorticks_off()
        ax.set_xlabel("measurements m")
    fig.suptitle("Compressed sensing of population activity across sessions", fontsize=10)
    fig.tight_layout()
    return [save_figure(fig, Path(output_dir) / "uae.png")]
