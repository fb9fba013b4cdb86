"""Cohort retention (classic and rolling) and engagement against a real PostgreSQL.

A hand-counted fixture pins exact cells; MovieLens 100K checks a 40-night
sequence against an independent pandas computation and `full_recompute`; and
shuffled, repeated runs must leave the same tables as in-order runs.
tests/stages/test_retention_reference.py compares every table with pandas on
MovieLens and simulated logs; tests/stages/test_retention_models.py covers
per-model retention and the A/B read-out.
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from psycopg2 import sql

from recsys.config import Settings
from recsys.db.engine import dispose_engines, load_sql, raw_connection
from recsys.errors import DataValidationError, SchemaMissingError
from recsys.stages.retention import RetentionRefresh, full_recompute, refresh_retention, reset_retention

D0 = date(2024, 3, 1)  # day 0 of the hand-counted fixture


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest settings with the N of the hand-counted fixture."""
    return dataclasses.replace(settings, retention_days=(1, 7))


def day(i: int) -> date:
    return D0 + timedelta(days=i)


def at(i: int, hh: int = 12, mm: int = 0, ss: float = 0.0) -> str:
    """ISO timestamp (UTC) on fixture day i."""
    ts = datetime(D0.year, D0.month, D0.day, hh, mm, tzinfo=timezone.utc) + timedelta(days=i, seconds=ss)
    return ts.isoformat()


# (event_time, user_id, event_type). Days are UTC dates; impressions never count.
TINY_EVENTS: list[tuple[str, int, str]] = [
    # cohort day 0: users 1, 2, 3
    (at(0), 1, "click"), (at(0, 13), 1, "consume"), (at(1), 1, "click"), (at(3), 1, "consume"),
    (at(5), 1, "click"), (at(7), 1, "click"),
    (at(0), 2, "consume"), (at(1), 2, "impression"), (at(7), 2, "impression"),  # active once
    (at(0), 3, "click"), (at(2), 3, "click"), (at(7), 3, "consume"),  # skips day 1
    # cohort day 1: users 4, 5 (4 had only an impression on day 0)
    (at(0), 4, "impression"), (at(1), 4, "consume"), (at(2), 4, "click"), (at(9), 4, "click"),
    (at(1, 23, 59, 59.999), 5, "click"),  # active once, a millisecond before day 2
    # cohort day 2: user 6 alone
    (at(2), 6, "consume"), (at(3), 6, "click"), (at(9), 6, "click"),
    # day 4: no activity at all, only an impression of a user who is never active
    (at(4), 9, "impression"),
    # cohort day 5: user 7; its day-6 event is written with a +02 offset (day 7 locally)
    (at(5), 7, "click"), ("2024-03-08T01:30:00+02:00", 7, "consume"),
    # cohort day 6: user 8, back on day 8 (exactly midnight) but not on day 7
    (at(6, 23, 59, 59), 8, "click"), (at(8, 0), 8, "click"),
    # cohort day 9 (the newest day): user 10
    (at(9), 10, "consume"), (at(9), 10, "impression"),
]
LAST_RUN = day(10)  # as-of date whose newest day is day 9

# (cohort day, N) -> (cohort_size, retained_users, rate, is_mature) after runs day(1)..day(10)
TINY_EXPECTED: dict[tuple[int, int], tuple[int, int | None, float | None, bool]] = {
    (0, 1): (3, 1, 1 / 3, True), (0, 7): (3, 2, 2 / 3, True),
    (1, 1): (2, 1, 1 / 2, True), (1, 7): (2, 0, 0.0, True),
    (2, 1): (1, 1, 1.0, True), (2, 7): (1, 1, 1.0, True),
    (5, 1): (1, 1, 1.0, True), (5, 7): (1, None, None, False),
    (6, 1): (1, 0, 0.0, True), (6, 7): (1, None, None, False),
    (9, 1): (1, None, None, False), (9, 7): (1, None, None, False),
}


def insert_events(settings: Settings, events: list[tuple[str, int, str]]) -> None:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO interactions (event_time, user_id, item_id, event_type, value, source)"
            " VALUES (%s, %s, %s, %s, 1.0, 'test')",
            [(ts, user, 100 + k, kind) for k, (ts, user, kind) in enumerate(events)],
        )


SNAPSHOT_QUERIES = (
    "SELECT retention_kind, cohort_date, day_n, cohort_size, retained_users, rate, is_mature"
    " FROM retention ORDER BY retention_kind, cohort_date, day_n",
    "SELECT day, dau, wau, mau, stickiness, is_full_window FROM engagement ORDER BY day",
    "SELECT model_version, serve_day, day_n, users_served, retained_users, rate, ci_low, ci_high,"
    " is_mature FROM model_retention ORDER BY model_version, serve_day, day_n",
)


def snapshot(settings: Settings) -> list[list[tuple]]:
    """Every output table without computed_at, in key order."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        out = []
        for query in SNAPSHOT_QUERIES:
            cur.execute(query)
            out.append(cur.fetchall())
        return out


def cells(settings: Settings, kind: str = "classic") -> dict[tuple[date, int], tuple]:
    return {(r[1], r[2]): tuple(r[3:]) for r in snapshot(settings)[0] if r[0] == kind}


def engagement(settings: Settings) -> dict[date, tuple]:
    return {r[0]: tuple(r[1:]) for r in snapshot(settings)[1]}


def compact_tables(settings: Settings) -> tuple[list, ...]:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        out = []
        for query in ("SELECT user_id, day FROM user_activity_days ORDER BY 1, 2",
                      "SELECT user_id, cohort_date FROM user_cohorts ORDER BY 1",
                      "SELECT day FROM activity_days_loaded ORDER BY 1",
                      "SELECT user_id, last_day FROM user_cohorts ORDER BY 1",
                      "SELECT day, model_version, user_id FROM user_model_days ORDER BY 1, 2, 3"):
            cur.execute(query)
            out.append(cur.fetchall())
        return tuple(out)


def reset(settings: Settings) -> None:
    """Forget everything the refreshes wrote, keep the interaction log."""
    reset_retention(settings)


def run_all(settings: Settings, dates: list[date]) -> list[RetentionRefresh]:
    return [refresh_retention(settings, d) for d in dates]


def expected_keys(dates: list[date], cohorts: set[date], horizons: tuple[int, ...]) -> dict:
    """Cells a set of runs writes: (c, N) is mature iff run c+N+1 happened, else
    a placeholder iff run c+1 happened; only non-empty cohorts have cells."""
    runs = set(dates)
    keys = {}
    for c in cohorts:
        for n in horizons:
            if c + timedelta(days=n + 1) in runs:
                keys[(c, n)] = True
            elif c + timedelta(days=1) in runs:
                keys[(c, n)] = False
    return keys


# --------------------------------------------------------------------------- hand-counted


def test_hand_counted_cells(settings: Settings) -> None:
    insert_events(settings, TINY_EVENTS)
    results = run_all(settings, [day(i) for i in range(1, 11)])

    got = cells(settings)
    want = {(day(c), n): v for (c, n), v in TINY_EXPECTED.items()}
    assert set(got) == set(want)
    for key, (size, retained, rate, mature) in want.items():
        g_size, g_retained, g_rate, g_mature = got[key]
        assert (g_size, g_retained, g_mature) == (size, retained, mature), key
        assert g_rate == (None if rate is None else pytest.approx(rate)), key
    # immature cells are NULL, never zero; a mature cell with no retained user is 0
    assert got[(day(5), 7)][1:3] == (None, None)
    assert got[(day(1), 7)][1:3] == (0, 0.0)

    assert [r.run_date for r in results] == [day(i) for i in range(1, 11)]
    assert results[0].activity_rows == 3  # users 1, 2, 3 on day 0
    assert results[4].activity_rows == 0  # day 4 had impressions only
    assert all(r.seconds >= 0 for r in results)

    # compact tables: UTC days, no impressions, one cohort per active user
    activity, cohorts, loaded, _, _ = compact_tables(settings)
    assert (7, day(6)) in activity and (7, day(7)) not in activity
    assert (5, day(1)) in activity and (5, day(2)) not in activity
    assert (8, day(8)) in activity and (8, day(7)) not in activity
    assert all(user != 9 for user, _ in activity)
    assert (2, day(1)) not in activity and (2, day(7)) not in activity
    assert dict(cohorts) == {1: day(0), 2: day(0), 3: day(0), 4: day(1), 5: day(1), 6: day(2),
                             7: day(5), 8: day(6), 10: day(9)}
    assert [d for (d,) in loaded] == [day(i) for i in range(10)]

    full_counts = full_recompute(settings, LAST_RUN)
    assert full_counts == {"classic": len(want), "rolling": len(want), "engagement": 10, "model": 0}
    assert cells(settings) == got


def test_days_are_utc_whatever_the_session_time_zone(settings: Settings) -> None:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        cur.execute(sql.SQL("ALTER DATABASE {} SET timezone TO 'Asia/Kolkata'").format(
            sql.Identifier(cur.fetchone()[0])))
    dispose_engines()  # new connections pick up the database default
    insert_events(settings, TINY_EVENTS)
    run_all(settings, [day(i) for i in range(1, 11)])
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SHOW timezone")
        assert cur.fetchone()[0] == "Asia/Kolkata"
    got = cells(settings)
    want = {(day(c), n): (size, retained, rate if rate is None else pytest.approx(rate), mature)
            for (c, n), (size, retained, rate, mature) in TINY_EXPECTED.items()}
    assert got == want
    full_recompute(settings, LAST_RUN)
    assert cells(settings) == got


def test_cells_mature_as_days_arrive(settings: Settings) -> None:
    insert_events(settings, TINY_EVENTS)
    run_all(settings, [day(1), day(2), day(3)])  # newest day: 2
    got = cells(settings)
    assert got == {
        (day(0), 1): (3, 1, pytest.approx(1 / 3), True),
        (day(0), 7): (3, None, None, False),
        (day(1), 1): (2, 1, 0.5, True),
        (day(1), 7): (2, None, None, False),
        (day(2), 1): (1, None, None, False),
        (day(2), 7): (1, None, None, False),
    }
    full_recompute(settings, day(3))
    assert cells(settings) == got


def test_rerun_picks_up_corrections_of_the_newest_day(settings: Settings) -> None:
    insert_events(settings, TINY_EVENTS)
    run_all(settings, [day(i) for i in range(1, 11)])
    assert cells(settings)[(day(2), 7)] == (1, 1, 1.0, True)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        # day 9 is corrected: user 6's event was a duplicate, user 11 arrived late
        cur.execute("DELETE FROM interactions WHERE user_id = 6 AND event_time >= %s", (at(9, 0),))
    insert_events(settings, [(at(9, 18), 11, "click")])

    refresh_retention(settings, LAST_RUN)
    got = cells(settings)
    assert got[(day(2), 7)] == (1, 0, 0.0, True)
    assert got[(day(9), 1)] == (2, None, None, False)
    assert got[(day(9), 7)] == (2, None, None, False)

    # the newest cohort disappears entirely: its placeholders go
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM interactions WHERE user_id IN (10, 11)")
    refresh_retention(settings, LAST_RUN)
    incremental = cells(settings)
    assert (day(9), 1) not in incremental and (day(9), 7) not in incremental
    full_recompute(settings, LAST_RUN)
    assert cells(settings) == incremental


def test_late_event_on_an_old_day_then_rerunning_its_dates(settings: Settings) -> None:
    """A correction of an old day d reaches the cells once dates d+1 .. d+max(N)+1
    (capped at the last date) are re-run: cohorts move, emptied cohorts lose their rows."""
    insert_events(settings, TINY_EVENTS)
    run_all(settings, [day(i) for i in range(1, 11)])
    insert_events(settings, [(at(5, 9), 8, "consume")])  # user 8 was active a day earlier

    run_all(settings, [day(i) for i in range(6, 11)])
    incremental = cells(settings)
    assert incremental[(day(5), 1)] == (2, 2, 1.0, True)  # users 7 and 8
    assert incremental[(day(5), 7)] == (2, None, None, False)
    assert not {(day(6), 1), (day(6), 7)} & set(incremental)  # cohort of day 6 is empty now
    _, cohorts, _, last_days, _ = compact_tables(settings)
    assert dict(cohorts)[8] == day(5)
    assert dict(last_days)[8] == day(8)
    full_recompute(settings, LAST_RUN)
    assert cells(settings) == incremental


def test_out_of_order_backfill_equals_in_order_and_full_recompute(settings: Settings) -> None:
    insert_events(settings, TINY_EVENTS)
    dates = [day(i) for i in range(1, 11)]
    run_all(settings, dates)
    in_order, in_order_compact = snapshot(settings), compact_tables(settings)

    for seed in range(3):
        reset(settings)
        shuffled = dates[:]
        random.Random(seed).shuffle(shuffled)
        run_all(settings, shuffled + shuffled[:3])  # and re-run three of them
        assert snapshot(settings) == in_order, shuffled
        compact = compact_tables(settings)
        assert compact == in_order_compact  # same activity, cohorts and loaded days

    full_recompute(settings, LAST_RUN)
    assert snapshot(settings) == in_order


def test_n_zero_is_mature_at_once_and_not_overwritten(settings: Settings) -> None:
    settings = dataclasses.replace(settings, retention_days=(0, 1))
    insert_events(settings, TINY_EVENTS)
    run_all(settings, [day(3), day(1), day(2), day(1)])
    got = cells(settings)
    assert got[(day(0), 0)] == (3, 3, 1.0, True)
    assert got[(day(2), 0)] == (1, 1, 1.0, True)
    assert got[(day(2), 1)] == (1, None, None, False)
    full_recompute(settings, day(3))
    assert cells(settings) == got


def test_another_log_in_the_same_schema_is_refused_until_a_rebuild(settings: Settings) -> None:
    """The retention tables belong to one log: a refresh reading another is refused, naming both."""
    from recsys.stages.retention import rebuild_retention

    insert_events(settings, TINY_EVENTS)
    run_all(settings, [day(1), day(2)])
    before = snapshot(settings)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("CREATE VIEW clicks_only AS SELECT * FROM interactions WHERE event_type = 'click'")
    other = dataclasses.replace(settings, source_table="clicks_only")
    with pytest.raises(DataValidationError, match=r"built from the log recsys\.interactions, the settings now read "
                                                  r"recsys\.clicks_only.*recsys retention rebuild"):
        refresh_retention(other, day(3))
    assert snapshot(settings) == before  # nothing written
    # the same log named with its schema is the same log
    refresh_retention(dataclasses.replace(settings, source_table=f"{settings.schema}.interactions"), day(3))
    rebuild_retention(other, day(3))
    refresh_retention(other, day(4))
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT source_table FROM retention_state")
        assert cur.fetchone() == ("recsys.clicks_only",)
        # tables built before migration 0008 recorded no log: the next refresh records its own
        cur.execute("UPDATE retention_state SET source_table = NULL")
    refresh_retention(other, day(4))
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT source_table FROM retention_state")
        assert cur.fetchone() == ("recsys.clicks_only",)


def test_active_event_types_are_configurable(settings: Settings) -> None:
    insert_events(settings, TINY_EVENTS)
    clicks_only = dataclasses.replace(settings, active_event_types=("click",))
    run_all(clicks_only, [day(1), day(2), day(3)])
    got = cells(clicks_only)
    # user 2 only consumed; user 4 first clicked on day 2, user 6 on day 3
    assert got[(day(0), 1)] == (2, 1, 0.5, True)
    assert got[(day(1), 1)] == (1, 0, 0.0, True)
    assert got[(day(2), 1)] == (1, None, None, False)


def test_concurrent_refreshes_serialise(settings: Settings) -> None:
    insert_events(settings, TINY_EVENTS)
    # the first run writes the whole history before its date: run it alone, so that
    # every concurrent run below is a nightly one and their order does not matter
    refresh_retention(settings, day(2))
    errors: list[BaseException] = []

    def run(d: date) -> None:
        try:
            refresh_retention(settings, d)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in (LAST_RUN, LAST_RUN, day(5), day(6))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    got = snapshot(settings)
    reset(settings)
    run_all(settings, [day(2), day(5), day(6), LAST_RUN])
    assert snapshot(settings) == got


def test_empty_log_and_bad_arguments(settings: Settings) -> None:
    result = refresh_retention(settings, day(3))
    assert (result.cells_written, result.activity_rows) == (0, 0)
    assert snapshot(settings) == [[], [], []]
    assert sum(full_recompute(settings, day(3)).values()) == 0
    with pytest.raises(TypeError):
        refresh_retention(settings, datetime(2024, 3, 3, tzinfo=timezone.utc))
    with pytest.raises(DataValidationError, match="retention_days"):
        refresh_retention(dataclasses.replace(settings, retention_days=()), day(3))
    with pytest.raises(DataValidationError, match="active_event_types"):
        full_recompute(dataclasses.replace(settings, active_event_types=()), day(3))


def test_missing_tables_are_reported(empty_database: str) -> None:
    with pytest.raises(SchemaMissingError, match="interactions"):
        refresh_retention(Settings(database_url=empty_database), day(3))


# Rolling: a member counts for (c, N) when their last active day (as of day 9)
# is c + N or later. Last days: 1 -> 7, 2 -> 0, 3 -> 7, 4 -> 9, 5 -> 1, 6 -> 9,
# 7 -> 6, 8 -> 8, 10 -> 9. Same keys and maturity as the classic cells.
TINY_ROLLING: dict[tuple[int, int], tuple[int, int | None, bool]] = {
    (0, 1): (3, 2, True), (0, 7): (3, 2, True),   # users 1, 3 (2 never came back)
    (1, 1): (2, 1, True), (1, 7): (2, 1, True),   # user 4 (last day 9 >= 8)
    (2, 1): (1, 1, True), (2, 7): (1, 1, True),
    (5, 1): (1, 1, True), (5, 7): (1, None, False),
    (6, 1): (1, 1, True), (6, 7): (1, None, False),  # user 8 skipped day 7, back on day 8
    (9, 1): (1, None, False), (9, 7): (1, None, False),
}

# Active users per day: 0 {1,2,3}, 1 {1,4,5}, 2 {3,4,6}, 3 {1,6}, 4 {}, 5 {1,7},
# 6 {7,8}, 7 {1,3}, 8 {8}, 9 {4,6,10}. (DAU, WAU, MAU) per day:
TINY_ENGAGEMENT: dict[int, tuple[int, int, int]] = {
    0: (3, 3, 3), 1: (3, 5, 5), 2: (3, 6, 6), 3: (2, 6, 6), 4: (0, 6, 6),
    5: (2, 7, 7), 6: (2, 8, 8), 7: (2, 7, 8), 8: (1, 6, 8), 9: (3, 7, 9),
}


def test_hand_counted_rolling_and_engagement(settings: Settings) -> None:
    insert_events(settings, TINY_EVENTS)
    results = run_all(settings, [day(i) for i in range(1, 11)])
    got = cells(settings, "rolling")
    assert got == {
        (day(c), n): (size, kept, None if kept is None else pytest.approx(kept / size), mature)
        for (c, n), (size, kept, mature) in TINY_ROLLING.items()
    }
    # rolling >= classic, and equal where nobody skipped past day c + N
    classic = cells(settings)
    assert got[(day(6), 1)][1] == 1 and classic[(day(6), 1)][1] == 0

    eng = engagement(settings)
    assert eng == {
        day(d): (dau, wau, mau, pytest.approx(dau / mau), False)
        for d, (dau, wau, mau) in TINY_ENGAGEMENT.items()
    }
    assert all(r.engagement_rows == 1 for r in results)  # day 4 too: DAU 0, not missing
    assert all(r.rows_touched >= r.cells_written + r.activity_rows for r in results)

    full_recompute(settings, LAST_RUN)
    assert cells(settings, "rolling") == got and engagement(settings) == eng


def test_rolling_follows_late_activity_of_an_old_cohort(settings: Settings) -> None:
    insert_events(settings, TINY_EVENTS)
    run_all(settings, [day(i) for i in range(1, 11)])
    assert cells(settings, "rolling")[(day(0), 7)][1] == 2
    # user 2 (cohort 0, active once) comes back on day 10: only run 11 sees it
    insert_events(settings, [(at(10), 2, "click")])
    result = refresh_retention(settings, day(11))
    rolling = cells(settings, "rolling")
    assert rolling[(day(0), 1)] == (3, 3, 1.0, True)
    assert rolling[(day(0), 7)] == (3, 3, 1.0, True)
    assert cells(settings)[(day(0), 7)] == (3, 2, pytest.approx(2 / 3), True)  # classic: exactly day 7
    assert result.rolling_cells >= 2
    incremental = snapshot(settings)
    full_recompute(settings, day(11))
    full = snapshot(settings)
    assert full[1] == incremental[1]  # engagement
    assert set(incremental[0]) <= set(full[0])


# Times chosen around midnight: in Asia/Tokyo (UTC+9, no DST) user 21's two
# events fall on one local day, user 22's on two; in UTC the other way round.
TZ_EVENTS = [
    ("2024-03-01T20:00:00+00:00", 21, "click"),    # 03-02 05:00 JST
    ("2024-03-02T10:00:00+00:00", 21, "consume"),  # 03-02 19:00 JST
    ("2024-03-01T10:00:00+00:00", 22, "click"),    # 03-01 19:00 JST
    ("2024-03-01T16:00:00+00:00", 22, "click"),    # 03-02 01:00 JST
    ("2024-03-03T14:59:59+00:00", 23, "click"),    # 03-03 23:59:59 JST
    ("2024-03-03T15:00:00+00:00", 23, "click"),    # 03-04 00:00 JST: after as-of 03-04
]


def test_days_follow_the_configured_time_zone(settings: Settings) -> None:
    insert_events(settings, TZ_EVENTS)
    tokyo = dataclasses.replace(settings, retention_timezone="Asia/Tokyo", retention_days=(1,))
    run_all(tokyo, [day(1), day(2), day(3)])
    assert cells(tokyo) == {
        (day(0), 1): (1, 1, 1.0, True),   # user 22: 03-01 and 03-02
        (day(1), 1): (1, 0, 0.0, True),   # user 21: 03-02 only
        (day(2), 1): (1, None, None, False),  # user 23: 03-03 (its 03-04 event is not loaded yet)
    }
    assert engagement(tokyo)[day(1)][:3] == (2, 2, 2)
    _, cohorts, *_ = compact_tables(tokyo)
    assert dict(cohorts) == {21: day(1), 22: day(0), 23: day(2)}
    incremental = snapshot(tokyo)
    full_recompute(tokyo, day(3))
    assert snapshot(tokyo) == incremental

    # the compact tables hold Tokyo days: a UTC refresh must not mix days in
    utc = dataclasses.replace(tokyo, retention_timezone="UTC")
    with pytest.raises(DataValidationError, match="Asia/Tokyo"):
        refresh_retention(utc, day(3))
    with pytest.raises(DataValidationError, match="active event types"):
        refresh_retention(dataclasses.replace(tokyo, active_event_types=("click",)), day(3))
    reset_retention(utc)
    run_all(utc, [day(1), day(2), day(3)])
    assert cells(utc) == {
        (day(0), 1): (2, 1, 0.5, True),   # users 21 (back on 03-02 UTC) and 22 (not)
        (day(2), 1): (1, None, None, False),  # user 23, both events on 03-03 UTC
    }
    with pytest.raises(DataValidationError, match="retention_timezone"):
        refresh_retention(dataclasses.replace(utc, retention_timezone="Mars/Olympus_Mons"), day(3))


# --------------------------------------------------------------------------- MovieLens 100K

ML_HORIZONS = (0, 1, 7, 30)


def load_movielens(settings: Settings, path: Path) -> pd.DataFrame:
    """COPY u.data into interactions as 'consume' events, in time order; returns the frame."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE ml_raw (user_id bigint, item_id bigint, rating real, ts bigint)"
                    " ON COMMIT DROP")
        with path.open("rb") as f:
            cur.copy_expert("COPY ml_raw FROM STDIN", f)  # text format: TAB separated
        cur.execute(
            "INSERT INTO interactions (event_time, user_id, item_id, event_type, value, source)"
            " SELECT to_timestamp(ts), user_id, item_id, 'consume', rating, 'movielens_test'"
            " FROM ml_raw ORDER BY ts"
        )
        cur.execute("ANALYZE interactions")
    return pd.read_csv(path, sep="\t", names=["user_id", "item_id", "rating", "ts"])


def pandas_cells(frame: pd.DataFrame, keys: dict[tuple[date, int], bool]) -> tuple[dict, set[date]]:
    """The cells `keys` computed independently in pandas, and the set of cohort days."""
    days = pd.to_datetime(frame["ts"], unit="s", utc=True).dt.date
    active = pd.DataFrame({"user_id": frame["user_id"], "day": days}).drop_duplicates()
    cohort = active.groupby("user_id")["day"].min()
    sizes = cohort.value_counts()
    active_pairs = set(zip(active["user_id"], active["day"]))
    members = cohort.groupby(cohort).groups  # cohort day -> user ids
    out = {}
    for (c, n), mature in keys.items():
        size = int(sizes[c])
        if mature:
            retained = sum((u, c + timedelta(days=n)) in active_pairs for u in members[c])
            out[(c, n)] = (size, retained, pytest.approx(retained / size), True)
        else:
            out[(c, n)] = (size, None, None, False)
    return out, set(cohort.unique())


@pytest.fixture
def movielens(settings: Settings, movielens_100k: Path) -> tuple[Settings, pd.DataFrame, list[date]]:
    s = dataclasses.replace(settings, retention_days=ML_HORIZONS)
    frame = load_movielens(s, movielens_100k)
    last_day = pd.to_datetime(frame["ts"].max(), unit="s", utc=True).date()
    dates = [last_day + timedelta(days=1 - k) for k in range(40)][::-1]  # the last 40 nights
    return s, frame, dates


def test_movielens_nightly_matches_pandas_and_full_recompute(movielens) -> None:
    settings, frame, dates = movielens
    results = run_all(settings, dates)
    assert sum(r.activity_rows for r in results) > 0
    got = cells(settings)

    # the first night loaded seven months of history and wrote every cell of it; the 39
    # nights after it matured the rest: every cohort has every cell, as pandas counts them
    _, cohort_days = pandas_cells(frame, {})
    keys = {(c, n): c + timedelta(days=n + 1) <= dates[-1] for c in cohort_days for n in ML_HORIZONS}
    want, _ = pandas_cells(frame, keys)
    assert set(got) == set(want)
    assert got == want
    assert any(v[3] for v in got.values()) and any(not v[3] for v in got.values())
    assert results[0].cells_written == 2 * sum(  # classic and rolling: the whole history before night 1
        1 for c in cohort_days if c < dates[0] for n in ML_HORIZONS)

    full_recompute(settings, dates[-1])
    assert cells(settings) == got


def test_movielens_backfill_in_any_order_is_identical(movielens) -> None:
    settings, _, dates = movielens
    run_all(settings, dates)
    in_order, in_order_compact = snapshot(settings), compact_tables(settings)

    reset(settings)
    shuffled = dates[:]
    random.Random(42).shuffle(shuffled)
    rerun = random.Random(43).sample(dates, 5)
    run_all(settings, shuffled + rerun)
    assert snapshot(settings) == in_order
    assert compact_tables(settings) == in_order_compact

    # re-running the last night changes nothing
    refresh_retention(settings, dates[-1])
    assert snapshot(settings) == in_order


def test_nightly_activity_sync_reads_one_day_through_brin(movielens) -> None:
    settings, _, dates = movielens
    run_all(settings, dates)
    newest = dates[-1] - timedelta(days=1)
    end = datetime.combine(dates[-1], datetime.min.time(), tzinfo=timezone.utc)
    query = sql.SQL(load_sql("retention/activity_fill")).format(source=sql.Identifier("interactions"))
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        # ranges appended after the index was built are summarised by autovacuum
        # (or the loader); do it now so the BRIN index can prune
        cur.execute("SELECT brin_summarize_new_values('interactions_event_time_brin')")
        cur.execute("SELECT relpages FROM pg_class WHERE relname = 'interactions'")
        pages = cur.fetchone()[0]
        cur.execute("DELETE FROM user_activity_days WHERE day = %s", (newest,))
        cur.execute(sql.SQL("EXPLAIN (ANALYZE, COSTS OFF) ") + query, {
            "load_from": end - timedelta(days=1), "load_to": end, "newest_day": newest,
            "active": list(settings.active_event_types), "tz": "UTC",
        })
        plan = "\n".join(r[0] for r in cur.fetchall())
        conn.rollback()
    assert "Bitmap Index Scan on interactions_event_time_brin" in plan, plan
    heap_blocks = int(re.search(r"Heap Blocks: (?:exact=\d+ )?lossy=(\d+)", plan).group(1))
    assert heap_blocks < pages / 20, plan  # one day of ~210 read, not the log


def test_readme_worked_example(settings: Settings) -> None:
    """The example of README's Retention section, cell by cell."""
    d = lambda i: date(2026, 1, 1) + timedelta(days=i)  # noqa: E731
    t = lambda i: f"{d(i).isoformat()}T12:00:00+00:00"  # noqa: E731
    a, b, c, dd = 1, 2, 3, 4
    insert_events(settings, [(t(0), a, "click"), (t(1), a, "click"), (t(0), b, "click"), (t(7), b, "click"),
                             (t(0), c, "click"), (t(1), dd, "click"), (t(4), dd, "click")])
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO interactions (event_time, user_id, item_id, event_type, model_version, source)"
                        " VALUES (%s, %s, 1, 'impression', %s, 'test')",
                        [(t(0), a, "mf_als"), (t(0), c, "mf_als"), (t(0), b, "rl_policy")])
    run_all(settings, [d(i) for i in range(1, 9)])
    assert cells(settings) == {
        (d(0), 1): (3, 1, pytest.approx(1 / 3), True), (d(0), 7): (3, 1, pytest.approx(1 / 3), True),
        (d(1), 1): (1, 0, 0.0, True), (d(1), 7): (1, None, None, False),
    }
    rolling = cells(settings, "rolling")
    assert rolling[(d(0), 1)][1:3] == (2, pytest.approx(2 / 3)) and rolling[(d(0), 7)][1] == 1
    assert rolling[(d(1), 1)][1:3] == (1, 1.0) and rolling[(d(1), 7)] == (1, None, None, False)
    assert engagement(settings)[d(4)] == (1, 4, 4, 0.25, False)
    models = {(r[0], r[1], r[2]): r[3:8] for r in snapshot(settings)[2]}
    assert models[("mf_als", d(0), 1)] == (2, 1, 0.5, pytest.approx(0.0945, abs=5e-4), pytest.approx(0.9055, abs=5e-4))
    assert models[("rl_policy", d(0), 1)] == (1, 0, 0.0, 0.0, pytest.approx(0.7935, abs=5e-4))
