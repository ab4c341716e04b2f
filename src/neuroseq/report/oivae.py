"""Report figures of oivae.nc: the latent x group map, ELBO curves and path, reconstruction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from neuroseq.io.output import read_dataset
from neuroseq.report.plotting import plt, save_figure

KIND_COLOURS = {"region": "tab:blue", "behavior": "tab:orange"}


def oivae_figures(result_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``oivae_map.png``, ``oivae_elbo.png`` and ``oivae_recon.png``."""
    ds = read_dataset(result_nc, schema="neuroseq.oivae/1")
    out = Path(output_dir)
    return [
        save_figure(_map(ds), out / "oivae_map.png"),
        save_figure(_elbo(ds), out / "oivae_elbo.png"),
        save_figure(_recon(ds), out / "oivae_recon.png"),
    ]


def _relative(w_norm: np.ndarray) -> np.ndarray:
    """Each group's column divided by its largest entry (groups differ in scale)."""
    top = w_norm.max(0, keepdims=True)
    return w_norm / np.where(top > 0, top, 1.0)


def _latent_labels(ds: xr.Dataset) -> list[str]:
    labels = []
    for j in ds.latent.values:
        label = f"z{j}" + ("" if ds.active.values[j] else " (off)")
        if "matched_true_latent" in ds and ds.matched_true_latent.values[j] >= 0:
            label += f" ~ true {ds.matched_true_latent.values[j]}"
        labels.append(label)
    return labels


def _map(ds: xr.Dataset) -> plt.Figure:
    groups = [str(g) for g in ds.group.values]
    truth = "true_map" in ds
    fig, axes = plt.subplots(
        1,
        2 if truth else 1,
        figsize=(1.0 * len(groups) * (2 if truth else 1) + 4, 0.45 * ds.sizes["latent"] + 2.6),
        squeeze=False,
    )
    panels = [(_relative(ds.w_norm.values), "learned ||w_j^(g)|| / largest in group")]
    if truth:
        panels.append((ds.true_map.values, "simulator's map of the matched true latent"))
    for ax, (values, title) in zip(axes[0], panels, strict=True):
        image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(groups)), groups, rotation=35, ha="right", fontsize=8)
        for tick, kind in zip(ax.get_xticklabels(), ds.group_kind.values, strict=True):
            tick.set_color(KIND_COLOURS.get(str(kind), "k"))
        ax.set_yticks(range(ds.sizes["latent"]), _latent_labels(ds), fontsize=8)
        ax.set_title(title, fontsize=9)
        for (i, j), v in np.ndenumerate(values):
            if v > 0.005:
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="w" if v < 0.6 else "k",
                )
        fig.colorbar(image, ax=ax, fraction=0.04)
    head = (
        f"{ds.attrs.get('session_id', '')}: latent x group map at lambda = "
        f"{float(ds.lambda_chosen):g} ({int(ds.active.sum())} active latents; "
        "blue: regions, orange: body parts)"
    )
    if truth:
        head += (
            f"\nrecovery {float(ds.map_recovery):.2f} (shuffled maps "
            f"{float(ds.map_recovery_chance):.2f})"
        )
        if "latent_correlation" in ds:
            head += f", |r| with true latents {float(ds.latent_correlation):.2f}"
    fig.suptitle(head, fontsize=9)
    fig.tight_layout()
    return fig


def _lambda_axis(ax: plt.Axes, lambdas: np.ndarray) -> None:
    positive = lambdas[lambdas > 0]
    ax.set_xscale("symlog", linthresh=float(positive.min()) if positive.size else 1.0)
    ax.set_xlabel("lambda (summed-ELBO scale)")


def _elbo(ds: xr.Dataset) -> plt.Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = ds.epoch.values + 1
    left.plot(epochs, ds.elbo_train, label="training bins")
    left.plot(epochs, ds.elbo_heldout, label="held-out bins")
    warm = int(ds.attrs.get("warmup_epochs", 0))
    if warm:
        left.axvspan(0.5, warm + 0.5, color="0.9", zorder=0, label="noise scales held")
    switch = int(ds.attrs.get("penalized_epochs", len(epochs)))
    if switch < len(epochs):
        left.axvline(switch + 0.5, color="0.5", ls=":", lw=1)
        left.text(
            switch + 1, 0.02, "relaxed refit", fontsize=7, transform=left.get_xaxis_transform()
        )
    finite = np.concatenate([ds.elbo_train.values, ds.elbo_heldout.values])
    finite = finite[np.isfinite(finite)]
    if finite.size:  # the warm-up epochs sit far below; show where the fit settles
        lo, hi = np.percentile(finite, 30), finite.max()
        left.set_ylim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
    left.set_xlabel("epoch")
    left.set_ylabel(f"ELBO ({ds.elbo_train.attrs.get('units', '')})", fontsize=8)
    left.set_title(f"fit at the chosen lambda = {float(ds.lambda_chosen):g}", fontsize=9)
    left.legend(fontsize=8, frameon=False)

    lam = ds.penalty.values
    right.errorbar(
        lam,
        ds.path_heldout_elbo,
        yerr=ds.path_heldout_elbo_se,
        marker="o",
        capsize=3,
        label="held-out ELBO (± s.e. of the gap to the best)",
    )
    right.axvline(float(ds.lambda_chosen), color="k", ls="--", lw=1, label="chosen")
    _lambda_axis(right, lam)
    right.set_ylabel("held-out ELBO per bin")
    twin = right.twinx()
    twin.plot(lam, ds.path_n_active, "s:", color="tab:red", label="active latents")
    if "path_map_recovery" in ds:
        twin.plot(
            lam,
            ds.path_map_recovery * ds.sizes["latent"],
            "^:",
            color="tab:green",
            label=f"map recovery x {ds.sizes['latent']}",
        )
    twin.set_ylim(0, ds.sizes["latent"] + 0.5)
    twin.set_ylabel("active latents", color="tab:red")
    lines = right.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    right.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, frameon=False)
    right.set_title(f"lambda path (selection: {ds.attrs.get('selection', '')})", fontsize=9)
    fig.suptitle(str(ds.attrs.get("session_id", "")), fontsize=10)
    fig.tight_layout()
    return fig


def _recon(ds: xr.Dataset) -> plt.Figure:
    groups = [str(g) for g in ds.group.values]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) + 2.5), 4.6))
    x = np.arange(len(groups))
    colours = [KIND_COLOURS.get(str(k), "0.5") for k in ds.group_kind.values]
    ax.bar(x, ds.recon_r2, color=colours, label=f"lambda = {float(ds.lambda_chosen):g} (chosen)")
    for lam in ds.penalty.values:
        if lam != float(ds.lambda_chosen):
            ax.plot(
                x,
                ds.path_recon_r2.sel(penalty=lam),
                "_",
                ms=18,
                mew=1.5,
                label=f"lambda = {lam:g}",
            )
    ax.set_xticks(
        x, [f"{g}\n({n})" for g, n in zip(groups, ds.group_size.values, strict=True)], fontsize=8
    )
    ax.set_ylabel("held-out R2 of the reconstruction")
    ax.set_ylim(min(0.0, float(ds.path_recon_r2.min()) - 0.05), 1.0)
    ax.legend(fontsize=7, frameon=False, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.set_title(
        f"{ds.attrs.get('session_id', '')}: reconstruction per group "
        "(blue: regions, orange: body parts; columns in brackets)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def oivae_summary_figure(summary_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``oivae.png``: recovery (or active latents) per session, and the lambda paths."""
    ds = read_dataset(summary_nc, schema="neuroseq.summary.oivae/1")
    sessions = [str(s) for s in ds.session.values]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    x = np.arange(len(sessions))
    if "map_recovery" in ds:
        axes[0].bar(x - 0.2, ds.map_recovery, 0.4, label="learned map")
        axes[0].bar(x + 0.2, ds.map_recovery_chance, 0.4, color="0.7", label="shuffled maps")
        axes[0].set_ylabel("recovery of the simulator's map")
        axes[0].set_ylim(0, 1.15)  # room for the legend above the bars
        axes[0].legend(fontsize=8, frameon=False, ncol=2, loc="upper center")
    else:
        axes[0].bar(x, ds.n_active)
        axes[0].set_ylabel("active latents at the chosen lambda")
    axes[0].set_xticks(x, sessions, rotation=30, fontsize=8)
    axes[0].set_title("per session", fontsize=9)
    for s in sessions:
        gap = ds.path_heldout_elbo_gap.sel(session=s)
        axes[1].plot(ds.penalty, gap, "o-", label=s)
        axes[2].plot(ds.penalty, ds.path_n_active.sel(session=s), "o-", label=s)
    for ax in axes[1:]:
        _lambda_axis(ax, ds.penalty.values)
        ax.legend(fontsize=7, frameon=False)
    axes[1].set_ylabel("held-out ELBO - best (nats per bin)")
    axes[1].set_title("held-out ELBO along the path", fontsize=9)
    axes[2].set_ylabel("active latents")
    axes[2].set_title("sparsity along the path", fontsize=9)
    fig.suptitle("oi-VAE across sessions", fontsize=10)
    fig.tight_layout()
    return [save_figure(fig, Path(output_dir) / "oivae.png")]
