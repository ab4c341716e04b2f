"""Report figures of decoding.nc: held-out traces, R2 per decoder, learning curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from neuroseq.io.output import read_dataset
from neuroseq.report.plotting import plt, save_figure

TRACE_S = 20.0


def decoding_figures(result_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``decoding_traces.png``, ``decoding_r2.png`` and ``decoding_learning.png``."""
    ds = read_dataset(result_nc, schema="neuroseq.decoding/1")
    out = Path(output_dir)
    return [
        save_figure(_traces(ds), out / "decoding_traces.png"),
        save_figure(_r2(ds), out / "decoding_r2.png"),
        save_figure(_learning(ds), out / "decoding_learning.png"),
    ]


def _best_feature(ds: xr.Dataset) -> str:
    return str(ds.feature.values[int(np.nanargmax(ds.r2.mean(("decoder", "fold")).values))])


def _traces(ds: xr.Dataset) -> plt.Figure:
    """Held-out predictions against the truth over ~20 s of test bins of fold 0."""
    features = ds.feature.values[:4]
    t = ds.time.values
    test = np.flatnonzero(ds.test_fold.values == 0)
    first = test[0]
    stop = t[first] + TRACE_S
    sel = test[t[test] <= stop]
    fig, axes = plt.subplots(
        len(features), 1, figsize=(10, 1.9 * len(features) + 0.8), sharex=True, squeeze=False
    )
    for ax, name in zip(axes[:, 0], features, strict=True):
        truth = ds.target.sel(feature=name).values
        ax.plot(t[sel], truth[sel], color="k", lw=1.2, label="behaviour")
        for decoder in ds.decoder.values:
            ax.plot(
                t[sel],
                ds.prediction.sel(decoder=decoder, feature=name).values[sel],
                lw=0.9,
                label=str(decoder),
            )
        ax.set_ylabel(str(name), fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=5, frameon=False, loc="upper left")
    axes[-1, 0].set_xlabel("time (s); gaps: bins outside the held-out trials")
    fig.suptitle(f"{ds.attrs.get('session_id', '')}: held-out predictions (fold 0)", fontsize=10)
    fig.tight_layout()
    return fig


def _r2(ds: xr.Dataset) -> plt.Figure:
    decoders = [str(d) for d in ds.decoder.values]
    features = [str(f) for f in ds.feature.values]
    mean, sd = ds.r2.mean("fold"), ds.r2.std("fold")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(features) + 2), 4))
    width = 0.8 / len(decoders)
    x = np.arange(len(features))
    for d, name in enumerate(decoders):
        ax.bar(
            x + (d - (len(decoders) - 1) / 2) * width,
            mean.sel(decoder=name),
            width,
            yerr=sd.sel(decoder=name),
            capsize=2,
            label=f"{name} (mean {float(mean.sel(decoder=name).mean()):.2f})",
        )
    if "ceiling_r2" in ds:
        ax.scatter(
            x,
            ds.ceiling_r2,
            marker="_",
            s=400,
            color="k",
            zorder=3,
            label="ceiling (true latents)",
        )
    ax.set_xticks(x, features, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("held-out R2 (mean ± sd over folds)")
    ax.set_ylim(min(0.0, float(mean.min()) - 0.1), 1.0)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(
        f"{ds.attrs.get('session_id', '')}: decoders on identical folds "
        f"(split by {ds.attrs.get('grouping', 'trial')})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _learning(ds: xr.Dataset) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    trained = [d for d in ds.decoder.values if np.isfinite(ds.train_loss.sel(decoder=d)).any()]
    for i, name in enumerate(trained):
        colour = plt.cm.tab10(i)
        for k in ds.fold.values:
            tr = ds.train_loss.sel(decoder=name, fold=k)
            va = ds.val_loss.sel(decoder=name, fold=k)
            ax.plot(ds.epoch, tr, color=colour, lw=0.8, alpha=0.5)
            ax.plot(
                ds.epoch,
                va,
                color=colour,
                lw=1.4,
                ls="--",
                label=f"{name} (train solid, validation dashed)" if k == 0 else None,
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("masked MSE (standardised behaviour)")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"{ds.attrs.get('session_id', '')}: learning curves, every fold", fontsize=10)
    fig.tight_layout()
    return fig


def decoding_summary_figure(summary_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``decoding.png``: mean R2 per decoder and session."""
    ds = read_dataset(summary_nc, schema="neuroseq.summary.decoding/1")
    fig, ax = plt.subplots(figsize=(7, 4))
    sessions = [str(s) for s in ds.session.values]
    width = 0.8 / ds.sizes["decoder"]
    for d, name in enumerate(ds.decoder.values):
        ax.bar(
            np.arange(len(sessions)) + (d - (ds.sizes["decoder"] - 1) / 2) * width,
            ds.mean_r2.sel(decoder=name),
            width,
            label=str(name),
        )
    ax.set_xticks(np.arange(len(sessions)), sessions, rotation=30)
    ax.set_ylabel("held-out R2, mean over features")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Decoders across sessions", fontsize=10)
    fig.tight_layout()
    return [save_figure(fig, Path(output_dir) / "decoding.png")]
