"""Export a training window's positive events from PostgreSQL to Parquet, one directory per UTC day.

The Spark job reads these files rather than the database: a cluster's executors should not
each open a connection to the team's log. The export is incremental: a per-day count of the
window (one indexed GROUP BY) is compared with the counts the files were written with, and
only the days that are new or changed (late events, a corrected day) are read again, with
COPY, one day at a time, so memory holds one day and not the window.

Each event's `strength` is what it adds to its (user, item) pair's MF input before any time
decay (`WindowDataset.strengths`: 1, the type's weight or the event's value); the decay
depends on the night's as-of date, so the job applies it. The files are reused only while
the settings that made the strengths (source, positive types, confidence mode, weights)
stay the same: a change rewrites every day.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time as clock, timedelta, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from psycopg2 import sql

from recsys.config import Settings
from recsys.db.engine import copy_out, load_sql, raw_connection
from recsys.errors import DataValidationError, EmptyWindowError
from recsys.interval import DataInterval
from recsys.source import inspect_source
from recsys.spark import export_root

logger = logging.getLogger(__name__)

MANIFEST = "_days.json"


@dataclass(frozen=True)
class WindowExport:
    """Where the window's day files are and how much of them this night wrote."""

    root: str
    day_paths: tuple[str, ...]  # the window's days that hold events, oldest first
    n_events: int
    days_written: int
    days_reused: int
    seconds: float


def day_path(root: Path, day: date) -> Path:
    return root / f"day={day.isoformat()}" / "events.parquet"


def fingerprint(settings: Settings) -> str:
    """What the strengths in the files were made from: a change invalidates every day."""
    weights = settings.type_weights
    made_of = {"source": settings.source_table, "schema": settings.schema,
               "positive_types": list(settings.positive_types), "confidence": settings.mf_confidence,
               "weights": {name: float(weights.get(name, 1.0)) for name in settings.positive_types}}
    return hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()[:16]


def export_window(settings: Settings, interval: DataInterval) -> WindowExport:
    """Bring the day files of the window ending at the interval's end up to date with the log.

    Raises:
        EmptyWindowError: the window holds no positive event.
        DataValidationError: `value` confidence and a positive event with a negative value.
    """
    started = time.perf_counter()
    root = export_root(settings.artifact_dir)
    root.mkdir(parents=True, exist_ok=True)
    window_start, window_end = interval.train_window_start(settings.train_window_days), interval.end
    types = list(settings.positive_types)
    written = reused = 0
    with _locked(root), raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        source = inspect_source(cur, settings).relation()
        cur.execute(sql.SQL(load_sql("spark/day_counts")).format(source=source),
                    {"start": window_start, "end": window_end, "types": types})
        counts = {day: int(n) for day, n in cur.fetchall()}
        if not counts:
            raise EmptyWindowError(f"no {'/'.join(types)} events in {settings.source_table} in the training window "
                                   f"[{window_start.isoformat()}, {window_end.isoformat()}): nothing to export")
        manifest = _read_manifest(root)
        if manifest.get("fingerprint") != fingerprint(settings):
            manifest = {"fingerprint": fingerprint(settings), "days": {}}
        for day, n_events in sorted(counts.items()):
            path = day_path(root, day)
            if manifest["days"].get(day.isoformat()) == n_events and path.exists():
                reused += 1
                continue
            start = datetime.combine(day, clock(0), tzinfo=timezone.utc)
            buf = copy_out(cur, sql.SQL(load_sql("spark/export_day")).format(source=source),
                           {"start": max(start, window_start), "end": min(start + timedelta(days=1), window_end),
                            "types": types})
            _write_day(path, _day_frame(settings, buf))
            manifest["days"][day.isoformat()] = n_events
            _write_manifest(root, manifest)  # after each day: an interrupted export keeps what it wrote
            written += 1
    result = WindowExport(str(root), tuple(str(day_path(root, d)) for d in sorted(counts)), sum(counts.values()),
                          written, reused, time.perf_counter() - started)
    logger.info("exported the window's %d positive events to %s: %d day(s) written, %d unchanged, in %.2fs",
                result.n_events, root, written, reused, result.seconds)
    return result


def _day_frame(settings: Settings, buf) -> pd.DataFrame:  # noqa: ANN001 - a COPY buffer
    frame = pd.read_csv(buf, header=None, names=["user_id", "item_id", "event_type", "ts", "value", "session_id"],
                        dtype={"event_type": "string"}, na_values=[""], keep_default_na=False)
    weights = settings.type_weights
    by_type = frame["event_type"].map(lambda name: float(weights.get(name, 1.0))).astype(np.float64)
    if settings.mf_confidence == "count":
        strength = np.ones(len(frame))
    elif settings.mf_confidence == "weight":
        strength = by_type.to_numpy()
    else:
        value = frame["value"].astype(np.float64)
        if (value < 0).any():
            raise DataValidationError(settings.source_table, "value", (
                f"{int((value < 0).sum())} positive events hold a negative value and RECSYS_MF_CONFIDENCE=value sums "
                "the values as MF confidence: clip or filter them in the view, or use RECSYS_MF_CONFIDENCE=weight"))
        strength = np.where(value.isna(), by_type, value)
    return pd.DataFrame({"user_id": frame["user_id"].astype(np.int64), "item_id": frame["item_id"].astype(np.int64),
                         "ts": frame["ts"].astype(np.float64), "strength": np.asarray(strength, dtype=np.float64)})


def _write_day(path: Path, frame: pd.DataFrame) -> None:
    """A day's file through a temporary name and an atomic rename: a reader sees the old or the new day."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), partial, compression="zstd")
    os.replace(partial, path)


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def _write_manifest(root: Path, manifest: dict) -> None:
    partial = root / f".{MANIFEST}.{os.getpid()}.partial"
    partial.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(partial, root / MANIFEST)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One export at a time per deployment: two nights (a backfill beside the schedule) share the day files."""
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
