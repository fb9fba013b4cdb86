"""Extract stage: read one training window from PostgreSQL with COPY.

Reads the configured source (the `interactions` table or a user's view with
the same columns) for `[interval.end - train_window_days, interval.end)`,
validates it, and writes a `WindowDataset` artifact.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from psycopg2 import sql

from recsys.config import Settings
from recsys.dataset import EVENT_TYPES, WindowDataset
from recsys.db import copy_out, load_sql, raw_connection, require_tables
from recsys.errors import DataValidationError, EmptyWindowError
from recsys.interval import DataInterval

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractManifest:
    """Small summary passed between stages (safe for XCom)."""

    dataset_path: str
    n_events: int
    n_users: int
    n_items: int
    n_interval_events: int


def source_name(settings: Settings) -> tuple[str, str]:
    """(schema, name) of the source: `name` lives in the recsys schema, `schema.name` elsewhere."""
    parts = settings.source_table.split(".")
    if len(parts) > 2 or not all(parts):
        raise DataValidationError(settings.source_table, "-", "source must be `name` or `schema.name`")
    return (settings.schema, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def dataset_path(settings: Settings, interval: DataInterval) -> Path:
    return Path(settings.artifact_dir) / interval.run_date.isoformat() / "dataset.npz"


def extract_window(settings: Settings, interval: DataInterval) -> ExtractManifest:
    """Read, validate and store the training window ending at the interval end.

    Raises:
        SchemaMissingError: the source table or view does not exist.
        EmptyWindowError: no event arrived in the run's data interval.
        DataValidationError: a column holds values the models cannot use.
    """
    started = time.perf_counter()
    window = {"start": interval.train_window_start(settings.train_window_days), "end": interval.end}
    source_schema, source_table = source_name(settings)
    source = sql.Identifier(source_schema, source_table)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, source_schema, source_table)
        cur.execute(sql.SQL(load_sql("count_interval_events")).format(source=source),
                    {"start": interval.start, "end": interval.end})
        n_interval = cur.fetchone()[0]
        if n_interval == 0:
            raise EmptyWindowError(
                f"no events in {settings.source_table} for the data interval "
                f"[{interval.start.isoformat()}, {interval.end.isoformat()}): nothing to train or publish"
            )
        buf = copy_out(cur, sql.SQL(load_sql("extract_window")).format(source=source), window)
    frame = pd.read_csv(
        buf, header=None, names=["user_id", "item_id", "event_type", "ts", "value"],
        dtype={"event_type": "string"}, na_values=[""], keep_default_na=False,
    )
    read_s = time.perf_counter() - started
    dataset = _to_dataset(frame, settings.source_table)
    path = dataset.save(dataset_path(settings, interval))
    manifest = ExtractManifest(str(path), dataset.n_events, len(dataset.user_ids), len(dataset.item_ids), n_interval)
    logger.info(
        "extracted %d events (%d in the interval) of %d users and %d items from %s in %.2fs (read %.2fs, %.0f rows/s)",
        manifest.n_events, n_interval, manifest.n_users, manifest.n_items, settings.source_table,
        time.perf_counter() - started, read_s, manifest.n_events / max(read_s, 1e-9),
    )
    return manifest


def _to_dataset(frame: pd.DataFrame, table: str) -> WindowDataset:
    for column in ("user_id", "item_id"):
        ids = frame[column]
        if ids.isna().any():
            raise DataValidationError(table, column, f"{int(ids.isna().sum())} rows have NULL {column}")
        if not pd.api.types.is_integer_dtype(ids):
            raise DataValidationError(table, column, f"ids must be integers, got {ids.dtype}")
        if (ids < 0).any():
            raise DataValidationError(table, column, f"{int((ids < 0).sum())} negative ids, e.g. {int(ids[ids < 0].iloc[0])}")
    known = frame["event_type"].isin(EVENT_TYPES)
    if not known.all():
        bad = frame.loc[~known, "event_type"]
        raise DataValidationError(table, "event_type",
                                  f"{len(bad)} rows with unknown event types {sorted(map(str, bad.unique()[:5]))}; "
                                  f"expected one of {list(EVENT_TYPES)}")
    values = frame["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        raise DataValidationError(table, "value", f"{int(np.isinf(values).sum())} rows hold infinity")
    user_ids, user_index = np.unique(frame["user_id"].to_numpy(np.int64), return_inverse=True)
    item_ids, item_index = np.unique(frame["item_id"].to_numpy(np.int64), return_inverse=True)
    codes = pd.Categorical(frame["event_type"], categories=list(EVENT_TYPES)).codes.astype(np.int8)
    return WindowDataset(
        user_ids=user_ids, item_ids=item_ids,
        user_index=user_index.astype(np.int32), item_index=item_index.astype(np.int32),
        event_code=codes, ts=frame["ts"].to_numpy(np.float64), value=values,
    )
