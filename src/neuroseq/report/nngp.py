"""Report figures of nngp.nc: score against width with the NNGP's line; std against error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from neuroseq.io.output import read_dataset
from neuroseq.report.plotting import plt, save_figure


def nngp_figures(result_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``nngp_width.png`` and ``nngp_uncertainty.png``."""
    ds = read_dataset(result_nc, schema="neuroseq.nngp/1")
    out = Path(output_dir)
    return [
        save_figure(_width(ds), out / "nngp_width.png"),
        save_figure(_uncertainty(ds), out / "nngp_uncertainty.png"),
    ]


def _metric(ds: xr.Dataset) -> str:
    return "accuracy" if ds.attrs.get("task") == "classification" else "R2"


def _width(ds: xr.Dataset) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    widths = ds.width.values
    for i, model in enumerate(ds.model.values):
        colour = plt.cm.tab10(i)
        scores = ds.score.sel(model=model)
        for s in ds.seed.values:
            ax.plot(widths, scores.sel(seed=s), "o", color=colour, alpha=0.35, ms=4)
        ax.plot(
            widths,
            scores.mean("seed"),
            "-",
            color=colour,
            lw=1.8,
            label=f"{model} (mean of {ds.sizes['seed']} seeds; dots: each seed)",
        )
    nngp = float(ds.nngp_score)
    ax.axhline(nngp, color="k", lw=2, label=f"NNGP (infinite width): {nngp:.3f}")
    ax.axhline(
        float(ds.chance_score),
        color="0.5",
        ls=":",
        label=f"chance (training {'majority' if _metric(ds) == 'accuracy' else 'mean'})",
    )
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_xlabel("hidden width")
    ax.set_ylabel(f"held-out {_metric(ds)} (pooled over {ds.sizes['fold']} folds)")
    ax.legend(fontsize=7, frameon=False)
    depths = sorted({int(d) for d in ds.chosen_depth.values})
    ax.set_title(
        f"{ds.attrs.get('session_id', '')}: {ds.attrs.get('target', '')} from spikes; "
        f"{ds.attrs.get('activation', '')}, depth {depths}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _uncertainty(ds: xr.Dataset) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    std, err = ds.predictive_std.values, ds.abs_error.values
    for k in ds.fold.values:
        sel = ds.test_fold.values == k
        ax.scatter(std[sel], err[sel], s=10, alpha=0.6, label=f"fold {k}")
    if np.ptp(std) > 0:
        # Mean error in quantile bins of the predicted std: the calibration trend.
        edges = np.unique(np.quantile(std, np.linspace(0, 1, 9)))
        which = np.clip(np.searchsorted(edges, std, side="right") - 1, 0, len(edges) - 2)
        centres = [std[which == b].mean() for b in range(len(edges) - 1) if (which == b).any()]
        means = [err[which == b].mean() for b in range(len(edges) - 1) if (which == b).any()]
        ax.plot(centres, means, "k-o", ms=4, lw=1.5, label="mean error per std octile")
    ax.set_xlabel(f"NNGP predictive std ({ds.predictive_std.attrs.get('units', '')})")
    ax.set_ylabel("absolute error of the NNGP mean")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(
        f"{ds.attrs.get('session_id', '')}: Pearson r = {float(ds.std_error_corr):.2f}, "
        f"Spearman = {float(ds.std_error_spearman):.2f}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def nngp_summary_figure(summary_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``nngp.png``: every session's score against width, NNGP as a dashed line."""
    ds = read_dataset(summary_nc, schema="neuroseq.summary.nngp/1")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    widths = ds.width.values
    for i, session in enumerate(ds.session.values):
        colour = plt.cm.tab10(i % 10)
        for model in ds.model.values:
            ax.errorbar(
                widths,
                ds.score.sel(session=session, model=model),
                yerr=ds.score_sd.sel(session=session, model=model),
                color=colour,
                marker="o",
                ms=4,
                capsize=2,
                label=f"{session} {model} ({ds.target.sel(session=session).item()})",
            )
        ax.axhline(float(ds.nngp_score.sel(session=session)), color=colour, ls="--", lw=1.5)
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_xlabel("hidden width")
    ax.set_ylabel("held-out score (accuracy or R2), mean ± sd over seeds")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("Finite networks (solid) against the NNGP (dashed), per session", fontsize=10)
    fig.tight_layout()
    return [save_figure(fig, Path(output_dir) / "nngp.png")]
