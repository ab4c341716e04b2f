"""Report figures of the lapse-model fits (psychometric.nc) and of their summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from neuroseq.io.output import read_dataset
from neuroseq.report.plotting import error_bars, plt, save_figure

LAPSES = ("gamma", "lambda", "gamma_plus_lambda", "lapse_asymmetry")


def psychometric_figures(result_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``psychometric_curves.png``, ``_comparison.png`` and ``_lapses.png``."""
    ds = read_dataset(result_nc, schema="neuroseq.psychometric/1")
    out = Path(output_dir)
    return [
        save_figure(_curves(ds), out / "psychometric_curves.png"),
        save_figure(_comparison(ds), out / "psychometric_comparison.png"),
        save_figure(_lapses(ds), out / "psychometric_lapses.png"),
    ]


def _curves(ds: xr.Dataset) -> plt.Figure:
    conditions = ds.condition.values
    ncol = min(len(conditions), 4)
    nrow = int(np.ceil(len(conditions) / ncol))
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(3.2 * ncol, 3.0 * nrow + 0.6), sharey=True, squeeze=False
    )
    colours = plt.cm.tab10(np.arange(ds.sizes["model"]))
    for ax, cname in zip(axes.flat, conditions, strict=False):
        n = ds.n_trials.sel(condition=cname)
        has = n > 0
        x = ds.stimulus.values[has.values]
        p = (ds.n_right.sel(condition=cname) / n).values[has.values]
        ci = ds.p_right_ci.sel(condition=cname).values[has.values]
        ax.errorbar(
            x,
            p,
            yerr=error_bars(p, ci[:, 0], ci[:, 1]),
            fmt="o",
            color="k",
            ms=4,
            capsize=2,
            label=f"data (n={int(n.sum())})",
            zorder=3,
        )
        for colour, model in zip(colours, ds.model.values, strict=True):
            ax.plot(
                ds.stimulus_grid,
                ds.curve.sel(model=model, condition=cname),
                color=colour,
                lw=1.5,
                label=str(model),
            )
        ax.set_title(str(cname), fontsize=10)
        ax.set_xlabel("stimulus (+ = rightward evidence)")
        ax.set_ylim(-0.02, 1.02)
        ax.axhline(0.5, color="0.85", lw=0.8, zorder=0)
    for ax in axes[:, 0]:
        ax.set_ylabel("p(rightward)")
    for ax in list(axes.flat)[len(conditions) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, frameon=False, loc="upper left")
    fig.suptitle(
        f"{ds.attrs.get('session_id', '')}: choices (95% Wilson CI) and fitted lapse models",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _comparison(ds: xr.Dataset) -> plt.Figure:
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    models = [str(m) for m in ds.model.values]
    y = np.arange(len(models))
    for ax, name, label in [(axes[0], "delta_aic", "ΔAIC"), (axes[1], "delta_bic", "ΔBIC")]:
        ax.barh(y, ds[name].values, color="0.5")
        ax.set_yticks(y, models)
        ax.set_xlabel(f"{label} (nat; 0 = best)")
        ax.invert_yaxis()
    cv = ds.cv_loglik.values
    axes[2].barh(y, cv.max() - cv, color="0.5")
    axes[2].set_yticks(y, models)
    axes[2].invert_yaxis()
    axes[2].set_xlabel("held-out log-lik. below best (nat)")
    for ax in axes[1:]:
        ax.set_yticklabels([])
    for i, m in enumerate(models):
        axes[0].annotate(
            f"GOF p={float(ds.gof_p.sel(model=m)):.2f}",
            (0, i),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    fig.suptitle(
        f"{ds.attrs.get('session_id', '')}: model comparison "
        f"(lowest AIC: {ds.attrs.get('winner_aic')}, BIC: {ds.attrs.get('winner_bic')})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _lapses(ds: xr.Dataset) -> plt.Figure:
    fig, axes = plt.subplots(1, len(LAPSES), figsize=(3.0 * len(LAPSES), 3.4), sharey=True)
    models = [str(m) for m in ds.model.values]
    conditions = [str(c) for c in ds.condition.values]
    width = 0.8 / len(models)
    colours = plt.cm.tab10(np.arange(len(models)))
    for ax, pname in zip(axes, LAPSES, strict=True):
        for m, model in enumerate(models):
            value = ds.params.sel(model=model, param=pname).values
            ci = ds.params_ci.sel(model=model, param=pname).values
            x = np.arange(len(conditions)) + (m - (len(models) - 1) / 2) * width
            ax.errorbar(
                value,
                x,
                xerr=error_bars(value, ci[:, 0], ci[:, 1]),
                fmt="o",
                color=colours[m],
                ms=4,
                capsize=2,
                label=model,
            )
        ax.set_title(pname, fontsize=10)
        ax.set_yticks(np.arange(len(conditions)), conditions)
        ax.axvline(0, color="0.85", lw=0.8, zorder=0)
        ax.set_xlabel("probability")
    axes[0].invert_yaxis()
    axes[-1].legend(fontsize=7, frameon=False)
    fig.suptitle(
        f"{ds.attrs.get('session_id', '')}: lapse rates per condition "
        "(95% bootstrap CI; gamma = p(right) far left, lambda = p(left) far right)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def psychometric_summary_figure(summary_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``psychometric.png``: winning model counts and lapse rates across sessions."""
    ds = read_dataset(summary_nc, schema="neuroseq.summary.psychometric/1")
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    models = [str(m) for m in ds.model.values]
    axes[0].bar(models, ds.winner_count.values, color="0.5")
    axes[0].set_ylabel("sessions won (lowest AIC)")
    axes[0].tick_params(axis="x", rotation=30)
    rng = np.random.default_rng(0)
    for ax, pname in zip(axes[1:], ("gamma_plus_lambda", "lapse_asymmetry"), strict=True):
        for m, model in enumerate(models):
            v = ds.params.sel(model=model, param=pname).values.ravel()
            v = v[np.isfinite(v)]
            ax.scatter(m + rng.uniform(-0.15, 0.15, v.size), v, s=12, alpha=0.7)
        ax.set_xticks(range(len(models)), models, rotation=30)
        ax.set_ylabel(f"{pname} (per session and condition)")
    fig.suptitle(f"Lapse models across {ds.sizes['session']} sessions", fontsize=10)
    fig.tight_layout()
    return [save_figure(fig, Path(output_dir) / "psychometric.png")]
