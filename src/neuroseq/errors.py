"""Errors raised on bad input: each names the file, the field, what was expected and found."""

from __future__ import annotations


class NeuroseqError(Exception):
    """Base class for errors the CLI reports as one clear line and a non-zero exit."""


class InputError(NeuroseqError, ValueError):
    """A user-supplied file or config does not hold what was expected.

    Parameters
    ----------
    source : str
        The file (or config) the problem is in.
    field : str
        The table, column, dataset or key inside it.
    expected : str
        What neuroseq expected to find.
    found : str
        What it found instead.
    """

    def __init__(self, source: object, field: str, expected: str, found: str) -> None:
        self.source = str(source)
        self.field = field
        self.expected = expected
        self.found = found
        super().__init__(f"{self.source}: {field}: expected {expected}; found {found}")


class SchemaError(NeuroseqError, ValueError):
    """A Dataset about to be written does not satisfy its output schema."""
