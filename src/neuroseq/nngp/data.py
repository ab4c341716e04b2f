"""Trial-aligned population vectors and trial-level targets from a session Dataset.

Each trial becomes one sample: the spike count of every unit in a window around an
alignment time (``align``, a trial variable such as ``start_time``), and one target: a
trial variable (``choice``, ``condition``, ``stimulus``, any extra column) or a behaviour
feature averaged over the same window. Trials that cannot give a sample (no response, a
window outside the recording, no behaviour sample) are dropped and counted, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from neuroseq.errors import InputError

TASKS = ("auto", "classification", "regression")


@dataclass
class TrialData:
    """Samples of one session: counts (trial x unit), targets and what was dropped."""

    counts: np.ndarray
    target: np.ndarray
    trial: np.ndarray
    task: str
    target_units: str
    dropped: dict[str, int] = field(default_factory=dict)


def workflow_needs(target: str) -> set[str]:
    """What a session must hold (``neuroseq.io.session_contents`` names) to feed nngp.

    Sessions without units or trials are skipped by the workflow; so are sessions without
    stimulus and choice when the target is one of them. Other targets (condition, an extra
    trial column, a behaviour feature) are checked by :func:`trial_data`, which names what
    the session holds when the target is missing.
    """
    needs = {"units", "trials"}
    if target in ("choice", "stimulus"):
        needs.add("choices")
    return needs


def _window_counts(session: xr.Dataset, onsets: np.ndarray, window_s) -> tuple[np.ndarray, ...]:
    """Counts per trial and unit over bins whose centres lie in [t + a, t + b)."""
    t = session.time.values
    lo = np.searchsorted(t, onsets + window_s[0], side="left")
    hi = np.searchsorted(t, onsets + window_s[1], side="left")
    counts = session.spike_counts.values
    out = np.zeros((len(onsets), counts.shape[1]), dtype=np.float64)
    for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
        if b > a:
            out[i] = counts[a:b].sum(axis=0)
    bin_s = float(session.attrs["bin_size_s"])
    # A window reaching outside the recording would undercount: such trials are dropped.
    inside = (onsets + window_s[0] >= t[0] - bin_s / 2) & (
        onsets + window_s[1] <= t[-1] + bin_s / 2
    )
    return out, lo, hi, inside & (hi > lo)


def trial_data(
    session: xr.Dataset,
    *,
    target: str = "choice",
    align: str = "start_time",
    window_s: tuple[float, float] = (0.0, 0.5),
    task: str = "auto",
    source: object = "session",
) -> TrialData:
    """Population vectors and targets of one session's trials.

    Parameters
    ----------
    session : xarray.Dataset
        A ``neuroseq.session/1`` Dataset with units and trials.
    target : str
        A trial variable (``choice`` drops no-response trials) or a behaviour feature
        (averaged over the window; trials without a sample are dropped).
    align : str
        Trial variable (s) the window is relative to.
    window_s : (float, float)
        Window ``[a, b)`` after ``align`` (s); bins count when their centre lies inside.
    task : {"auto", "classification", "regression"}
        ``auto``: behaviour features and float trial variables with more than 12 distinct
        values are regression; ``choice``, text and integer variables classification.
    """
    if "unit" not in session.dims or "spike_counts" not in session:
        raise InputError(
            source, "spike_counts", "a session with units (nngp decodes from spikes)", "no units"
        )
    if "trial" not in session.dims:
        raise InputError(source, "trial", "a session with trials", "no trial dimension")
    if align not in session or session[align].dims != ("trial",):
        raise InputError(
            source, f"nngp.align={align!r}", "a trial variable (s)", _trial_vars(session)
        )
    if task not in TASKS:
        raise InputError(source, "nngp.task", f"one of {list(TASKS)}", repr(task))
    a, b = (float(v) for v in window_s)
    if not (np.isfinite(a) and np.isfinite(b) and b > a):
        raise InputError(source, "nngp.window_s", "[start, stop] with stop > start", f"{window_s}")
    onsets = np.asarray(session[align].values, dtype=np.float64)
    keep = np.isfinite(onsets)
    dropped = {"no_alignment_time": int((~keep).sum())}
    counts, lo, hi, inside = _window_counts(session, np.where(keep, onsets, 0.0), (a, b))
    dropped["window_outside_recording"] = int((keep & ~inside).sum())
    keep &= inside
    units = "count"
    if target in session.data_vars and session[target].dims == ("trial",):
        y = session[target].values
        if target == "choice":
            responded = y >= 0
            dropped["no_response"] = int((keep & ~responded).sum())
            keep &= responded
        elif y.dtype.kind == "f":
            finite = np.isfinite(y)
            dropped["target_not_finite"] = int((keep & ~finite).sum())
            keep &= finite
        units = str(session[target].attrs.get("units", "1"))
        auto = (
            "regression"
            if y.dtype.kind == "f" and len(np.unique(y[keep])) > 12
            else "classification"
        )
        if target == "choice":
            auto = "classification"
    elif "feature" in session.dims and target in session.feature.values:
        series = session.behavior.sel(feature=target).values
        y = np.full(len(onsets), np.nan)
        for i in np.flatnonzero(keep):
            part = series[lo[i] : hi[i]]
            if np.isfinite(part).any():
                y[i] = np.nanmean(part)
        dropped["no_behavior_sample"] = int((keep & ~np.isfinite(y)).sum())
        keep &= np.isfinite(y)
        if "feature_units" in session.coords:
            units = str(session.feature_units.sel(feature=target).values)
        auto = "regression"
    else:
        features = [str(f) for f in session.feature.values] if "feature" in session.dims else []
        raise InputError(
            source,
            f"nngp.target={target!r}",
            "a trial variable or a behaviour feature",
            f"trial variables {_trial_vars(session)}; features {features}",
        )
    chosen = auto if task == "auto" else task
    if chosen == "regression":
        if y.dtype.kind not in "iuf":
            raise InputError(
                source, f"nngp.target={target!r}", "numbers for regression", str(y.dtype)
            )
        y = y.astype(np.float64)
    return TrialData(
        counts=counts[keep],
        target=y[keep],
        trial=np.asarray(session.trial.values)[keep],
        task=chosen,
        target_units=units if chosen == "regression" else "1",
        dropped={k: v for k, v in dropped.items() if v},
    )


def _trial_vars(session: xr.Dataset) -> str:
    return str(sorted(str(k) for k, v in session.data_vars.items() if v.dims == ("trial",)))
