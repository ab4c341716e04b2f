"""Read and validate the one YAML config shared by the workflow and the CLI."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from neuroseq.errors import InputError

SCHEMA_PATH = Path(str(files("neuroseq") / "schemas" / "config.schema.yaml"))


def config_schema() -> dict[str, Any]:
    """Return the config JSON Schema (draft 2020-12) as a dict."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _with_defaults(validator_class: type) -> type:
    # jsonschema validates but never fills defaults; this is the extension its docs describe,
    # so the CLI fills exactly the defaults Snakemake's `validate(..., set_default=True)` fills.
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def validate_config(config: Mapping[str, Any], source: object = "config") -> dict[str, Any]:
    """Validate a config mapping and return a copy with every default filled in.

    Raises
    ------
    InputError
        Naming the offending key, what the schema expects and the value found.
    """
    filled = copy.deepcopy(dict(config))
    errors = sorted(_Validator(config_schema()).iter_errors(filled), key=lambda e: e.path)
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise InputError(source, f"config key {key}", _expected(err), err.message)
    return filled


def _expected(err: jsonschema.ValidationError) -> str:
    v = err.validator_value
    words = {
        "additionalProperties": lambda: (
            "only the keys " + ", ".join(sorted(err.schema.get("properties", {})))
        ),
        "type": lambda: f"type {v}",
        "enum": lambda: f"one of {v}",
        "minimum": lambda: f"a number >= {v}",
        "exclusiveMinimum": lambda: f"a number > {v}",
        "maximum": lambda: f"a number <= {v}",
        "pattern": lambda: f"text matching {v!r}",
        "required": lambda: f"the keys {v}",
    }
    return words.get(err.validator, lambda: f"a value satisfying {err.validator!r}")()


def load_config(path: str | Path | None) -> dict[str, Any]:
    """Load a YAML config (or the defaults when ``path`` is None) and validate it."""
    if path is None:
        return validate_config({})
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file", "an existing YAML file", "no such file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(path, "config file", "valid YAML", str(exc).splitlines()[0]) from exc
    if not isinstance(raw, dict):
        raise InputError(path, "config file", "a mapping at top level", type(raw).__name__)
    return validate_config(raw, source=path)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def session_id_pattern() -> str:
    """The pattern every session id matches (from the config schema): a file-name part."""
    return config_schema()["properties"]["sessions"]["propertyNames"]["pattern"]


def check_session_id(session_id: str, source: object = "--session") -> str:
    """Return ``session_id`` if it is a safe file-name part, else raise InputError.

    Session ids name directories, files and jobs, so they may hold letters, digits and
    ``_ . -`` only, start with a letter or digit, and never contain ``..`` or a separator.
    """
    pattern = session_id_pattern()
    if not isinstance(session_id, str) or not re.match(pattern, session_id):
        raise InputError(source, "session id", f"text matching {pattern!r}", repr(session_id))
    return session_id


def session_path(config: Mapping[str, Any], session_id: str) -> str:
    """Return the input file configured for ``session_id``."""
    entry = _session_entry(config, session_id)
    return entry if isinstance(entry, str) else entry["path"]


def ingest_options(config: Mapping[str, Any], session_id: str | None = None) -> dict[str, Any]:
    """Return the `ingest` section, with the session's own overrides merged in."""
    ingest = copy.deepcopy(config["ingest"])
    if session_id is None or session_id not in config["sessions"]:
        return ingest
    entry = _session_entry(config, session_id)
    if isinstance(entry, str) or not entry.get("ingest"):
        return ingest
    merged = validate_config(
        {"ingest": _merge(ingest, entry["ingest"])}, source=f"config sessions.{session_id}.ingest"
    )
    return merged["ingest"]


def _session_entry(config: Mapping[str, Any], session_id: str) -> Any:
    try:
        return config["sessions"][session_id]
    except KeyError:
        known = ", ".join(sorted(config["sessions"])) or "none"
        raise InputError(
            "config", "sessions", f"a session id among: {known}", repr(session_id)
        ) from None
