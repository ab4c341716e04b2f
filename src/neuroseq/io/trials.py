"""Trial tables (NWB interval tables or CSV files) -> standard trial-level variables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from neuroseq.errors import InputError

#: Session variable -> (dtype kind, units) of the standard trial-level variables.
TRIAL_VARIABLES = {
    "start_time": ("f", "s"),
    "stop_time": ("f", "s"),
    "stimulus": ("f", "1"),
    "choice": ("i", "1"),
    "condition": ("U", ""),
    "reward_left": ("f", "1"),
    "reward_right": ("f", "1"),
}

CHOICE_CODE = {"right": 1, "left": 0, "no_response": -1}


def standardize_trials(
    table: pd.DataFrame,
    *,
    source: object,
    table_name: str,
    columns: Mapping[str, str | None],
    choice_coding: Mapping[str, Sequence[Any]],
    stimulus_coding: Mapping[Any, float] | None = None,
    stimulus_scale: float = 1.0,
    extra_columns: Sequence[str] = (),
    where: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Map a lab's trial table onto the standard trial variables of ``session.nc``.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per trial.
    source, table_name : str
        File and table, for error messages.
    columns : mapping
        Standard variable (``stimulus``, ``choice``, ...) -> column of ``table``; None
        leaves the variable out.
    choice_coding : mapping
        ``right`` / ``left`` / ``no_response`` -> raw values of the choice column.
    stimulus_coding : mapping, optional
        Raw stimulus value -> signed evidence, for categorical stimulus columns.
    stimulus_scale : float
        Multiplies the (coded) stimulus, e.g. -1 to flip a sign convention.
    extra_columns : sequence of str
        Further columns kept under their own names.
    where : mapping, optional
        Keep rows whose column equals the value (compared as text).

    Returns
    -------
    xarray.Dataset
        Variables along ``trial``, coordinate ``trial`` = the table's index.
    """
    field = f"{table_name}"
    table = _select(table, where or {}, source, field)
    wanted = {var: col for var, col in columns.items() if col is not None}
    for col in [*wanted.values(), *extra_columns]:
        if col not in table.columns:
            raise InputError(
                source,
                f"{field}.{col}",
                f"a column named {col!r} (set in config "
                "ingest.trials.columns or extra_columns; null leaves it out)",
                f"columns {sorted(map(str, table.columns))}",
            )
    clash = set(extra_columns) & set(TRIAL_VARIABLES)
    if clash:
        raise InputError(
            "config",
            "ingest.trials.extra_columns",
            "names other than the standard variables",
            sorted(clash),
        )
    out: dict[str, xr.DataArray] = {}
    for var, col in wanted.items():
        raw = table[col]
        where_ = f"{field}.{col}"
        if var == "choice":
            values = code_choices(raw, choice_coding, source, where_)
        elif var == "condition":
            values = raw.astype(str).to_numpy(dtype=str)
        elif var == "stimulus":
            values = _stimulus(raw, stimulus_coding, source, where_) * stimulus_scale
        else:
            values = _finite_floats(raw, source, where_)
        kind, units = TRIAL_VARIABLES[var]
        out[var] = xr.DataArray(
            values,
            dims="trial",
            attrs={"units": units, "source_column": col}
            if kind != "U"
            else {"source_column": col},
        )
    for col in extra_columns:
        values = table[col].to_numpy()
        if values.dtype == object:
            values = table[col].astype(str).to_numpy(dtype=str)
        out[col] = xr.DataArray(
            values,
            dims="trial",
            attrs={
                "source_column": col,
                **({"units": "1"} if values.dtype.kind in "iufb" else {}),
            },
        )
    if "start_time" in out and "stop_time" in out:
        bad = np.flatnonzero(out["stop_time"].values < out["start_time"].values)
        if bad.size:
            raise InputError(
                source,
                f"{field}.{wanted['stop_time']}",
                "stop_time >= start_time on every trial",
                f"{bad.size} trials ending before they start (first: row {bad[0]})",
            )
    return xr.Dataset(out, coords={"trial": np.asarray(table.index, dtype=np.int64)})


def _select(table: pd.DataFrame, where: Mapping[str, Any], source: object, field: str):
    for col, value in where.items():
        if col not in table.columns:
            raise InputError(
                source,
                f"{field}.{col}",
                "a column named in ingest.trials.where",
                f"columns {sorted(map(str, table.columns))}",
            )
        table = table[table[col].astype(str) == str(value)]
    if table.empty:
        raise InputError(
            source,
            field,
            "at least one trial" + (f" matching {dict(where)}" if where else ""),
            "no rows",
        )
    return table


def code_choices(
    raw: pd.Series, coding: Mapping[str, Sequence[Any]], source: object, field: str
) -> np.ndarray:
    """Map raw choice values to 1 (right), 0 (left), -1 (no response); raise on any other."""
    code = np.full(len(raw), 99, dtype=np.int8)
    key = _comparable(raw)
    for name, values in coding.items():
        for value in values:
            match = key.isna() if value is None else key == _comparable(pd.Series([value]))[0]
            code[match.to_numpy()] = CHOICE_CODE[name]
    bad = code == 99
    if bad.any():
        found = raw[bad].astype(str).value_counts().to_dict()
        expected = {k: list(v) for k, v in coding.items()}
        raise InputError(
            source,
            field,
            f"choice values in the configured coding {expected} "
            "(config ingest.trials.choice_coding)",
            f"{int(bad.sum())} other values {found}",
        )
    return code


def _comparable(values: pd.Series) -> pd.Series:
    # Compare numbers as numbers (1 == 1.0 == "1") and everything else as text.
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum():
        return numeric.astype(float)
    return values.astype(str).where(values.notna())


def _stimulus(
    raw: pd.Series, coding: Mapping[Any, float] | None, source: object, field: str
) -> np.ndarray:
    if coding is None:
        return _finite_floats(raw, source, field)
    key = _comparable(raw)
    out = np.full(len(raw), np.nan)
    for value, signed in coding.items():
        out[(key == _comparable(pd.Series([value]))[0]).to_numpy()] = float(signed)
    bad = np.isnan(out)
    if bad.any():
        raise InputError(
            source,
            field,
            f"stimulus values among {sorted(coding, key=str)} "
            "(config ingest.trials.stimulus_coding)",
            f"{raw[bad].astype(str).value_counts().to_dict()}",
        )
    return out


def _finite_floats(raw: pd.Series, source: object, field: str) -> np.ndarray:
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            source,
            field,
            "finite numbers on every trial",
            f"{int(bad.sum())} non-finite or non-numeric values (first: row "
            f"{first}: {raw.iloc[first]})",
        )
    return values
