"""Replace one source's rows of `interactions` and `items`, with COPY, in one transaction.

A loader hands over pandas frames: one frame, or an iterator of chunks in event-time
order (the simulator yields one per day). Each chunk is checked, written as CSV and
streamed through `COPY ... FROM STDIN`, so a large load never exists as one string and
never goes through row-by-row INSERT. Rows go in event-time order because the table's
BRIN index on `event_time` only helps when the physical order follows time.

Every row of `interactions` and `items` carries the `source` that wrote it. The rows of
that source are deleted first, in the same transaction, so re-running a load replaces
its rows instead of duplicating them, and a failed load leaves the old rows in place.
"""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import psycopg2

from recsys.config import Settings
from recsys.db.engine import copy_in, load_sql, raw_connection, require_tables
from recsys.errors import DataValidationError

logger = logging.getLogger(__name__)

INTERACTION_COLUMNS: tuple[str, ...] = (
    "event_time", "user_id", "item_id", "event_type", "value", "session_id", "model_version", "propensity",
)
REQUIRED_INTERACTION_COLUMNS: tuple[str, ...] = ("event_time", "user_id", "item_id", "event_type")
ITEM_COLUMNS: tuple[str, ...] = ("item_id", "title", "topic", "attributes")
EVENT_TYPES: tuple[str, ...] = ("impression", "click", "consume")
CHUNK_ROWS = 200_000  # rows per CSV chunk: bounds memory, keeps COPY streaming

_MAX_EXACT_INT = 2.0**53  # whole floats below this print as integers ("4", not "4.0")


def replace_source_rows(
    settings: Settings,
    source: str,
    interactions: pd.DataFrame | Iterable[pd.DataFrame],
    items: pd.DataFrame | None = None,
) -> int:
    """Delete the rows of `source` and write the given ones, in one transaction.

    Args:
        settings: database URL and schema.
        source: value of the `source` column of every row written; rows of
            `interactions` and `items` with this source are deleted first.
        interactions: a frame, or an iterator of frames in event-time order (each
            chunk starting no earlier than the previous one ended; rows inside a chunk
            are sorted here). Columns: `event_time` (timezone-aware), `user_id`,
            `item_id`, `event_type` (one of EVENT_TYPES), and optionally `value`,
            `session_id`, `model_version`, `propensity` (missing or NaN means NULL).
        items: optional frame with `item_id` and any of `title`, `topic`,
            `attributes` (dict or JSON text). An item another source already
            described takes this load's description (logged as a warning), since
            `items` is keyed by `item_id` alone. Without `items`, the source's old
            items are still deleted.

    Returns:
        Number of interaction rows written.

    Raises:
        SchemaMissingError: `interactions` or `items` does not exist in the schema.
        DataValidationError: a column is missing, unknown, of the wrong type, or
            breaks a rule of the table; nothing is written then.
    """
    start = time.perf_counter()
    frames = [interactions] if isinstance(interactions, pd.DataFrame) else interactions
    items_csv = _items_csv(items, source) if items is not None and not items.empty else None
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "interactions", "items")
        # Two loads of one source at once would each delete only the rows committed before
        # they started, and both sets of new rows would survive: serialise them.
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"recsys.loaders:{settings.schema}:{source}",),
        )
        cur.execute("SET LOCAL client_encoding TO 'UTF8'")  # plumbing, inline: the CSV below is UTF-8
        cur.execute(load_sql("loaders/interactions_delete_source"), {"source": source})
        deleted = cur.rowcount
        reader = ChunkReader(_interaction_chunks(frames, source))
        try:
            copy_in(cur, "interactions", [*INTERACTION_COLUMNS, "source"], reader)
        except psycopg2.Error:
            # psycopg2 reports an exception raised while reading the data as a cancelled
            # COPY; raise the loader's own error (e.g. DataValidationError) instead.
            if reader.error is not None:
                raise reader.error from None
            raise
        cur.execute(load_sql("loaders/items_delete_source"), {"source": source})
        if items_csv is not None:
            _upsert_items(cur, source, items_csv)
    logger.info(
        "source %s: replaced %d interactions with %d, and wrote %d items, in %.1f s",
        source, deleted, reader.rows, 0 if items is None else len(items), time.perf_counter() - start,
    )
    return reader.rows


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of (CSV bytes, row count) chunks, for COPY FROM STDIN.

    Counts the rows handed out in `rows`, and keeps in `error` an exception the
    iterator raised (psycopg2 replaces it by its own error).
    """

    def __init__(self, chunks: Iterator[tuple[bytes, int]]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")
        self.rows = 0
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - buffer protocol object
        while not self._pending:
            try:
                chunk = next(self._chunks, None)
            except Exception as exc:
                self.error = exc
                raise
            if chunk is None:
                return 0
            self._pending = memoryview(chunk[0])
            self.rows += chunk[1]
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _interaction_chunks(frames: Iterable[pd.DataFrame], source: str) -> Iterator[tuple[bytes, int]]:
    """Check each frame, sort it by time, and yield it as (CSV bytes, rows) of at most CHUNK_ROWS."""
    source_csv = _quote(source)
    previous_end: int | None = None
    for frame in frames:
        _check_columns(frame, "interactions", INTERACTION_COLUMNS, REQUIRED_INTERACTION_COLUMNS)
        if frame.empty:
            continue
        times = _event_time_us(frame["event_time"])
        if np.any(times[1:] < times[:-1]):
            order = np.argsort(times, kind="stable")
            frame, times = frame.iloc[order], times[order]
        if previous_end is not None and times[0] < previous_end:
            raise DataValidationError(
                "interactions", "event_time",
                f"chunk starting at {_iso(times[0])} comes after a chunk ending at {_iso(previous_end)}: "
                "chunks must be passed in time order",
            )
        previous_end = int(times[-1])
        for lo in range(0, len(frame), CHUNK_ROWS):
            part, part_times = frame.iloc[lo:lo + CHUNK_ROWS], times[lo:lo + CHUNK_ROWS]
            yield _csv([
                np.datetime_as_string(part_times.view("datetime64[us]"), unit="us", timezone="UTC").tolist(),
                _ints(part, "interactions", "user_id", nullable=False, non_negative=True),
                _ints(part, "interactions", "item_id", nullable=False, non_negative=True),
                _texts(part, "interactions", "event_type", nullable=False, allowed=EVENT_TYPES),
                _floats(part, "interactions", "value"),
                _ints(part, "interactions", "session_id", nullable=True, non_negative=False),
                _texts(part, "interactions", "model_version", nullable=True),
                _floats(part, "interactions", "propensity", unit_interval=True),
                [source_csv] * len(part),
            ]), len(part)


def _items_csv(items: pd.DataFrame, source: str) -> bytes:
    """CSV of `items` rows (ITEM_COLUMNS, then source), checked before anything is written."""
    _check_columns(items, "items", ITEM_COLUMNS, ("item_id",))
    duplicated = items["item_id"].duplicated()
    if duplicated.any():
        raise DataValidationError("items", "item_id", f"item {items['item_id'][duplicated].iloc[0]!s} appears twice")
    if "attributes" in items:
        items = items.assign(attributes=items["attributes"].map(_json_text))
    else:
        items = items.assign(attributes="{}")
    return _csv([
        _ints(items, "items", "item_id", nullable=False, non_negative=True),
        _texts(items, "items", "title", nullable=True),
        _texts(items, "items", "topic", nullable=True),
        _texts(items, "items", "attributes", nullable=False),
        [_quote(source)] * len(items),
    ])


def _upsert_items(cur, source: str, csv: bytes) -> None:  # noqa: ANN001 - psycopg2 cursor
    """COPY items into a temp table, then upsert them: `items` is keyed by item_id alone."""
    cur.execute(load_sql("loaders/items_load_create"))
    copy_in(cur, "items_load", [*ITEM_COLUMNS, "source"], io.BytesIO(csv))
    cur.execute(load_sql("loaders/items_taken_over"))
    taken_over = cur.fetchone()[0]
    if taken_over:
        logger.warning("%d items described by another source now take the description of %s", taken_over, source)
    cur.execute(load_sql("loaders/items_upsert"))


def _json_text(attributes: object) -> str:
    """JSON text of an `attributes` value: None is an empty object, strings are taken as JSON."""
    if attributes is None or (isinstance(attributes, float) and np.isnan(attributes)):
        return "{}"
    return attributes if isinstance(attributes, str) else json.dumps(attributes)


def _check_columns(frame: pd.DataFrame, table: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
    unknown = [c for c in frame.columns if c not in allowed]
    if unknown:
        raise DataValidationError(table, str(unknown[0]), f"unknown column (allowed: {', '.join(allowed)})")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataValidationError(table, missing[0], "required column is missing")


def _event_time_us(column: pd.Series) -> np.ndarray:
    """Microseconds since the Unix epoch (int64) of a timezone-aware column."""
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        raise DataValidationError(
            "interactions", "event_time", f"expected timezone-aware timestamps, got dtype {column.dtype}"
        )
    if column.isna().any():
        raise DataValidationError("interactions", "event_time", "missing timestamp")
    return pd.DatetimeIndex(column).as_unit("us").asi8


def _iso(us: int) -> str:
    return str(np.datetime64(int(us), "us")) + "Z"


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _csv(columns: list[list[str]]) -> bytes:
    """CSV lines of equally long columns of field texts (an empty unquoted field is NULL)."""
    return ("\n".join(map(",".join, zip(*columns))) + "\n").encode("utf-8")


def _with_nulls(present: list[str], missing: np.ndarray) -> list[str]:
    """Field texts of a whole column from those of its present values; missing ones are NULL."""
    if not missing.any():
        return present
    out = np.full(len(missing), "", dtype=object)
    out[~missing] = present
    return out.tolist()


def _ints(frame: pd.DataFrame, table: str, name: str, nullable: bool, non_negative: bool) -> list[str]:
    """Decimal text of an integer column; rejects fractions, and negative values if `non_negative`."""
    if name not in frame:
        return [""] * len(frame)
    column = frame[name]
    missing = column.isna().to_numpy()
    if missing.any() and not nullable:
        raise DataValidationError(table, name, f"missing value in row {int(np.argmax(missing))} of the chunk")
    if pd.api.types.is_integer_dtype(column.dtype):
        values = column.to_numpy(dtype=np.int64, na_value=0)
    elif pd.api.types.is_float_dtype(column.dtype):
        floats = column.to_numpy(dtype=np.float64, na_value=0.0)
        bad = ~np.isfinite(floats) | (floats != np.floor(floats))
        if bad.any():
            raise DataValidationError(table, name, f"{float(floats[bad][0])!r} is not an integer")
        values = floats.astype(np.int64)
    else:
        raise DataValidationError(table, name, f"expected integers, got dtype {column.dtype}")
    values = values[~missing]
    if non_negative and (values < 0).any():
        raise DataValidationError(table, name, f"negative value {int(values[values < 0][0])}")
    return _with_nulls(list(map(str, values.tolist())), missing)


def _floats(frame: pd.DataFrame, table: str, name: str, unit_interval: bool = False) -> list[str]:
    """Shortest round-trip text of a float column; NaN means NULL, infinities are rejected."""
    if name not in frame:
        return [""] * len(frame)
    column = frame[name]
    if not (pd.api.types.is_float_dtype(column.dtype) or pd.api.types.is_integer_dtype(column.dtype)):
        raise DataValidationError(table, name, f"expected numbers, got dtype {column.dtype}")
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    present = values[~missing]
    if np.isinf(present).any():
        raise DataValidationError(table, name, "infinite value")
    outside = (present <= 0) | (present > 1) if unit_interval else np.zeros(len(present), dtype=bool)
    if outside.any():
        raise DataValidationError(table, name, f"{float(present[outside][0])!r} is outside (0, 1]")
    if np.all((present == np.floor(present)) & (np.abs(present) < _MAX_EXACT_INT)):
        text = list(map(str, present.astype(np.int64).tolist()))  # ratings: "4", faster than "4.0"
    else:
        text = list(map(repr, present.tolist()))
    return _with_nulls(text, missing)


def _texts(
    frame: pd.DataFrame, table: str, name: str, nullable: bool, allowed: tuple[str, ...] | None = None
) -> list[str]:
    """Quoted CSV text of a column (each distinct value is quoted once); None/NaN means NULL."""
    if name not in frame:
        if not nullable:
            raise DataValidationError(table, name, "required column is missing")
        return [""] * len(frame)
    codes, uniques = pd.factorize(frame[name])
    labels = [str(u) for u in uniques]
    if allowed is not None:
        unknown = [label for label in labels if label not in allowed]
        if unknown:
            raise DataValidationError(table, name, f"{unknown[0]!r} is not one of {', '.join(allowed)}")
    if not nullable and (codes < 0).any():
        raise DataValidationError(table, name, f"missing value in row {int(np.argmax(codes < 0))} of the chunk")
    quoted = np.array([_quote(label) for label in labels] + [""], dtype=object)
    return quoted[codes].tolist()  # code -1 (missing) picks the trailing "" = NULL
