"""Report figures of one session (raster, rates, choices) and of the sessions summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from neuroseq.io.output import read_dataset
from neuroseq.psychometric.analysis import wilson_interval
from neuroseq.report.plotting import error_bars, placeholder, plt, save_figure

RASTER_WINDOW_S = 20.0
MAX_TRACES = 8


def missing_parts(ds: xr.Dataset) -> dict[str, str]:
    """Figure name -> why it cannot be drawn for this session (absent when it can)."""
    out = {}
    if "unit" not in ds.dims:
        out["raster"] = out["rates"] = "no units in this session"
    if "stimulus" not in ds or "choice" not in ds:
        out["choices"] = "no stimulus and choice in this session's trials"
    return out


def session_figures(session_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``raster.png``, ``rates.png`` and ``choices.png`` for one session.

    A figure whose data the session lacks is still written, saying what is missing, so
    the workflow can always declare all three.
    """
    ds = read_dataset(session_nc, schema="neuroseq.session/1")
    out = Path(output_dir)
    sid = ds.attrs.get("session_id", "")
    missing = missing_parts(ds)
    makers = {"raster": _raster, "rates": _rates, "choices": _choices}
    return [
        save_figure(
            placeholder(missing[name], sid) if name in missing else make(ds), out / f"{name}.png"
        )
        for name, make in makers.items()
    ]


def _window(ds: xr.Dataset) -> tuple[float, float]:
    t0 = float(ds.start_time.min()) if "start_time" in ds else float(ds.time[0])
    t0 = max(t0, float(ds.time[0]))
    return t0, min(t0 + RASTER_WINDOW_S, float(ds.time[-1]))


def _raster(ds: xr.Dataset) -> plt.Figure:
    t0, t1 = _window(ds)
    part = ds.sel(time=slice(t0, t1))
    order = np.argsort(part.unit_region.values, kind="stable")
    regions = part.unit_region.values[order]
    counts = part.spike_counts.values[:, order]
    has_behavior = "feature" in part.dims
    fig, axes = plt.subplots(
        2 if has_behavior else 1,
        1,
        figsize=(10, 7 if has_behavior else 5),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 2] if has_behavior else [1]},
    )
    ax = axes[0, 0]
    colours = dict(zip(np.unique(regions), plt.cm.tab10(np.arange(10)), strict=False))
    t = part.time.values
    for r in np.unique(regions):
        rows = np.flatnonzero(regions == r)
        bins, units = np.nonzero(counts[:, rows])
        ax.scatter(t[bins], rows[units], s=1.5, marker="|", color=colours[r], lw=0.6)
        ax.annotate(
            f"{r} ({rows.size})",
            (1.0, rows.mean()),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=colours[r],
        )
    _shade_trials(ax, ds, t0, t1)
    ax.set_ylim(-1, counts.shape[1])
    ax.set_ylabel("unit (grouped by region)")
    ax.set_title(
        f"{ds.attrs.get('session_id', '')}: spikes and behaviour, "
        f"{t0:.0f}-{t1:.0f} s (trials shaded)",
        fontsize=10,
    )
    if has_behavior:
        bx = axes[1, 0]
        z = part.behavior
        z = (z - z.mean("time")) / z.std("time")
        names = part.feature.values[:MAX_TRACES]
        for k, name in enumerate(names):  # one trace a row, top to bottom
            offset = -4.0 * k
            bx.plot(t, z.sel(feature=name) + offset, lw=0.7)
            group = str(part.feature_group.values[k])
            label = name if group in name else f"{name} [{group}]"
            bx.annotate(
                label,
                (1.0, offset),
                xycoords=("axes fraction", "data"),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        _shade_trials(bx, ds, t0, t1)
        bx.set_yticks([])
        bx.set_ylabel("behaviour (z-scored, stacked)")
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 0].set_xlim(t0, t1)
    fig.tight_layout()
    fig.subplots_adjust(right=0.84)
    return fig


def _shade_trials(ax, ds: xr.Dataset, t0: float, t1: float) -> None:
    if "start_time" not in ds or "stop_time" not in ds:
        return
    for a, b in zip(ds.start_time.values, ds.stop_time.values, strict=True):
        if b >= t0 and a <= t1:
            ax.axvspan(a, b, color="0.92", zorder=0, lw=0)


def _rates(ds: xr.Dataset) -> plt.Figure:
    duration = ds.sizes["time"] * float(ds.attrs["bin_size_s"])
    rates = ds.spike_counts.sum("time").values / duration
    regions = ds.unit_region.values.astype(str)
    names = list(np.unique(regions))
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 3, 4))
    data = [rates[regions == r] for r in names]
    ax.boxplot(data, showfliers=False)
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, values.size), values, s=10, alpha=0.6)
    ax.set_xticks(
        range(1, len(names) + 1), [f"{r}\n(n={d.size})" for r, d in zip(names, data, strict=True)]
    )
    ax.set_yscale("log")
    ax.set_ylabel("mean firing rate (spikes/s)")
    ax.set_title(f"{ds.attrs.get('session_id', '')}: firing rate per unit and region", fontsize=10)
    fig.tight_layout()
    return fig


def _choices(ds: xr.Dataset) -> plt.Figure:
    ok = ds.choice.values >= 0
    s = ds.stimulus.values[ok]
    c = ds.choice.values[ok]
    cond = ds.condition.values[ok].astype(str) if "condition" in ds else np.full(s.size, "all")
    levels = np.unique(s)
    if levels.size > 15:  # continuous stimuli: 9 quantile bins, each at its mean
        edges = np.unique(np.quantile(s, np.linspace(0, 1, 10)))
        which = np.clip(np.searchsorted(edges, s, "right") - 1, 0, edges.size - 2)
        s = np.array([s[which == i].mean() for i in range(edges.size - 1)])[which]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name in np.unique(cond):
        sel = cond == name
        x = np.unique(s[sel])
        n = np.array([np.sum(s[sel] == v) for v in x])
        k = np.array([c[sel][s[sel] == v].sum() for v in x])
        lo, hi = wilson_interval(k, n)
        p = k / n
        ax.errorbar(
            x,
            p,
            yerr=error_bars(p, lo, hi),
            marker="o",
            ms=4,
            capsize=2,
            lw=1,
            label=f"{name} (n={int(n.sum())})",
        )
    units = ds.stimulus.attrs.get("units", "")
    ax.set_xlabel(f"stimulus (+ = rightward){f' [{units}]' if units not in ('', '1') else ''}")
    ax.set_ylabel("fraction rightward (95% Wilson CI)")
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.5, color="0.85", lw=0.8, zorder=0)
    ax.legend(fontsize=8, frameon=False)
    n_none = int((~ok).sum())
    ax.set_title(
        f"{ds.attrs.get('session_id', '')}: choices ({n_none} trials without a response left out)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def summary_figures(summary_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``sessions.png``: trials per condition and units per region across sessions."""
    ds = read_dataset(summary_nc, schema="neuroseq.summary.sessions/1")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    sessions = [str(s) for s in ds.session.values]
    for ax, name, dim, label in [
        (axes[0], "trials_per_condition", "condition", "trials"),
        (axes[1], "n_units_per_region", "group", "units"),
    ]:
        bottom = np.zeros(len(sessions))
        for value in ds[dim].values:
            heights = ds[name].sel({dim: value}).values
            ax.bar(sessions, heights, bottom=bottom, label=str(value))
            bottom += heights
        ax.set_ylabel(label)
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=7, frameon=False, title=dim, title_fontsize=8)
    axes[0].set_title("trials per condition", fontsize=10)
    axes[1].set_title("units per brain region", fontsize=10)
    fig.tight_layout()
    return [save_figure(fig, Path(output_dir) / "sessions.png")]
