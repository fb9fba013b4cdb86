"""Classic N-day cohort retention, refreshed nightly inside PostgreSQL.

Days are UTC dates of `event_time`. A user is active on a day when they have an
event whose type is in `settings.active_event_types` (impressions do not count
by default). A user's cohort is the day of their first activity ever, and the
classic N-day retention of cohort c is the share of its users active on exactly
day c + N.

A run for as-of date D (data for days < D, the newest day being D - 1) does,
in one transaction under an advisory lock:

1. Sync `user_activity_days`: days not yet recorded in `activity_days_loaded`
   are filled from the interaction log with one set-based INSERT ... SELECT
   DISTINCT over an `event_time` range (the BRIN index prunes the log); the
   first run fills the whole history. Day D - 1 is always reloaded, so a re-run
   picks up late or corrected events of that day.
2. Sync `user_cohorts` for the users those days touch.
3. Write the cells that day D - 1 completes: (D - 1 - N, N) for each N, now
   mature; and immature placeholders (cohort size known, retained users and rate
   NULL) for the new cohort D - 1. A placeholder never replaces a mature cell.

Each cell therefore has one run that makes it mature (D = c + N + 1) and one
that creates it (D = c + 1), whatever the order of the runs: the dates
D0 + 1 .. A run in any order, or re-run, leave the same table as
`full_recompute(settings, A)` when D0 is at most the first active day.
Nothing here pulls raw events into Python.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import psycopg2
from psycopg2 import sql

from recsys.config import Settings
from recsys.db import load_sql, raw_connection, require_tables
from recsys.errors import DataValidationError
from recsys.interval import DataInterval

logger = logging.getLogger(__name__)

RETENTION_KIND = "classic"
# Arbitrary constant ("recsys" + 0x52, R for retention): serialises refreshes
# and full recomputes, so two runs never interleave their syncs.
_LOCK_KEY = 0x7265637379730052
_TABLES = ("retention", "user_activity_days", "activity_days_loaded", "user_cohorts")


@dataclass(frozen=True)
class RetentionRefresh:
    """Summary of one nightly refresh (small enough for XCom).

    Attributes:
        run_date: the as-of date D; the refresh used days < D.
        cells_written: retention rows inserted, updated or deleted.
        activity_rows: (user, day) rows inserted into user_activity_days.
        seconds: wall time of the transaction.
    """

    run_date: date
    cells_written: int
    activity_rows: int
    seconds: float


def refresh_retention(settings: Settings, run_date: date) -> RetentionRefresh:
    """Bring the activity tables and the retention cells up to as-of date `run_date`.

    Idempotent, and incremental: a nightly run reads one day of the log (the
    first run reads all of it). See the module docstring for the steps.

    Args:
        settings: database, schema, source table, `retention_days` (the N) and
            `active_event_types`.
        run_date: the as-of date D (a `date`, not a `datetime`); day D - 1 is
            the newest day used.

    Returns:
        Counts and timing of the refresh.

    Raises:
        SchemaMissingError: a table is missing (run `recsys db upgrade`).
        DataValidationError: `retention_days` or `active_event_types` is unusable.
    """
    run_date = _as_date(run_date, "run_date")
    params = _base_params(settings)
    interval = DataInterval.for_date(run_date)
    newest_day = run_date - timedelta(days=1)
    started = time.perf_counter()
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        source = _prepare(cur, settings)

        t0 = time.perf_counter()
        cur.execute(load_sql("retention_sync_plan"), {"newest_day": newest_day})
        reload_from, loaded_days = cur.fetchone()
        load_from = None if reload_from is None else _day_start(reload_from)
        cur.execute(
            load_sql("retention_activity_clear_day"),
            {"reload_from": reload_from, "newest_day": newest_day},
        )
        cleared = cur.rowcount
        cur.execute(
            sql.SQL(load_sql("retention_activity_fill")).format(source=source),
            {**params, "load_from": load_from, "load_to": interval.end, "newest_day": newest_day},
        )
        activity_rows = cur.rowcount
        cur.execute(
            load_sql("retention_activity_mark_loaded"),
            {"reload_from": reload_from, "newest_day": newest_day},
        )
        days_marked = cur.rowcount
        logger.info(
            "retention %s: activity sync from %s (%d days recorded before): "
            "%d rows cleared, %d inserted, %d days recorded in %.2fs",
            run_date, reload_from or "the beginning", loaded_days, cleared, activity_rows,
            days_marked, time.perf_counter() - t0,
        )

        t0 = time.perf_counter()
        cur.execute(
            load_sql("retention_cohorts_sync"), {"reload_from": reload_from, "run_date": run_date}
        )
        cohorts_written, cohorts_dropped = cur.fetchone()
        logger.info(
            "retention %s: %d user cohorts written, %d dropped in %.2fs",
            run_date, cohorts_written, cohorts_dropped, time.perf_counter() - t0,
        )

        t0 = time.perf_counter()
        cell_params = {**params, "newest_day": newest_day}
        cur.execute(load_sql("retention_cells_mature"), cell_params)
        mature_written, mature_deleted = cur.fetchone()
        cur.execute(load_sql("retention_cells_placeholders"), cell_params)
        placeholders_written, placeholders_deleted = cur.fetchone()
        cells = mature_written + mature_deleted + placeholders_written + placeholders_deleted
        logger.info(
            "retention %s: %d mature cells written (%d deleted), %d placeholders written "
            "(%d deleted) in %.2fs",
            run_date, mature_written, mature_deleted, placeholders_written,
            placeholders_deleted, time.perf_counter() - t0,
        )
    result = RetentionRefresh(
        run_date=run_date,
        cells_written=cells,
        activity_rows=activity_rows,
        seconds=round(time.perf_counter() - started, 3),
    )
    logger.info("retention refresh %s done in %.2fs", run_date, result.seconds)
    return result


def full_recompute(settings: Settings, as_of: date) -> int:
    """Recompute every classic cell of the cohorts before `as_of` from the raw log.

    Deletes all classic rows of `retention`, then writes one row per non-empty
    cohort c < as_of and N in `retention_days`: mature iff c + N <= as_of - 1,
    otherwise an immature row with retained users and rate NULL. Reads the
    interaction log directly, not the compact activity tables, which it leaves
    untouched; so it serves as a repair and as the reference the incremental
    refresh is tested against.

    Args:
        settings: database, schema, source table, `retention_days`, `active_event_types`.
        as_of: the as-of date; events before as_of 00:00 UTC are used.

    Returns:
        Number of cells written.

    Raises:
        SchemaMissingError: a table is missing (run `recsys db upgrade`).
        DataValidationError: `retention_days` or `active_event_types` is unusable.
    """
    as_of = _as_date(as_of, "as_of")
    params = _base_params(settings)
    started = time.perf_counter()
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        source = _prepare(cur, settings)
        cur.execute(load_sql("retention_full_clear"), params)
        cleared = cur.rowcount
        cur.execute(
            sql.SQL(load_sql("retention_full_recompute")).format(source=source),
            {**params, "as_of_start": _day_start(as_of), "newest_day": as_of - timedelta(days=1)},
        )
        written = cur.rowcount
    logger.info(
        "retention full recompute as of %s: %d cells cleared, %d written in %.2fs",
        as_of, cleared, written, time.perf_counter() - started,
    )
    return written


def _prepare(cur: psycopg2.extensions.cursor, settings: Settings) -> sql.Identifier:
    """Take the retention lock, check the tables; returns the quoted source."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    source_schema, source_table = _source_name(settings)
    require_tables(cur, source_schema, source_table)
    require_tables(cur, settings.schema, *_TABLES)
    return sql.Identifier(source_schema, source_table)


def _source_name(settings: Settings) -> tuple[str, str]:
    """(schema, name) of the source: `name` lives in the recsys schema, `schema.name` elsewhere.

    Same rule as `recsys.extract.source_name`, kept here so retention does not
    depend on the training pipeline's extract stage.
    """
    parts = settings.source_table.split(".")
    if len(parts) > 2 or not all(parts):
        raise DataValidationError(settings.source_table, "-", "source must be `name` or `schema.name`")
    return (settings.schema, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _base_params(settings: Settings) -> dict[str, Any]:
    """Parameters every retention query binds, validated."""
    days = list(settings.retention_days)
    if not days or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in days):
        raise DataValidationError(
            "settings", "retention_days", f"need one or more integers >= 0, got {settings.retention_days!r}"
        )
    active = list(settings.active_event_types)
    if not active or not all(isinstance(t, str) and t for t in active):
        raise DataValidationError(
            "settings", "active_event_types",
            f"need one or more event type names, got {settings.active_event_types!r}",
        )
    return {"kind": RETENTION_KIND, "retention_days": days, "active": active}


def _as_date(value: date, name: str) -> date:
    # A datetime is a date subclass; refusing it avoids guessing its time zone.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{name} must be a datetime.date, got {value!r}")
    return value


def _day_start(day: date) -> datetime:
    """00:00 UTC of `day`, as an aware datetime bound for timestamptz comparisons."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
