"""The nightly DAG's deadline, "lists live by HH:MM in zone Z", worked out with the standard
library alone (the DAG file reads it when Airflow parses it).

A night's data interval is `[D-1 00:00, D 00:00)` UTC and its as-of date is D. Its lists are
due by the first HH:MM in zone Z at or after the interval's end, D 00:00 UTC: 06:00
Europe/Berlin is D 05:00 UTC in winter and D 04:00 UTC in summer; 06:00 Asia/Tokyo, which is
already past at D 00:00 UTC (09:00 there), is the next morning's.

Airflow's Deadline Alert adds a fixed `timedelta` to a reference time of the run. The
reference here is the run's logical date, which for a scheduled run (and a backfill's) of
`CronDataIntervalTimetable` is the start of its data interval, D-1 00:00 UTC; so the interval
is the deadline minus that. A fixed interval cannot follow a DST change by itself: the DAG
file computes it for the night the scheduler creates next (D = tomorrow, UTC), and the DAG
processor re-parses the file often enough (every `min_file_process_interval`, 30 s) that
the run created at midnight uses the right offset.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recsys.errors import ConfigurationError

logger = logging.getLogger(__name__)

LIVE_BY_VARIABLE, ZONE_VARIABLE = "RECSYS_LISTS_LIVE_BY", "RECSYS_LISTS_LIVE_TZ"
_HH_MM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_live_by(raw: str) -> time:
    """`HH:MM` (24-hour clock) as a time.

    Raises:
        ConfigurationError: not `HH:MM` with 00 <= HH <= 23 and 00 <= MM <= 59.
    """
    match = _HH_MM.match(raw.strip())
    if match is None:
        raise ConfigurationError(f"{LIVE_BY_VARIABLE}={raw!r}: expected HH:MM on a 24-hour clock, e.g. 06:00")
    return time(int(match.group(1)), int(match.group(2)))


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone `name` (`Europe/Berlin`, `UTC`).

    Raises:
        ConfigurationError: the zone database has no such zone.
    """
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"{ZONE_VARIABLE}={name!r}: not a time zone the IANA database knows "
                                 "(e.g. Europe/Berlin, UTC)") from exc


def lists_due(run_date: date, live_by: str, zone: str) -> datetime:
    """When the lists of the night with as-of date `run_date` are due: the first `live_by` in
    `zone` at or after `run_date` 00:00 UTC (the end of its data interval), in UTC."""
    end = datetime.combine(run_date, time(0), timezone.utc)
    at, tz = parse_live_by(live_by), zone_of(zone)
    local_day = end.astimezone(tz).date()
    due = datetime.combine(local_day, at, tz)
    if due < end:
        due = datetime.combine(local_day + timedelta(days=1), at, tz)
    return due.astimezone(timezone.utc)


def deadline_interval(live_by: str, zone: str, now: datetime | None = None) -> timedelta:
    """The Deadline Alert's interval after a scheduled run's logical date (D-1 00:00 UTC),
    for the night the scheduler creates next (D = the day after `now`, UTC)."""
    now = now or datetime.now(timezone.utc)
    run_date = now.astimezone(timezone.utc).date() + timedelta(days=1)
    return lists_due(run_date, live_by, zone) - datetime.combine(run_date - timedelta(days=1), time(0), timezone.utc)


def from_environ(environ: Any) -> tuple[str, str] | None:  # noqa: ANN401 - os.environ or a dict
    """(live_by, zone) from RECSYS_LISTS_LIVE_BY and RECSYS_LISTS_LIVE_TZ (default UTC); None when
    the first is unset or empty (no deadline). Both are checked here, so a bad value fails the parse.

    Raises:
        ConfigurationError: either value is unusable.
    """
    live_by = environ.get("RECSYS_LISTS_LIVE_BY", "").strip()
    if not live_by:
        return None
    zone = environ.get("RECSYS_LISTS_LIVE_TZ", "").strip() or "UTC"
    parse_live_by(live_by)
    zone_of(zone)
    return live_by, zone


def lists_late(context: dict[str, Any], live_by: str, zone: str) -> None:
    """The Deadline Alert's callback (Airflow calls it with the run in `context`): alert that the
    run's lists were not live by `live_by` in `zone`. Named by its path in the DAG, so importing
    this module at parse time brings no Airflow code in; the sending happens in airflow_support."""
    from recsys.airflow_support import alert_lists_late

    alert_lists_late(context, live_by, zone)
