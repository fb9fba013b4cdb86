"""Write catalogue rows into `items`: COPY into a temporary table, then one upsert.

`items` is keyed by `item_id` alone and COPY cannot upsert, so the rows go into
`items_load` (shaped like `items`) first and are then merged by one
INSERT ... ON CONFLICT, in item_id order so two loads meeting the same items wait
on each other instead of deadlocking. A column the load does not carry keeps its
value on items already there (new items get NULL, or `{}` for attributes): a file
of availability windows alone does not wipe the titles. The caller owns the
transaction.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from typing import Mapping, Sequence

import numpy as np
import psycopg2.errors
import psycopg2.extensions

from recsys.db.engine import copy_in, load_sql
from recsys.errors import DataValidationError

logger = logging.getLogger(__name__)

# the columns a catalogue load may carry, besides item_id, item_key and source
CATALOGUE_COLUMNS: tuple[str, ...] = (
    "title", "topic", "body", "published_at", "available_from", "available_until", "attributes",
)

CatalogueValue = str | datetime | dict | None


def write_catalogue(
    cur: psycopg2.extensions.cursor,
    source: str,
    item_ids: np.ndarray,
    item_keys: Sequence[str] | None,
    columns: Mapping[str, Sequence[CatalogueValue]],
) -> int:
    """Upsert items: the given columns are written, the others keep their values.

    Args:
        cur: a cursor in the load's transaction.
        source: `items.source` of every row written.
        item_ids: (n,) int64 internal ids, distinct.
        item_keys: (n,) the log's text keys (`items.item_key`), or None for an
            integer log (item_key NULL).
        columns: name (one of CATALOGUE_COLUMNS) -> n values; None is NULL,
            datetimes must be timezone-aware, attributes are dicts.

    Returns:
        Number of items written.

    Raises:
        DataValidationError: an unknown column, or an availability window that
            the merge with an item's stored bounds makes empty.
    """
    unknown = sorted(set(columns) - set(CATALOGUE_COLUMNS))
    if unknown:
        raise DataValidationError("items", unknown[0], f"unknown column (allowed: {', '.join(CATALOGUE_COLUMNS)})")
    names = list(columns)
    keys: Sequence[str | None] = item_keys if item_keys is not None else [None] * len(item_ids)
    lines = (
        ",".join([str(item_id), _field(key), *(_field(columns[name][i]) for name in names), _field(source)])
        for i, (item_id, key) in enumerate(zip(item_ids.tolist(), keys))
    )
    payload = "".join(line + "\n" for line in lines).encode("utf-8")
    cur.execute("SET LOCAL client_encoding TO 'UTF8'")  # plumbing, inline: the CSV above is UTF-8
    cur.execute(load_sql("loaders/items_load_create"))
    copy_in(cur, "items_load", ["item_id", "item_key", *names, "source"], io.BytesIO(payload))
    cur.execute(load_sql("loaders/items_taken_over"))
    taken_over = cur.fetchone()[0]
    if taken_over:
        logger.warning("%d items described by another source now take the description of %s", taken_over, source)
    flags = {f"has_{name}": name in columns for name in CATALOGUE_COLUMNS}
    try:
        cur.execute(load_sql("loaders/catalogue_upsert"), flags)
    except psycopg2.errors.CheckViolation as exc:
        if exc.diag.constraint_name != "items_availability_order":
            raise
        raise DataValidationError(
            "items", "available_until",
            "with the bounds already stored for an item, available_until would not be after available_from "
            "(load both columns together to replace a window)") from None
    written = cur.rowcount
    cur.execute("DROP TABLE items_load")  # plumbing: a second load in the same transaction creates it again
    return written


def _field(value: CatalogueValue) -> str:
    """One field of COPY's CSV format: empty unquoted is NULL, everything else quoted."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise DataValidationError("items", "-", f"timestamp {value.isoformat()} has no time zone")
        return value.isoformat()
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value
    return '"' + text.replace('"', '""') + '"'
