"""Report figures of pruning.nc: the lottery-ticket curves, per session and across sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from neuroseq.io.output import read_dataset
from neuroseq.report.plotting import plt, save_figure

#: Line style of each initialisation of the survivors (Frankle & Carbin 2019, Figure 3).
STYLE = {
    "rewind": {"color": "tab:blue", "marker": "o", "label": "winning ticket (rewound)"},
    "reinit": {"color": "tab:orange", "marker": "s", "label": "same mask, random re-init"},
    "random_prune": {"color": "tab:green", "marker": "^", "label": "random pruning"},
}


def pruning_figures(result_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``pruning_tickets.png``: score and early-stopping step vs weights remaining."""
    ds = read_dataset(result_nc, schema="neuroseq.pruning/1")
    return [save_figure(_tickets(ds), Path(output_dir) / "pruning_tickets.png")]


def _percent_axis(ax: plt.Axes, remaining: np.ndarray) -> None:
    ax.set_xscale("log")
    ax.set_xlim(105, 0.8 * 100 * float(remaining.min()))  # sparser to the right, as the paper
    ticks = 100 * remaining
    ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks], fontsize=7)
    ax.minorticks_off()


def _tickets(ds: xr.Dataset) -> plt.Figure:
    decoders = [str(d) for d in ds.decoder.values]
    fig, axes = plt.subplots(
        2, len(decoders), figsize=(5.2 * len(decoders), 6.4), squeeze=False, sharex="col"
    )
    for c, name in enumerate(decoders):
        remaining = ds.remaining.sel(decoder=name).values
        x = 100 * remaining
        for row, var in enumerate(("score", "early_stop_iteration")):
            ax = axes[row, c]
            for init in ds.init.values:
                values = ds[var].sel(decoder=name, init=init).values  # (sparsity, seed)
                style = STYLE[str(init)]
                ax.plot(
                    x,
                    values.mean(1),
                    color=style["color"],
                    marker=style["marker"],
                    ms=4,
                    label=style["label"],
                )
                ax.fill_between(
                    x, values.min(1), values.max(1), color=style["color"], alpha=0.18, lw=0
                )
            _percent_axis(ax, remaining)
        if "steps_trained" in ds:  # where early stopping meets it, the epoch limit cut training
            for init in ds.init.values:
                trained = ds.steps_trained.sel(decoder=name, init=init).mean(("seed", "fold"))
                axes[1, c].plot(x, trained, color=STYLE[str(init)]["color"], lw=0.9, ls="--")
            axes[1, c].plot([], [], color="0.4", lw=0.9, ls="--", label="steps trained (dashed)")
            axes[1, c].legend(fontsize=7, frameon=False)
        dense = float(ds.score.sel(decoder=name, sparsity=0).mean())
        axes[0, c].axhline(dense, color="0.5", lw=0.8, ls=":")
        axes[0, c].set_title(f"{name}: dense R2 {dense:.3f}", fontsize=9)
        axes[1, c].set_xlabel("weights remaining (%)")
    axes[0, 0].set_ylabel("held-out R2 (mean over folds, features)")
    axes[1, 0].set_ylabel("early-stopping iteration (steps)")
    axes[0, 0].legend(fontsize=7, frameon=False)
    n_seeds = ds.sizes["seed"]
    fig.suptitle(
        f"{ds.attrs.get('session_id', '')}: lottery tickets "
        f"(lines: mean of {n_seeds} seeds; bands: their range)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def pruning_summary_figure(summary_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``pruning.png``: each session's change in score from its dense network."""
    ds = read_dataset(summary_nc, schema="neuroseq.summary.pruning/1")
    decoders = [str(d) for d in ds.decoder.values]
    fig, axes = plt.subplots(1, len(decoders), figsize=(5.2 * len(decoders), 4), squeeze=False)
    for c, name in enumerate(decoders):
        ax = axes[0, c]
        remaining = ds.remaining.sel(decoder=name)
        for init in ds.init.values:
            style = STYLE[str(init)]
            drop = ds.score_drop.sel(decoder=name, init=init)
            for session in ds.session.values:
                ax.plot(
                    100 * remaining.sel(session=session),
                    drop.sel(session=session),
                    color=style["color"],
                    lw=0.7,
                    alpha=0.45,
                )
            ax.plot(
                100 * remaining.mean("session"),
                drop.mean("session"),
                color=style["color"],
                marker=style["marker"],
                lw=2,
                ms=4,
                label=f"{style['label']} (mean)",
            )
        ax.axhline(0, color="0.5", lw=0.8, ls=":")
        _percent_axis(ax, remaining.mean("session").values)
        ax.set_xlabel("weights remaining (%)")
        ax.set_title(f"{name}: sessions (thin lines): {ds.sizes['session']}", fontsize=9)
    axes[0, 0].set_ylabel("held-out R2 minus the dense network's")
    axes[0, 0].legend(fontsize=7, frameon=False)
    fig.suptitle("Lottery tickets across sessions", fontsize=10)
    fig.tight_layout()
    return [save_figure(fig, Path(output_dir) / "pruning.png")]
