"""Hardening, fuzzing: random event tables through extract, validate, train, score and publish.

Each example either publishes lists that satisfy the invariants (every published user
has exactly min(K, unseen items) distinct unseen items, ranks 1..n, scores not
increasing) or stops with one of the documented outcomes: DataValidationError, or a
skipped night (no event in the interval: EmptyWindowError; no positive event to train on).
"""

from __future__ import annotations

import math
import os
import uuid
from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from psycopg2 import sql

from hardening_support import RUN_DATE, execute, fast, query
from recsys.db import engine as db
from recsys.errors import DataValidationError
from recsys.interval import DataInterval
from recsys.pipeline import run_night
from recsys.stages.retention import reset_retention

INTERVAL = DataInterval.for_date(RUN_DATE)
WINDOW_S = 3 * 86_400
K = 3
EXAMPLES = int(os.environ.get("HARDENING_FUZZ_EXAMPLES", "30"))  # 30 keeps CI short; raise it to search harder
POSITIVE = ("click", "consume")

good_id = st.one_of(st.integers(0, 6), st.integers(0, 6), st.integers(2**31, 2**62))
good_event = st.tuples(
    st.integers(1, WINDOW_S),  # seconds before the interval end
    good_id, good_id,
    st.sampled_from(["impression", "click", "consume", "click", "consume"]),
    st.one_of(st.none(), st.floats(0, 5)),
)
# one broken field: (column index, bad value)
breakage = st.one_of(
    st.tuples(st.sampled_from([1, 2]), st.one_of(st.none(), st.integers(-2**40, -1))),
    st.tuples(st.just(3), st.sampled_from(["purchase", "", "CLICK", None])),
    st.tuples(st.just(4), st.sampled_from([float("nan"), float("inf"), float("-inf")])),
)


@st.composite
def event_tables(draw) -> list[tuple]:
    events = draw(st.lists(good_event, min_size=1, max_size=40))
    if draw(st.booleans()) and draw(st.booleans()):  # a quarter of the tables hold a broken row
        column, value = draw(breakage)
        at = draw(st.integers(0, len(events) - 1))
        events[at] = tuple(value if c == column else v for c, v in enumerate(events[at]))
    if draw(st.booleans()):  # and some hold duplicated rows
        events += events[: draw(st.integers(1, len(events)))]
    return events


def test_random_event_tables_publish_valid_lists_or_fail_as_documented(settings, tmp_path):
    outcomes: dict[str, int] = defaultdict(int)

    @hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow])
    @given(events=event_tables())
    def one_table(events: list[tuple]) -> None:
        outcomes[_run_one(settings, tmp_path, events)] += 1

    one_table()
    # the examples reach every outcome, most of them a publish
    assert outcomes["published"] >= 10 and outcomes["refused"] >= 3, dict(outcomes)


def _run_one(settings, tmp_path, events: list[tuple]) -> str:  # noqa: ANN001 - fixtures
    table = f"fuzz_{uuid.uuid4().hex[:8]}"
    s = fast(settings, k=K, train_window_days=3, source_table=table, artifact_dir=tmp_path / table)
    rows = [(INTERVAL.end - timedelta(seconds=before), u, i, t, v) for before, u, i, t, v in events]
    # the log's columns without its constraints (retention also reads model_version)
    execute(s, sql.SQL("CREATE TABLE {} (event_time timestamptz, user_id bigint, item_id bigint,"
                       " event_type text, value float8, session_id bigint, model_version text,"
                       " propensity float8)").format(sql.Identifier(table)))
    with db.raw_connection(s.database_url, s.schema) as conn, conn.cursor() as cur:
        cur.executemany(sql.SQL("INSERT INTO {} (event_time, user_id, item_id, event_type, value)"
                                " VALUES (%s, %s, %s, %s, %s)").format(sql.Identifier(table)), rows)
    try:
        report = run_night(s, INTERVAL, force_publish=True)
    except DataValidationError as exc:
        assert exc.table == table and exc.column in ("user_id", "item_id", "event_type", "value", "event_time")
        _assert_refusal_is_justified(rows, exc)
        return "refused"
    finally:
        execute(s, sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
        reset_retention(s)  # each example is a log of its own: its retention tables start empty
    if report.skipped is not None:  # nothing in the interval, or nothing positive to train on
        in_interval = any(r[0] >= INTERVAL.start for r in rows)
        has_positive = any(r[3] in POSITIVE for r in rows)
        assert not in_interval or not has_positive, report.skipped
        return "skipped"
    version = report.results["mf_als.publish"]["model_version"]
    items = {r[2] for r in rows}
    seen = defaultdict(set)
    for r in rows:
        if r[3] in POSITIVE:
            seen[r[1]].add(r[2])
    published = defaultdict(list)
    for user, rank, item, score in query(s, "SELECT user_id, rank, item_id, score FROM recommendations"
                                            " WHERE model_version = :v ORDER BY user_id, rank", v=version):
        published[user].append((rank, item, score))
    window_users = {r[1] for r in rows}
    assert set(published) <= window_users
    for user in window_users:
        unseen = items - seen[user]
        got = published.get(user, [])
        assert len(got) == min(K, len(unseen)), (user, got, unseen)
        assert [r for r, _, _ in got] == list(range(1, len(got) + 1))
        assert {i for _, i, _ in got} <= unseen and len({i for _, i, _ in got}) == len(got)
        scores = [sc for _, _, sc in got]
        assert all(math.isfinite(sc) for sc in scores) and scores == sorted(scores, reverse=True), got
    return "published"


def _assert_refusal_is_justified(rows: list[tuple], exc: DataValidationError) -> None:
    """The column named really breaks a rule (or the window is degenerate)."""
    if "single" in exc.problem:
        return
    values = [r[{"user_id": 1, "item_id": 2, "event_type": 3, "value": 4}[exc.column]] for r in rows] \
        if exc.column != "event_time" else []
    if exc.column in ("user_id", "item_id"):
        assert any(v is None or v < 0 for v in values), exc
    elif exc.column == "event_type":
        assert any(v not in ("impression", "click", "consume") for v in values), exc
    elif exc.column == "value":
        assert any(v is not None and not math.isfinite(v) for v in values), exc
