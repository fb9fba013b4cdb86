"""Per-model retention, Wilson intervals and the two-model A/B read-out.

A hand-counted fixture pins the cells of two serving models; the SQL statistics
functions are checked against the textbook formulas and scipy; the read-out
pools serve days. Simulated logs are compared with pandas in
tests/stages/test_retention_reference.py.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, timedelta, timezone

import pytest
from scipy.stats import norm

from recsys.config import Settings
from recsys.db.engine import raw_connection
from recsys.errors import DataValidationError
from recsys.stages.retention import full_recompute, refresh_retention
from recsys.metrics.ab import compare_models

D0 = date(2024, 3, 1)
Z95 = norm.ppf(0.975)


def day(i: int) -> date:
    return D0 + timedelta(days=i)


def at(i: int, hh: int = 12) -> datetime:
    return datetime(D0.year, D0.month, D0.day, hh, tzinfo=timezone.utc) + timedelta(days=i)


# (time, user, event_type, model_version)
EVENTS = [
    (at(0, 9), 1, "impression", "mf"), (at(0, 10), 1, "impression", "mf"),  # served twice: once
    (at(0), 2, "impression", "mf"), (at(0), 3, "impression", "mf"),
    (at(0), 3, "impression", "rl"), (at(0), 4, "impression", "rl"),  # user 3 saw both models
    (at(0), 5, "impression", None),  # not attributed to any model
    (at(1), 1, "impression", "mf"),
    (at(3), 6, "impression", "rl"),
    # activity
    (at(1), 1, "click", None), (at(3), 1, "consume", None),
    (at(0, 13), 2, "click", None), (at(2), 2, "consume", None),  # same day, then day 2
    (at(1), 3, "click", None),
    (at(1), 5, "click", None),
    # user 4 is served but never active
]

# (model, serve day, N) -> (served, retained) after runs day(1)..day(4) (newest day 3)
EXPECTED = {
    ("mf", 0, 1): (3, 2),  # users 1, 3 active on day 1
    ("mf", 0, 2): (3, 1),  # user 2 on day 2
    ("rl", 0, 1): (2, 1),  # user 3
    ("rl", 0, 2): (2, 0),
    ("mf", 1, 1): (1, 0),
    ("mf", 1, 2): (1, 1),  # user 1 on day 3
    ("rl", 3, 1): (1, None),  # immature
    ("rl", 3, 2): (1, None),
}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927) score interval, written out from its definition."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def insert(settings: Settings, events: list[tuple]) -> None:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO interactions (event_time, user_id, item_id, event_type, value, model_version,"
            " propensity, source) VALUES (%s, %s, 7, %s, 1.0, %s, %s, 'test')",
            [(ts, u, kind, mv, 0.5 if kind == "impression" else None) for ts, u, kind, mv in events],
        )


def model_cells(settings: Settings) -> dict[tuple, tuple]:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT model_version, serve_day, day_n, users_served, retained_users, rate,"
                    " ci_low, ci_high, is_mature FROM model_retention")
        return {r[:3]: r[3:] for r in cur.fetchall()}


def sql_row(settings: Settings, query: str, params: tuple) -> tuple:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchone()


@pytest.fixture
def models(settings: Settings) -> Settings:
    s = dataclasses.replace(settings, retention_days=(1, 2))
    insert(s, EVENTS)
    return s


def test_hand_counted_model_cells(models: Settings) -> None:
    results = [refresh_retention(models, day(i)) for i in range(1, 5)]
    got = model_cells(models)
    assert set(got) == {(m, day(d), n) for m, d, n in EXPECTED}
    for (m, d, n), (served, kept) in EXPECTED.items():
        g_served, g_kept, g_rate, g_low, g_high, g_mature = got[(m, day(d), n)]
        assert (g_served, g_kept, g_mature) == (served, kept, kept is not None), (m, d, n)
        if kept is None:  # immature: NULL, never 0
            assert (g_rate, g_low, g_high) == (None, None, None)
        else:
            assert g_rate == pytest.approx(kept / served)
            assert (g_low, g_high) == pytest.approx(wilson(kept, served), abs=1e-12)
    assert sum(r.served_rows for r in results) == 7  # distinct (day, model, user)
    assert sum(r.model_cells for r in results) >= len(EXPECTED)

    incremental = model_cells(models)
    full = full_recompute(models, day(4))
    assert full["model"] == len(EXPECTED)
    assert model_cells(models) == incremental


def test_model_cells_in_any_order_and_rerun(models: Settings) -> None:
    for d in (day(4), day(2), day(1), day(3), day(2), day(4)):
        refresh_retention(models, d)
    shuffled = model_cells(models)
    full_recompute(models, day(4))
    assert model_cells(models) == shuffled


def test_wilson_interval_function() -> None:
    # textbook values (Newcombe 1998, table I): 0/10 -> [0, 0.2775], 1/29 -> [0.0061, 0.1718]
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(1, 29) == pytest.approx((0.0061, 0.1718), abs=1e-4)


def test_sql_statistics_match_formulas_and_scipy(settings: Settings) -> None:
    for k, n in [(0, 10), (1, 29), (15, 148), (81, 263), (10, 10), (3, 1_000_000)]:
        low, high = sql_row(settings, "SELECT * FROM wilson_interval(%s, %s)", (k, n))
        assert (low, high) == pytest.approx(wilson(k, n), abs=1e-12), (k, n)
    assert sql_row(settings, "SELECT * FROM wilson_interval(0, 0)", ()) == (None, None)

    for k1, n1, k2, n2 in [(30, 100, 45, 100), (500, 1000, 560, 1100), (10, 10_000, 80, 10_000),
                           (5, 7, 1, 9)]:
        diff, z, p = sql_row(settings, "SELECT * FROM two_proportion_z_test(%s, %s, %s, %s)", (k1, n1, k2, n2))
        pool = (k1 + k2) / (n1 + n2)
        z_ref = (k1 / n1 - k2 / n2) / math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
        assert diff == pytest.approx(k1 / n1 - k2 / n2)
        assert z == pytest.approx(z_ref, rel=1e-12)
        assert p == pytest.approx(2 * norm.sf(abs(z_ref)), rel=1e-6)  # tiny p-values keep digits
    assert sql_row(settings, "SELECT * FROM two_proportion_z_test(0, 50, 0, 60)", ()) == (0.0, 0.0, 1.0)
    assert sql_row(settings, "SELECT * FROM two_proportion_z_test(0, 0, 3, 60)", ()) == (None, None, None)


def test_compare_models_pools_mature_serve_days(models: Settings) -> None:
    for i in range(1, 5):
        refresh_retention(models, day(i))
    result = compare_models(models, "mf", "rl", 1, day(0), day(3))
    # mf: day 0 (3 served, 2 back) + day 1 (1, 0); rl: day 0 (2, 1); rl's day 3 is immature
    assert (result.a.users_served, result.a.retained_users, result.a.serve_days) == (4, 2, 2)
    assert (result.b.users_served, result.b.retained_users, result.b.serve_days) == (2, 1, 1)
    assert (result.a.ci_low, result.a.ci_high) == pytest.approx(wilson(2, 4))
    assert (result.diff, result.z, result.p_value) == (0.0, 0.0, pytest.approx(1.0))
    # Newcombe's hybrid interval of the difference, from the two Wilson intervals
    (l1, u1), (l2, u2) = wilson(2, 4), wilson(1, 2)
    assert result.diff_ci_low == pytest.approx(-math.sqrt((0.5 - l1) ** 2 + (u2 - 0.5) ** 2))
    assert result.diff_ci_high == pytest.approx(math.sqrt((u1 - 0.5) ** 2 + (0.5 - l2) ** 2))

    n2 = compare_models(models, "mf", "rl", 2, day(0), day(0))
    assert (n2.a.retained_users, n2.a.users_served, n2.b.retained_users, n2.b.users_served) == (1, 3, 0, 2)
    pool = 1 / 5
    z_ref = (1 / 3) / math.sqrt(pool * (1 - pool) * (1 / 3 + 1 / 2))
    assert n2.z == pytest.approx(z_ref) and n2.p_value == pytest.approx(2 * norm.sf(z_ref), rel=1e-6)

    nobody = compare_models(models, "mf", "never_served", 1, day(0), day(3))
    assert nobody.b.users_served == 0 and nobody.b.rate is None and nobody.p_value is None
    with pytest.raises(DataValidationError):
        compare_models(models, "mf", "mf", 1, day(0), day(3))
    with pytest.raises(DataValidationError):
        compare_models(models, "mf", "rl", 1, day(3), day(0))


def test_a_source_view_without_model_version_gives_empty_per_model_retention(settings):
    import dataclasses
    from datetime import date, datetime, timezone

    from recsys.db import engine as db
    from recsys.stages.retention import refresh_retention
    from eventdata import copy_events

    t = lambda d: datetime(2026, 1, d, 12, tzinfo=timezone.utc)  # noqa: E731
    copy_events(settings, [(t(1), 1, 1, "click", None), (t(2), 1, 2, "click", None), (t(1), 2, 1, "consume", 4.0)])
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("CREATE VIEW five_columns AS SELECT event_time, user_id, item_id, event_type, value FROM interactions")
    s = dataclasses.replace(settings, source_table="five_columns")
    for day in (2, 3):
        refresh_retention(s, date(2026, 1, day))
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM model_retention")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT cohort_size, retained_users FROM retention"
                    " WHERE retention_kind = 'classic' AND cohort_date = '2026-01-01' AND day_n = 1")
        assert cur.fetchone() == (2, 1)
