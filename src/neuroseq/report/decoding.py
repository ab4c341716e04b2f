"""Report figures of decoding.nc: held-out traces, R2 per decoder, learning curves, and
the table of every score."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import xarray as xr

from neuroseq.io.output import atomic_write, read_dataset
from neuroseq.report.plotting import plt, save_figure

TRACE_S = 20.0


def decoding_figures(result_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``decoding_traces.png``, ``decoding_r2.png``, ``decoding_learning.png`` and
    ``decoding_table.html``."""
    ds = read_dataset(result_nc, schema="neuroseq.decoding/1")
    out = Path(output_dir)
    return [
        save_figure(_traces(ds), out / "decoding_traces.png"),
        save_figure(_r2(ds), out / "decoding_r2.png"),
        save_figure(_learning(ds), out / "decoding_learning.png"),
        write_html(decoding_table(ds), out / "decoding_table.html"),
    ]


def write_html(text: str, path: str | Path) -> Path:
    """Write an HTML page atomically."""
    path = Path(path)
    with atomic_write(path, ".html") as tmp:
        Path(tmp).write_text(text)
    return path


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body style='font-family:sans-serif'>{body}</body></html>\n"
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are HTML already (escape text before)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        "<table border='1' cellpadding='4' style='border-collapse:collapse;"
        f"text-align:right'><tr>{head}</tr>{body}</table>"
    )


def _num(value: float, best: bool = False, digits: int = 3) -> str:
    text = "-" if not np.isfinite(value) else f"{value:.{digits}f}"
    return f"<b>{text}</b>" if best else text


def decoding_table(ds: xr.Dataset) -> str:
    """Every held-out score of one session's decoding.nc as an HTML page.

    Per decoder: R2 (mean over features) per fold, their mean and sd, RMSE and Pearson r
    (means over folds and features), fit time; then R2 per feature (mean and sd over
    folds) beside the ceiling where the session has one; then the trial-level classifiers.
    The best mean R2, and the best decoder of each feature, are bold.
    """
    session = str(ds.attrs.get("session_id", ""))
    decoders = [str(d) for d in ds.decoder.values]
    folds = [int(k) for k in ds.fold.values]
    r2_fold = ds.r2.mean("feature")  # (decoder, fold)
    mean_r2 = r2_fold.mean("fold").values
    scored = np.isfinite(ds.target.values).any(1)
    missing = json.loads(ds.attrs.get("missing_targets", "{}"))
    parts = [
        f"<h3>{html.escape(session)}: decoders on identical folds</h3>",
        "<p>"
        + html.escape(
            f"{len(folds)} folds split by {ds.attrs.get('grouping', 'trial')}; "
            f"{int(scored.sum()):,} held-out bins of {ds.attrs.get('bin_size_s', '?')} s "
            "scored; bins without behaviour, neither trained on nor scored: "
            + (", ".join(f"{k} {v:,}" for k, v in missing.items()) or "none")
        )
        + "</p>",
    ]
    header = ["decoder", "mean R2", "sd over folds"]
    header += [f"R2 fold {k}" for k in folds]
    header += ["RMSE", "Pearson r", "fit s per fold", "lag s (per fold)"]
    best = int(np.nanargmax(mean_r2))
    lag = ds.lag_s
    if "decoder" not in lag.dims:  # written before lags were chosen per decoder
        lag = lag.expand_dims(decoder=ds.decoder)
    rows = []
    for i, name in enumerate(decoders):
        r = r2_fold.sel(decoder=name).values
        rows.append(
            [html.escape(name), _num(mean_r2[i], i == best), _num(float(np.std(r, ddof=1)))]
            + [_num(v) for v in r]
            + [
                _num(float(ds.rmse.sel(decoder=name).mean())),
                _num(float(ds.pearson_r.sel(decoder=name).mean())),
                # marked: it differs between any two runs (tests/outputs.py ignores it)
                '<span class="wall-clock">'
                f"{_num(float(ds.fit_seconds.sel(decoder=name).mean()), digits=1)}</span>",
                ", ".join(f"{v:g}" for v in lag.sel(decoder=name).values),
            ]
        )
    if "ceiling_r2" in ds:
        ceiling = float(ds.ceiling_r2.mean())
        rows.append(["ceiling (true latents)", _num(ceiling)] + ["-"] * (len(header) - 2))
    parts.append(_table(header, rows))
    parts.append(
        "<p>R2 and Pearson r per fold are means over features; sd is over folds "
        "(ddof 1). RMSE is in each feature's own units, averaged. Lag: of behaviour after "
        "the activity a decoder reads, chosen on the training folds.</p>"
    )
    if ds.sizes["feature"] > 1 or "ceiling_r2" in ds:
        mean, sd = ds.r2.mean("fold"), ds.r2.std("fold", ddof=1)
        header = ["feature", *map(html.escape, decoders)]
        if "ceiling_r2" in ds:
            header.append("ceiling")
        rows = []
        for f in ds.feature.values:
            m = mean.sel(feature=f).values
            top = int(np.nanargmax(m))
            row = [html.escape(str(f))] + [
                f"{_num(v, d == top)} &plusmn; {_num(e)}"
                for d, (v, e) in enumerate(zip(m, sd.sel(feature=f).values, strict=True))
            ]
            if "ceiling_r2" in ds:
                row.append(_num(float(ds.ceiling_r2.sel(feature=f))))
            rows.append(row)
        parts.append("<p>R2 per feature (mean &plusmn; sd over folds):</p>")
        parts.append(_table(header, rows))
    names = _categorical_names(ds)
    if names:
        rows = []
        for name in names:
            for model in ds.model.values:
                acc = ds[f"{name}_balanced_accuracy"].sel(model=model).values
                rows.append(
                    [
                        html.escape(f"{name} ({model})"),
                        _num(float(np.nanmean(acc))),
                        _num(float(ds[f"{name}_chance"].sel(model=model))),
                        _num(float(ds[f"{name}_p_value"].sel(model=model))),
                    ]
                )
        parts.append("<p>Trial variables (balanced accuracy over held-out trials):</p>")
        parts.append(_table(["variable", "balanced accuracy", "permutation chance", "p"], rows))
    return _page(f"{session}: decoding", "".join(parts))


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
    bin_s = float(ds.attrs.get("bin_size_s", np.median(np.diff(t)) if t.size > 1 else 1.0))
    for ax, name in zip(axes[:, 0], features, strict=True):
        truth = ds.target.sel(feature=name).values
        ax.plot(*with_gaps(t[sel], truth[sel], bin_s), color="k", lw=1.2, label="behaviour")
        for decoder in ds.decoder.values:
            pred = ds.prediction.sel(decoder=decoder, feature=name).values[sel]
            ax.plot(*with_gaps(t[sel], pred, bin_s), lw=0.9, label=str(decoder))
        ax.set_ylabel(str(name), fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=5, frameon=False, loc="upper left")
    axes[-1, 0].set_xlabel("time (s); gaps: bins outside the held-out trials")
    fig.suptitle(f"{ds.attrs.get('session_id', '')}: held-out predictions (fold 0)", fontsize=10)
    fig.tight_layout()
    return fig


def with_gaps(t: np.ndarray, y: np.ndarray, bin_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``t`` and ``y`` with a NaN inserted wherever time jumps by more than 1.5 bins.

    Held-out bins are whole trials with other trials between them; a NaN between two
    runs of bins keeps a line plot from drawing a straight segment across the gap.
    """
    jumps = np.flatnonzero(np.diff(t) > 1.5 * bin_s) + 1
    return (
        np.insert(np.asarray(t, dtype=float), jumps, np.nan),
        np.insert(np.asarray(y, dtype=float), jumps, np.nan),
    )


def _categorical_names(ds: xr.Dataset) -> list[str]:
    suffix = "_balanced_accuracy"
    return [str(v)[: -len(suffix)] for v in ds.data_vars if str(v).endswith(suffix)]


def _r2(ds: xr.Dataset) -> plt.Figure:
    decoders = [str(d) for d in ds.decoder.values]
    features = [str(f) for f in ds.feature.values]
    mean, sd = ds.r2.mean("fold"), ds.r2.std("fold")
    categorical = _categorical_names(ds)
    width_r2 = max(6.0, 1.1 * len(features) + 2)
    if categorical:
        fig, (ax, ax_c) = plt.subplots(
            1,
            2,
            figsize=(width_r2 + 1.2 + 0.6 * len(categorical), 4),
            gridspec_kw={"width_ratios": [width_r2, 1.2 + 0.6 * len(categorical)]},
        )
        _categorical_panel(ds, categorical, ax_c)
    else:
        fig, ax = plt.subplots(figsize=(width_r2, 4))
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


def _categorical_panel(ds: xr.Dataset, names: list[str], ax) -> None:
    """Balanced accuracy per fold (dots) and its mean (bar) against the permutation null."""
    x = np.arange(len(names))
    for i, name in enumerate(names):
        acc = ds[f"{name}_balanced_accuracy"].values.ravel()
        ax.bar(i, np.nanmean(acc), 0.6, color="tab:purple", alpha=0.6)
        ax.scatter(np.full(acc.size, i), acc, color="tab:purple", s=12, zorder=3)
        chance = float(ds[f"{name}_chance"].values.ravel()[0])
        q95 = float(ds[f"{name}_chance_q95"].values.ravel()[0])
        ax.hlines(chance, i - 0.4, i + 0.4, color="k", label="chance" if i == 0 else None)
        ax.hlines(
            q95, i - 0.4, i + 0.4, color="k", ls=":", label="95 % of null" if i == 0 else None
        )
        p = float(ds[f"{name}_p_value"].values.ravel()[0])
        ax.text(i, 1.01, f"p={p:.2g}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("balanced accuracy (held-out trials)")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax.set_title("trial variables", fontsize=10)


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
    if trained:
        ax.legend(fontsize=7, frameon=False)
    else:
        ax.text(0.5, 0.5, "no decoder trained by epochs", ha="center", transform=ax.transAxes)
    ax.set_title(f"{ds.attrs.get('session_id', '')}: learning curves, every fold", fontsize=10)
    fig.tight_layout()
    return fig


def decoding_summary_figure(summary_nc: str | Path, output_dir: str | Path) -> list[Path]:
    """Write ``decoding.png`` (mean R2 per decoder and session) and ``decoding_table.html``."""
    ds = read_dataset(summary_nc, schema="neuroseq.summary.decoding/1")
    out = Path(output_dir)
    return [
        _summary_bars(ds, out / "decoding.png"),
        write_html(decoding_summary_table(ds), out / "decoding_table.html"),
    ]


def decoding_summary_table(ds: xr.Dataset) -> str:
    """Mean R2 (over features and folds) per session and decoder, as an HTML page."""
    decoders = [str(d) for d in ds.decoder.values]
    header = ["session", *map(html.escape, decoders)]
    has_ceiling = "ceiling_r2" in ds
    if has_ceiling:
        header.append("ceiling")
    rows = []
    for session in ds.session.values:
        m = ds.mean_r2.sel(session=session).values
        top = int(np.nanargmax(m)) if np.isfinite(m).any() else -1
        row = [html.escape(str(session))] + [_num(v, d == top) for d, v in enumerate(m)]
        if has_ceiling:
            row.append(_num(float(ds.ceiling_r2.sel(session=session).mean())))
        rows.append(row)
    body = (
        "<p>Held-out R2 per session and decoder: mean over behaviour features and folds "
        "(the best of each session bold); ceiling: ridge readout of the true latents, on "
        "simulated sessions only.</p>" + _table(header, rows)
    )
    return _page("decoders across sessions", body)


def _summary_bars(ds: xr.Dataset, path: Path) -> Path:
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
    return save_figure(fig, path)
