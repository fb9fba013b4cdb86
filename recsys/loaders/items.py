"""Load a catalogue file (CSV or TSV with a header row) into `items`.

Which column holds what is given by name (`ItemColumns`). Every line is checked
before anything is written; the first bad one raises `InputFormatError(path,
line_no, reason)`. The items are then upserted in one transaction
(recsys.loaders.catalogue): a reload updates them instead of duplicating them, and
items of earlier loads that the file leaves out stay as they are (retire an item
with `available_until`).

Keys follow the configured log (`RECSYS_SOURCE_TABLE`): when its `item_id` holds
text or uuid keys, the file's keys are text too, get internal ids from
`item_keys` (the ids a night gives the same keys) and are kept in
`items.item_key`; when it holds integers, every key must be an integer and is the
`item_id` itself. Without a log yet, keys that are all non-negative integers are
read as integer ids, anything else as text keys.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psycopg2.extensions

from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.errors import InputFormatError
from recsys.loaders.catalogue import CatalogueValue, write_catalogue
from recsys.source import assign_listed_keys, inspect_source, source_name

logger = logging.getLogger(__name__)

_INTEGER_KEY = re.compile(r"[0-9]{1,18}")  # up to 18 digits always fits bigint
_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_TIME_COLUMNS = ("published_at", "available_from", "available_until")


@dataclass(frozen=True)
class ItemColumns:
    """Header names of the file's columns, by the `items` column each one fills (None: not in the file)."""

    key: str
    title: str | None = None
    topic: str | None = None          # the category
    body: str | None = None           # the text
    published_at: str | None = None
    available_from: str | None = None
    available_until: str | None = None

    def mapped(self) -> dict[str, str]:
        """items column -> header name, for the columns the file has (key first)."""
        names = {"key": self.key, "title": self.title, "topic": self.topic, "body": self.body,
                 "published_at": self.published_at, "available_from": self.available_from,
                 "available_until": self.available_until}
        return {column: header for column, header in names.items() if header is not None}


@dataclass(frozen=True)
class ItemFile:
    """A checked catalogue file: keys in file order, their line numbers, and each mapped column's values."""

    path: str
    keys: list[str]
    lines: list[int]
    columns: dict[str, list[CatalogueValue]]   # items column -> values (None: empty cell)


def load_items(settings: Settings, path: Path, columns: ItemColumns, sep: str | None = None,
               time_format: str | None = None, source: str | None = None) -> int:
    """Upsert the items of a catalogue file, in one transaction.

    Args:
        settings: database URL, schema and the log (`source_table`) whose ids the keys follow.
        path: the CSV or TSV file; its first row names the columns.
        columns: which header names fill which `items` column.
        sep: field separator; None: from the extension (.csv comma, .tsv / .tab TAB).
        time_format: a `datetime.strptime` format for the time columns; None: ISO 8601.
            Times without a zone are read as UTC.
        source: `items.source` of the rows; default `items:<file name>`.

    Returns:
        Number of items written.

    Raises:
        InputFormatError: a line is malformed, naming file, line and reason; nothing is written.
        SchemaMissingError: `items` does not exist (run `recsys db upgrade`).
        DataValidationError: the configured log has a column recsys cannot read.
    """
    start = time.perf_counter()
    path = Path(path)
    parsed = read_items(path, columns, sep, time_format)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "items", "item_keys")
        if item_keys_are_text(cur, settings, parsed):
            item_ids = assign_listed_keys(cur, settings.schema, "item", np.array(parsed.keys, dtype=object))
            keys: list[str] | None = parsed.keys
        else:
            item_ids, keys = np.array([int(k) for k in parsed.keys], dtype=np.int64), None
        written = write_catalogue(cur, source or f"items:{path.name}", item_ids, keys, parsed.columns)
    logger.info("loaded %d items from %s (%s keys) in %.1f s", written, path,
                "text" if keys is not None else "integer", time.perf_counter() - start)
    return written


def item_keys_are_text(cur: psycopg2.extensions.cursor, settings: Settings, parsed: ItemFile) -> bool:
    """Whether the file's keys are text keys (mapped through item_keys) or integer item ids.

    Raises:
        InputFormatError: the log has integer ids and a key is not a non-negative integer.
    """
    schema, table = source_name(settings)
    cur.execute(load_sql("loaders/log_exists"), {"schema": schema, "table": table})
    bad = next((i for i, key in enumerate(parsed.keys) if not _INTEGER_KEY.fullmatch(key)), None)
    if not cur.fetchone()[0]:
        logger.info("no log %s yet: the keys of %s are read as %s", settings.source_table, parsed.path,
                    "integer item ids" if bad is None else f"text keys ({parsed.keys[bad]!r} is not an integer)")
        return bad is not None
    if inspect_source(cur, settings).keyed("item_id"):
        return True
    if bad is not None:
        raise InputFormatError(parsed.path, parsed.lines[bad], (
            f"key {parsed.keys[bad]!r} is not a non-negative integer, and the log {settings.source_table} has "
            "integer item ids (the key is items.item_id); point RECSYS_SOURCE_TABLE at the log the keys belong to"))
    return False


def read_items(path: Path, columns: ItemColumns, sep: str | None = None,
               time_format: str | None = None) -> ItemFile:
    """Parse and check every line of a catalogue file (no database).

    CSV is read with RFC 4180 quoting; a TAB-separated file has no quoting (a `"`
    is a character like any other), as TSV exports write it. Empty cells are NULL.

    Raises:
        InputFormatError: the first problem, with its line number (0: the file as a
            whole, e.g. missing): a column missing from the header (naming the
            columns found), a row of the wrong width, an empty or repeated key, a
            time that does not parse, or an available_until not after available_from.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise InputFormatError(name, 0, "no such file")
    sep = _separator(path, sep)
    text = _decode(path)
    limit = csv.field_size_limit(max(len(text), 131_072))  # an article body may exceed csv's 128 KiB default
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True,
                        quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL)
    try:
        header = next(reader, None)
        if header is None:
            raise InputFormatError(name, 1, "file is empty: expected a header row naming the columns")
        positions = _header_positions(name, header, columns)
        keys: list[str] = []
        lines: list[int] = []
        values: dict[str, list[CatalogueValue]] = {column: [] for column in positions if column != "key"}
        first_line: dict[str, int] = {}
        line_no = reader.line_num
        for row in reader:
            row_line, line_no = line_no + 1, reader.line_num  # a quoted field may span lines: report the first
            if not row:
                continue  # blank line
            if len(row) != len(header):
                raise InputFormatError(name, row_line, (
                    f"expected {len(header)} fields like the header, found {len(row)}"
                    + (f" (is the separator {sep!r} right?)" if len(row) == 1 else "")))
            key = row[positions["key"]]
            if not key:
                raise InputFormatError(name, row_line, f"empty key in column {columns.key!r}")
            if key in first_line:
                raise InputFormatError(name, row_line, f"key {key!r} appears twice: lines {first_line[key]} "
                                                       f"and {row_line}")
            first_line[key] = row_line
            keys.append(key)
            lines.append(row_line)
            for column, values_of in values.items():
                cell = row[positions[column]]
                if column in _TIME_COLUMNS:
                    values_of.append(_parse_time(name, row_line, column, cell, time_format))
                else:
                    values_of.append(cell or None)
            start, end = (values[c][-1] if c in values else None for c in ("available_from", "available_until"))
            if start is not None and end is not None and not end > start:
                raise InputFormatError(name, row_line, (
                    f"available_until {end.isoformat()} is not after available_from {start.isoformat()}"))
    except csv.Error as exc:
        raise InputFormatError(name, reader.line_num, f"malformed CSV: {exc}") from None
    finally:
        csv.field_size_limit(limit)
    logger.debug("read %d items from %s", len(keys), name)
    return ItemFile(name, keys, lines, values)


def _separator(path: Path, sep: str | None) -> str:
    if sep is not None:
        sep = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(sep, sep)
        if len(sep) != 1:
            raise InputFormatError(str(path), 1, f"separator {sep!r} must be one character (or 'tab')")
        return sep
    found = _SEPARATORS.get(path.suffix.lower())
    if found is None:
        raise InputFormatError(str(path), 1, (
            f"cannot tell the separator from the extension {path.suffix or '(none)'!r}: "
            "name the file .csv or .tsv, or give --sep"))
    return found


def _decode(path: Path) -> str:
    """The file as text (UTF-8, a byte-order mark dropped); bad bytes and NULs are errors with their line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFormatError(str(path), data[:exc.start].count(b"\n") + 1,
                               f"not UTF-8: byte {data[exc.start]:#04x}") from None
    nul = text.find("\0")
    if nul >= 0:
        raise InputFormatError(str(path), text.count("\n", 0, nul) + 1,
                               "NUL character (PostgreSQL text cannot hold it)")
    return text


def _header_positions(name: str, header: list[str], columns: ItemColumns) -> dict[str, int]:
    """items column -> index in the row, from the header names."""
    found = ", ".join(repr(h) for h in header)
    positions = {}
    for column, wanted in columns.mapped().items():
        hits = [i for i, h in enumerate(header) if h == wanted]
        if not hits:
            raise InputFormatError(name, 1, f"no column {wanted!r} in the header (for {column}); found {found}")
        if len(hits) > 1:
            raise InputFormatError(name, 1, f"column {wanted!r} appears {len(hits)} times in the header")
        positions[column] = hits[0]
    return positions


def _parse_time(name: str, line_no: int, column: str, cell: str, time_format: str | None) -> datetime | None:
    """A timezone-aware time from a cell (ISO 8601, or `time_format`); zone-less times are UTC; empty is None."""
    if not cell:
        return None
    try:
        value = datetime.strptime(cell, time_format) if time_format else datetime.fromisoformat(cell)
    except ValueError:
        expected = f"the format {time_format!r}" if time_format else "ISO 8601 (e.g. 2019-11-12T14:02:00Z)"
        raise InputFormatError(name, line_no, f"{column} {cell!r} is not a time in {expected}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
