"""Per-session status records: what a step made of one session, and why it failed.

The workflow's ingest step writes one small JSON record per session next to its
``session.nc``: ``ok`` with what the session holds, or ``failed`` with the bad-input error
(file, field, expected, found). The workflow reads the records to run the analyses only on
the sessions that ingested, to fail that session's own job with the recorded message, and
to put a table of every session's outcome into the report; a run with ``--keep-going``
thus finishes every other session and the summaries across them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import neuroseq
from neuroseq.errors import InputError

SCHEMA = "neuroseq.status/1"
STATES = ("ok", "failed")
_KEYS = ("neuroseq_schema", "session_id", "step", "status", "source", "contents", "error")


def write_status(
    path: str | Path,
    *,
    session_id: str,
    step: str,
    source: str,
    contents: Iterable[str] = (),
    groups: Mapping[str, Sequence[str]] | None = None,
    error: InputError | None = None,
) -> Path:
    """Write a session's status record atomically (temporary file, then rename).

    Parameters
    ----------
    path : str or Path
        The JSON file to write.
    session_id, step, source : str
        The session, the workflow step (e.g. ``"ingest"``) and the file or URL it read.
    contents : iterable of str
        What the session holds (:func:`neuroseq.io.session_contents`), when it succeeded.
    groups : mapping, optional
        Its brain regions and behaviour groups (:func:`neuroseq.io.output.session_groups`),
        so the workflow can plan oi-VAE without opening the session.
    error : InputError, optional
        The bad-input error that stopped the step; the record is then ``failed``.
    """
    from neuroseq.io.output import atomic_write

    record = {
        "neuroseq_schema": SCHEMA,
        "neuroseq_version": neuroseq.__version__,
        "session_id": session_id,
        "step": step,
        "status": "failed" if error is not None else "ok",
        "source": str(source),
        "contents": sorted(contents),
        "groups": {k: list(v) for k, v in (groups or {}).items()},
        "error": None
        if error is None
        else {
            "message": str(error),
            "source": error.source,
            "field": error.field,
            "expected": error.expected,
            "found": error.found,
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "w") as fh:
        json.dump(record, fh, indent=1, sort_keys=True)
    return path


def read_status(path: str | Path) -> dict[str, Any]:
    """Read and check a status record.

    Raises
    ------
    InputError
        When the file is missing, not JSON, or not a ``neuroseq.status/1`` record.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "file", "a status record", "no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, "file", "a JSON status record", str(exc)) from exc
    if not isinstance(record, dict) or record.get("neuroseq_schema") != SCHEMA:
        found = record.get("neuroseq_schema") if isinstance(record, dict) else record
        raise InputError(path, "neuroseq_schema", repr(SCHEMA), repr(found))
    missing = [k for k in _KEYS if k not in record]
    if missing:
        raise InputError(path, "keys", f"the keys {list(_KEYS)}", f"{missing} missing")
    if record["status"] not in STATES:
        raise InputError(path, "status", f"one of {list(STATES)}", repr(record["status"]))
    return record


def status_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    """One line per record: ``session  step  ok|FAILED  what / why``."""
    lines = []
    for r in records:
        if r["status"] == "ok":
            what = "holds " + (", ".join(r["contents"]) or "nothing")
            lines.append(f"{r['session_id']}\t{r['step']}\tok\t{what}")
        else:
            lines.append(f"{r['session_id']}\t{r['step']}\tFAILED\t{r['error']['message']}")
    return lines


def status_html(records: Sequence[dict[str, Any]]) -> str:
    """A self-contained HTML page with one row per session (the report's status table)."""
    n_failed = sum(r["status"] == "failed" for r in records)
    rows = []
    for r in records:
        failed = r["status"] == "failed"
        if failed:
            e = {k: html.escape(str(r["error"][k])) for k in ("field", "expected", "found")}
            detail = (
                f"<b>{e['field']}</b>: expected {e['expected']}; found {e['found']}"
                f"<br><small>{html.escape(r['error']['source'])}</small>"
            )
        else:
            detail = html.escape(", ".join(r["contents"]) or "nothing")
        colour = "#fde0dc" if failed else "#e6f4ea"
        rows.append(
            f'<tr style="background:{colour}"><td>{html.escape(r["session_id"])}</td>'
            f"<td>{html.escape(r['step'])}</td><td>{'failed' if failed else 'ok'}</td>"
            f"<td>{detail}</td><td><small>{html.escape(r['source'])}</small></td></tr>"
        )
    head = f"{len(records)} sessions, {n_failed} failed" + (
        " (their analyses were not run; fix the input and run again)" if n_failed else ""
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Sessions</title></head>"
        "<body style='font-family:sans-serif'>"
        f"<p>{html.escape(head)}</p>"
        "<table border='1' cellpadding='4' style='border-collapse:collapse'>"
        "<tr><th>session</th><th>step</th><th>status</th><th>holds / error</th>"
        "<th>source</th></tr>" + "".join(rows) + "</table></body></html>\n"
    )


def status_frame(records: Sequence[dict[str, Any]]):
    """The records as a table (one row per session), e.g. for ``status.csv``."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "session": r["session_id"],
                "step": r["step"],
                "status": r["status"],
                "contents": " ".join(r["contents"]),
                "error": r["error"]["message"] if r["error"] else "",
                "source": r["source"],
            }
            for r in records
        ],
        columns=["session", "step", "status", "contents", "error", "source"],
    )
