"""Retention metrics refreshed nightly inside PostgreSQL: cohorts, engagement, per model.

Days are calendar dates of `event_time` in `settings.retention_timezone`
(default UTC). A user is active on a day when they have an event whose type is
in `settings.active_types` (`active_event_types` and the declared event types of
role positive; impressions do not count by default). A
user's cohort is the day of their first activity (from `retention_start_date` on,
when it is set: earlier events are not read). For each N in
`settings.retention_days`:

* classic retention of cohort c: share of its users active on exactly day c + N;
* rolling (unbounded) retention: share active on day c + N or any later day
  loaded so far (both in `retention`, `retention_kind` 'classic' / 'rolling');
* per-model retention (`model_retention`): of the users a model version served
  (showed an impression, an event of a type of role impression, carrying that
  `model_version`) on day d, the share
  active on exactly day d + N, with a Wilson 95% interval.

`engagement` holds DAU, WAU, MAU and stickiness (DAU / MAU) per day; its
`is_full_window` says that each of the 30 days MAU covers has activity.

A run for as-of date D (data for days < D, the newest day being D - 1) does,
in one transaction under an advisory lock:

1. Sync the compact tables `user_activity_days` and `user_model_days`: days not
   yet recorded in `activity_days_loaded` are filled from the interaction log
   with set-based INSERT ... SELECT DISTINCT over an `event_time` range (the
   BRIN index prunes the log); the first run fills the whole history. Day
   D - 1 is always reloaded, so a re-run picks up late or corrected events.
2. Sync `user_cohorts` (first and last active day) for the users those days
   touch, noting the cohorts whose members' days moved.
3. Write the cells that day D - 1 completes: classic (D - 1 - N, N) and
   per-model (serve day D - 1 - N, N), now mature; immature placeholders
   (size known, retained users and rate NULL) for cohort / serve day D - 1; the
   rolling cells of those cohorts and of the noted ones; the engagement row of
   day D - 1. A placeholder never replaces a mature cell. The first run, which
   loaded the whole history, instead writes every cell, engagement row and
   per-model cell of that history (by the full recompute's queries, on the
   compact tables), and reports days of activity isolated far before the rest.

Each classic or per-model cell has one run that makes it mature (D = c + N + 1)
and one that creates it (D = c + 1), whatever the order of the runs; rolling
cells follow the classic keys and are recomputed whenever a member's last day
moves. So the dates D0 + 1 .. A run in any order, or re-run, leave the same
tables as `full_recompute(settings, A)` on the cells they hold, when D0 is at
most the first active day. Nothing here pulls raw events into Python.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.errors import DataValidationError
from recsys.source import Source, assign_keys, inspect_source
from recsys.time_outliers import find_far_past_days

logger = logging.getLogger(__name__)

RETENTION_KINDS = ("classic", "rolling")
# Arbitrary constant ("recsys" + 0x52, R for retention): serialises refreshes
# and full recomputes, so two runs never interleave their syncs.
_LOCK_KEY = 0x7265637379730052
_COMPACT_TABLES = (
    "user_activity_days", "user_model_days", "activity_days_loaded", "user_cohorts", "retention_state",
)
_OUTPUT_TABLES = ("retention", "engagement", "model_retention")


@dataclass(frozen=True)
class RetentionRefresh:
    """Summary of one nightly refresh (small enough for XCom).

    Attributes:
        run_date: the as-of date D; the refresh used days < D.
        cells_written: `retention` rows (classic and rolling) inserted, updated or deleted.
        activity_rows: (user, day) rows inserted into user_activity_days.
        seconds: wall time of the transaction.
        rolling_cells: of `cells_written`, the rolling ones.
        engagement_rows: `engagement` rows written or deleted (0 or 1).
        model_cells: `model_retention` rows inserted, updated or deleted.
        served_rows: (day, model, user) rows inserted into user_model_days.
        rows_touched: every row inserted, updated or deleted in every table.
    """

    run_date: date
    cells_written: int
    activity_rows: int
    seconds: float
    rolling_cells: int = 0
    engagement_rows: int = 0
    model_cells: int = 0
    served_rows: int = 0
    rows_touched: int = 0


def refresh_retention(settings: Settings, run_date: date) -> RetentionRefresh:
    """Bring the compact tables and every retention output up to as-of date `run_date`.

    Idempotent, and incremental: a nightly run reads one day of the log (the
    first run reads all of it). See the module docstring for the steps.

    Args:
        settings: database, schema, source table, `retention_days` (the N),
            `retention_timezone` and `active_event_types`.
        run_date: the as-of date D (a `date`, not a `datetime`); day D - 1 (in
            the retention time zone) is the newest day used.

    Returns:
        Counts and timing of the refresh.

    Raises:
        SchemaMissingError: a table is missing (run `recsys db upgrade`).
        DataValidationError: `retention_days`, `active_event_types` or
            `retention_timezone` is unusable, or differs from the time zone and
            event types the compact tables were built with.
    """
    run_date = _as_date(run_date, "run_date")
    params = _base_params(settings)
    started = time.perf_counter()
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        log = _prepare(cur, settings, params)
        _check_state(cur, params, log)
        return _refresh(cur, log, run_date, params, started)


def rebuild_retention(settings: Settings, as_of: date) -> RetentionRefresh:
    """Rebuild every retention table, compact and output, from the log as of `as_of`.

    In one transaction: the compact tables are emptied and refilled from the
    whole history (from `retention_start_date` on), and every cell, engagement
    row and per-model cell before `as_of` is written, as a first refresh does;
    readers of the output tables see the old rows until it commits. Use it after
    changing `retention_timezone`, `active_event_types` or `retention_start_date`,
    or after correcting old days of the log (`recsys retention rebuild`).

    Raises:
        SchemaMissingError: a table is missing (run `recsys db upgrade`).
        DataValidationError: a retention setting is unusable.
    """
    as_of = _as_date(as_of, "as_of")
    params = _base_params(settings)
    started = time.perf_counter()
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        log = _prepare(cur, settings, params)
        # the compact tables are the refresh's own state: TRUNCATE blocks nobody who matters;
        # the output tables are cleared by DELETE in the refresh, so readers are not blocked
        cur.execute(sql.SQL(load_sql("retention/reset")).format(
            tables=sql.SQL(", ").join(map(sql.Identifier, _COMPACT_TABLES))))
        _check_state(cur, params, log)
        result = _refresh(cur, log, as_of, params, started)
    logger.info("retention rebuilt as of %s: %d cells, %d per-model cells, %d engagement rows in %.2fs",
                as_of, result.cells_written, result.model_cells, result.engagement_rows, result.seconds)
    return result


def _refresh(cur: psycopg2.extensions.cursor, log: Source, run_date: date, params: dict[str, Any],
             started: float) -> RetentionRefresh:
    """The body of `refresh_retention`, inside its transaction (lock taken, state checked)."""
    newest_day = run_date - timedelta(days=1)
    t0 = time.perf_counter()
    cur.execute(load_sql("retention/sync_plan"), {"newest_day": newest_day})
    reload_from, loaded_days = cur.fetchone()
    first_run = reload_from is None
    day_params = {"reload_from": reload_from, "newest_day": newest_day}
    cur.execute(load_sql("retention/activity_clear_day"), day_params)
    cleared = cur.rowcount
    cur.execute(load_sql("retention/served_clear_day"), day_params)
    cleared += cur.rowcount
    start_from = _start_from(cur, params)
    load_from = None if first_run else _day_start(cur, reload_from, params["tz"])
    if start_from is not None:
        load_from = start_from if load_from is None else max(load_from, start_from)
    fill_params = {
        **params,
        "load_from": load_from,
        "load_to": _day_start(cur, run_date, params["tz"]),
        "newest_day": newest_day,
    }
    assign_keys(cur, log, fill_params["load_from"], fill_params["load_to"])
    source = log.relation()
    cur.execute(sql.SQL(load_sql("retention/activity_fill")).format(source=source), fill_params)
    activity_rows = cur.rowcount
    cur.execute(sql.SQL(load_sql("retention/served_fill")).format(source=source), fill_params)
    served_rows = cur.rowcount
    if activity_rows and not served_rows and log.has("model_version"):
        logger.warning("%s: no impression of the days loaded carries a model_version: per-model retention "
                       "gets no new serve day (is the serving log tagging impressions?)", log.label)
    cur.execute(load_sql("retention/activity_mark_loaded"), day_params)
    days_marked = cur.rowcount
    logger.info(
        "retention %s: activity sync from %s (%d days recorded before): %d rows cleared, "
        "%d activity and %d served rows inserted, %d days recorded in %.2fs",
        run_date, reload_from or params["start_date"] or "the beginning", loaded_days, cleared,
        activity_rows, served_rows, days_marked, time.perf_counter() - t0,
    )
    if first_run:
        _report_far_past_days(cur, log)

    t0 = time.perf_counter()
    cur.execute(load_sql("retention/touched_cohorts_create"))
    cur.execute(load_sql("retention/cohorts_sync"), {"reload_from": reload_from, "run_date": run_date})
    cohorts_written, cohorts_dropped, cohorts_touched = cur.fetchone()
    logger.info(
        "retention %s: %d user cohorts written, %d dropped, %d cohorts touched in %.2fs",
        run_date, cohorts_written, cohorts_dropped, cohorts_touched, time.perf_counter() - t0,
    )

    t0 = time.perf_counter()
    cell_params = {**params, "newest_day": newest_day}
    if first_run:
        # The whole history was just loaded: write every cell it holds, not only
        # those its newest day completes (a first night on a year of log would
        # otherwise hold a handful of the year's mature cells).
        counts = _write_history(cur, cell_params)
        classic, rolling = counts["classic"], counts["rolling"]
        engagement, model = counts["engagement"], counts["model"]
    else:
        counts = {}
        for name, query in (
            ("cells_mature", load_sql("retention/cells_mature")),
            ("cells_placeholders", load_sql("retention/cells_placeholders")),
            ("cells_rolling", load_sql("retention/cells_rolling")),
            ("engagement_day", load_sql("retention/engagement_day")),
            ("model_retention_cells_mature", load_sql("retention/model_retention_cells_mature")),
            ("model_retention_cells_placeholders", load_sql("retention/model_retention_cells_placeholders")),
        ):
            cur.execute(query, cell_params)
            counts[name] = sum(cur.fetchone())
        classic = counts["cells_mature"] + counts["cells_placeholders"]
        rolling = counts["cells_rolling"]
        engagement = counts["engagement_day"]
        model = counts["model_retention_cells_mature"] + counts["model_retention_cells_placeholders"]
    logger.info("retention %s: rows written or deleted %s in %.2fs%s", run_date, counts,
                time.perf_counter() - t0, " (first run: the whole history)" if first_run else "")
    result = RetentionRefresh(
        run_date=run_date,
        cells_written=classic + rolling,
        activity_rows=activity_rows,
        seconds=round(time.perf_counter() - started, 3),
        rolling_cells=rolling,
        engagement_rows=engagement,
        model_cells=model,
        served_rows=served_rows,
        rows_touched=(cleared + activity_rows + served_rows + days_marked + cohorts_written
                      + cohorts_dropped + sum(counts.values())),
    )
    logger.info("retention refresh %s done in %.2fs, %d rows touched",
                run_date, result.seconds, result.rows_touched)
    return result


def _write_history(cur: psycopg2.extensions.cursor, cell_params: dict[str, Any]) -> dict[str, int]:
    """Every output row of the compact tables' history, by the full recompute's queries."""
    cur.execute(load_sql("retention/full_clear"))
    cur.execute(load_sql("retention/history_source_days"))
    return _write_full(cur, cell_params)


def _write_full(cur: psycopg2.extensions.cursor, cell_params: dict[str, Any]) -> dict[str, int]:
    """Write every retention, engagement and per-model row from full_active_days / full_served_days."""
    cur.execute(load_sql("retention/full_recompute"), cell_params)
    cur.execute(load_sql("retention/cells_per_kind"))
    written = {kind: 0 for kind in RETENTION_KINDS} | dict(cur.fetchall())
    cur.execute(load_sql("retention/engagement_full_recompute"), cell_params)
    written["engagement"] = cur.rowcount
    cur.execute(load_sql("retention/model_retention_full_recompute"), cell_params)
    written["model"] = cur.rowcount
    return written


def _report_far_past_days(cur: psycopg2.extensions.cursor, log: Source) -> None:
    """Warn, once the whole history is loaded, about days of activity isolated far before the rest."""
    cur.execute(load_sql("retention/activity_day_counts"))
    found = find_far_past_days(cur.fetchall())
    if found is not None:
        logger.warning("%s: %s: each such user makes a cohort of its own and the days between count with "
                       "DAU 0. Set RECSYS_RETENTION_START_DATE=%s (then `recsys retention rebuild`) if they "
                       "are not real", log.label, found.describe("active users"), found.bulk_starts.isoformat())


def full_recompute(settings: Settings, as_of: date) -> dict[str, int]:
    """Recompute every output row before `as_of` from the raw log.

    Deletes all rows of `retention`, `engagement` and `model_retention`, then
    writes, for every non-empty cohort (or serve day) before as_of and every N,
    a classic, a rolling and a per-model cell (mature iff day c + N <= as_of - 1,
    otherwise with retained users, rate and interval NULL), and one engagement
    row per day from the first active day to as_of - 1. Reads the interaction
    log directly, not the compact tables, which it leaves untouched; so it
    serves as a repair and as the reference the incremental refresh is tested
    against.

    Args:
        settings: database, schema, source table, `retention_days`,
            `retention_timezone`, `active_event_types`.
        as_of: the as-of date; events before as_of 00:00 (retention time zone) are used.

    Returns:
        Rows written per output: keys 'classic', 'rolling', 'engagement', 'model'.

    Raises:
        SchemaMissingError: a table is missing (run `recsys db upgrade`).
        DataValidationError: a retention setting is unusable.
    """
    as_of = _as_date(as_of, "as_of")
    params = _base_params(settings)
    started = time.perf_counter()
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        log = _prepare(cur, settings, params)
        cur.execute(load_sql("retention/full_clear"))
        full_params = {
            **params,
            "as_of_start": _day_start(cur, as_of, params["tz"]),
            "newest_day": as_of - timedelta(days=1),
        }
        full_params["start_from"] = _start_from(cur, params)
        assign_keys(cur, log, full_params["start_from"], full_params["as_of_start"])
        source = log.relation()
        cur.execute(sql.SQL(load_sql("retention/full_source_days")).format(source=source), full_params)
        written = _write_full(cur, full_params)
    logger.info("retention full recompute as of %s: %s rows written in %.2fs",
                as_of, written, time.perf_counter() - started)
    return written


def reset_retention(settings: Settings) -> None:
    """Empty every retention table, compact and output (the log is untouched).

    The next refresh starts over as a first run. `rebuild_retention` does
    that and the refill in one transaction, which is what a change of
    `retention_timezone`, `active_event_types` or `retention_start_date` needs.
    """
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))  # plumbing: the retention lock
        require_tables(cur, settings.schema, *_COMPACT_TABLES, *_OUTPUT_TABLES)
        cur.execute(sql.SQL(load_sql("retention/reset")).format(
            tables=sql.SQL(", ").join(map(sql.Identifier, _COMPACT_TABLES + _OUTPUT_TABLES))))
    logger.info("retention tables of schema %s emptied", settings.schema)


def _prepare(cur: psycopg2.extensions.cursor, settings: Settings, params: dict[str, Any]) -> Source:
    """Take the retention lock, check the tables and the time zone; returns the log as recsys.source reads it."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))  # plumbing: the retention lock
    log = inspect_source(cur, settings)
    require_tables(cur, settings.schema, *_COMPACT_TABLES, *_OUTPUT_TABLES)
    # plumbing, kept inline: a savepoint, so an unknown time zone leaves the transaction usable
    cur.execute("SAVEPOINT retention_timezone")
    try:
        cur.execute(load_sql("retention/timezone_check"), params)
    except psycopg2.errors.InvalidParameterValue as exc:
        cur.execute("ROLLBACK TO SAVEPOINT retention_timezone")
        raise DataValidationError(
            "settings", "retention_timezone",
            f"unknown time zone {params['tz']!r}: use an IANA name such as 'UTC' or 'Europe/Paris'",
        ) from exc
    cur.execute("RELEASE SAVEPOINT retention_timezone")
    if not log.has("model_version"):
        logger.warning("%s has no model_version column: per-model retention stays empty", log.label)
    return log


def _check_state(cur: psycopg2.extensions.cursor, params: dict[str, Any], log: Source) -> None:
    """Record the settings and the log the compact tables are built with; refuse to mix others in."""
    wanted = (params["tz"], sorted(params["active"]), params["start_date"])
    source = f"{log.schema}.{log.table}"  # qualified: 'interactions' and 'recsys.interactions' are one log
    cur.execute(load_sql("retention/state_read"))
    row = cur.fetchone()
    if row is None:
        cur.execute(load_sql("retention/state_write"), {
            "timezone": wanted[0], "active_event_types": wanted[1], "start_date": wanted[2],
            "source_table": source})
        return
    built, built_from = (row[0], sorted(row[1]), row[2]), row[3]
    if built_from is not None and built_from != source:
        raise DataValidationError(
            "retention_state", "source_table",
            f"the retention tables of schema {log.keys_schema} were built from the log {built_from}, the settings "
            f"now read {source}: keep one log per schema (RECSYS_SCHEMA), or run `recsys retention rebuild` "
            f"to rebuild them from {source}",
        )
    if built != wanted:
        raise DataValidationError(
            "retention_state", "timezone, active_event_types, start_date",
            f"the activity tables were built with time zone {built[0]!r}, active event types "
            f"{built[1]} and start date {built[2] or 'none'}, the settings now say {wanted[0]!r}, "
            f"{wanted[1]} and {wanted[2] or 'none'}: restore the settings, or run "
            "`recsys retention rebuild` to rebuild the tables with the new ones",
        )
    if built_from is None:
        cur.execute(load_sql("retention/state_source_record"), {"source_table": source})


def _base_params(settings: Settings) -> dict[str, Any]:
    """Parameters every retention query binds, validated."""
    days = list(settings.retention_days)
    if not days or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in days):
        raise DataValidationError(
            "settings", "retention_days", f"need one or more integers >= 0, got {settings.retention_days!r}"
        )
    active = list(settings.active_types)
    if not active or not all(isinstance(t, str) and t for t in active):
        raise DataValidationError(
            "settings", "active_event_types",
            f"need one or more event type names, got {settings.active_event_types!r}",
        )
    impressions = list(settings.impression_types)
    tz = settings.retention_timezone
    if not isinstance(tz, str) or not tz:
        raise DataValidationError("settings", "retention_timezone", f"need a time zone name, got {tz!r}")
    start = settings.retention_start_date
    if start is not None and (isinstance(start, datetime) or not isinstance(start, date)):
        raise DataValidationError("settings", "retention_start_date", f"need a date or None, got {start!r}")
    return {"kind": "classic", "retention_days": days, "active": active, "impressions": impressions, "tz": tz,
            "start_date": start}


def _start_from(cur: psycopg2.extensions.cursor, params: dict[str, Any]) -> datetime | None:
    """00:00 of the retention start date in the retention time zone; None without one."""
    return None if params["start_date"] is None else _day_start(cur, params["start_date"], params["tz"])


def _as_date(value: date, name: str) -> date:
    # A datetime is a date subclass; refusing it avoids guessing its time zone.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{name} must be a datetime.date, got {value!r}")
    return value


def _day_start(cur: psycopg2.extensions.cursor, day: date, tz: str) -> datetime:
    """00:00 of `day` in time zone `tz`, as an aware datetime, by PostgreSQL's
    time zone rules (the same rules that map event times to days)."""
    cur.execute(load_sql("retention/day_start"), {"day": day, "tz": tz})
    return cur.fetchone()[0]
