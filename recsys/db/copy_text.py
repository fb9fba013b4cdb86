"""PostgreSQL text-format COPY fields, for payloads with variable-length text (keys).

See https://www.postgresql.org/docs/current/sql-copy.html (Text Format) and
https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO for array literals.
"""

from __future__ import annotations

from typing import Iterable

NULL = "\\N"


def copy_text_field(value: str | None) -> str:
    """One field of COPY's text format: backslash, tab and line ends escaped; None is NULL."""
    if value is None:
        return NULL
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def array_element(value: str | None) -> str:
    """One element of an array literal, double-quoted (so commas, braces and spaces are kept); None is NULL."""
    if value is None:
        return "NULL"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(elements: Iterable[str]) -> str:
    """`{e1,e2,...}` from elements already passed through `array_element`."""
    return "{" + ",".join(elements) + "}"
