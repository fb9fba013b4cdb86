"""The hourly job (recsys.stages.fresh) on the MIND sample after a real `hybrid` night.

Two hours in a row, a re-run of one of them, an hour with nothing new (skipped), and a new
item that is in the live lists after its hour and gone once its `available_until` passes;
then the next night's publish supersedes the hourly lists.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

import numpy as np

from recsys.db.engine import raw_connection
from recsys.errors import NothingFresh
from recsys.interval import DataInterval
from recsys.loaders.catalogue import write_catalogue
from recsys.loaders.mind import load_mind
from recsys.pipeline import run_night
from recsys.source import assign_listed_keys
from recsys.stages.fresh import run_fresh_hour

MIND = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "mind-small-sample"  # beside the checkout


def query(settings, statement: str, **params):
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def add_item(settings, key: str, title: str, topic: str, body: str | None, **bounds) -> int:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        ids = assign_listed_keys(cur, settings.schema, "item", np.array([key], dtype=object))
        columns = {"title": [title], "topic": [topic], "body": [body]}
        columns.update({name: [value] for name, value in bounds.items()})
        write_catalogue(cur, "test", ids, [key], columns)
    return int(ids[0])

NIGHT = date(2019, 11, 14)
H5 = datetime(2019, 11, 14, 5, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def live_lists(s, model="hybrid"):
    rows = query(s, "SELECT user_id, array_agg(item_id ORDER BY rank) FROM live_recommendations"
                    " WHERE model = %(m)s GROUP BY user_id", m=model)
    return {u: items for u, items in rows}


def lists_of(s, version):
    rows = query(s, "SELECT user_id, item_ids, scores FROM recommendation_lists WHERE model_version = %(v)s",
                 v=version)
    return {u: (items, scores) for u, items, scores in rows}


@pytest.fixture
def hybrid_live(settings):
    if not (MIND / "news.tsv").exists():
        pytest.skip(f"shared dataset missing: {MIND}")
    load_mind(settings, MIND)
    s = dataclasses.replace(settings, source_table="mind_events", train_window_days=7,
                            als=dataclasses.replace(settings.als, iterations=3))
    report = run_night(s, DataInterval.for_date(NIGHT), models=["hybrid"])
    assert report.states["hybrid.publish"] == "success", (report.states, report.failures, report.skips)
    return s


def test_two_hours_a_rerun_an_empty_hour_and_expiry(hybrid_live):
    s = hybrid_live
    user, clicked_key = query(s, """
        WITH clicks AS (SELECT m.user_key, m.news_key, m.event_time FROM mind_impressions AS m
                        JOIN items AS i ON i.item_key = m.news_key
                        WHERE m.clicked AND i.body IS NOT NULL AND m.event_time < '2019-11-13')
        SELECT user_key, (array_agg(news_key ORDER BY event_time DESC))[1] FROM clicks
        GROUP BY user_key ORDER BY count(*) DESC, user_key LIMIT 1""")[0]
    user_id = query(s, "SELECT user_id FROM user_keys WHERE user_key = %(k)s", k=user)[0][0]
    title, topic, body = query(s, "SELECT title, topic, body FROM items WHERE item_key = %(k)s", k=clicked_key)[0]
    night_lists = live_lists(s)
    # hour 05: a twin of her click that expires a few seconds from now; hour 06: another twin
    expires = datetime.now(timezone.utc) + timedelta(seconds=8)
    first = add_item(s, "NFRESH5", f"Breaking: {title}", topic, body, published_at=H5 + timedelta(minutes=10),
                     available_until=expires)
    second = add_item(s, "NFRESH6", f"More: {title}", topic, body, published_at=H5 + HOUR + timedelta(minutes=5))
    # not of hour 05: later, and one already gone at the hour's end
    add_item(s, "NLATER", f"Later: {title}", topic, body, published_at=H5 + 3 * HOUR)
    add_item(s, "NSHORT", f"Short: {title}", topic, body, published_at=H5, available_until=H5 + timedelta(minutes=30))

    m5 = run_fresh_hour(s, H5, H5 + HOUR)
    assert (m5.model_version, m5.base_lists, m5.new_items, m5.live) == ("hybrid@2019-11-14T06", "hybrid@2019-11-14",
                                                                       1, True)
    assert m5.users_changed > 0
    lists = live_lists(s)
    assert first in lists[user_id]
    assert set(lists) == set(night_lists)  # every user keeps a list
    assert all(len(items) <= s.k for items in lists.values())
    # a user's list gets a new item only in place of a lower-scored one: the night's items keep their order
    for u, items in lists.items():
        kept = [i for i in items if i != first]
        assert kept == night_lists[u][:len(kept)]
    assert query(s, "SELECT lists_version, model_version FROM live_models WHERE model = 'hybrid'") == [
        ("hybrid@2019-11-14T06", "hybrid@2019-11-14")]

    m6 = run_fresh_hour(s, H5 + HOUR, H5 + 2 * HOUR)
    assert (m6.model_version, m6.base_lists, m6.live) == ("hybrid@2019-11-14T07", "hybrid@2019-11-14T06", True)
    lists = live_lists(s)
    assert {first, second} <= set(lists[user_id])  # the hours add up
    hour6 = lists_of(s, "hybrid@2019-11-14T07")

    # a re-run of hour 05 gives the same lists, and does not push the later hour out of serving
    before = lists_of(s, "hybrid@2019-11-14T06")
    again = run_fresh_hour(s, H5, H5 + HOUR)
    assert (again.base_lists, again.live) == ("hybrid@2019-11-14", False)
    assert lists_of(s, "hybrid@2019-11-14T06") == before
    assert query(s, "SELECT lists_version FROM live_models WHERE model = 'hybrid'") == [("hybrid@2019-11-14T07",)]
    # and a re-run of the live hour too
    assert run_fresh_hour(s, H5 + HOUR, H5 + 2 * HOUR).live
    assert lists_of(s, "hybrid@2019-11-14T07") == hour6

    with pytest.raises(NothingFresh, match="no catalogue item became available"):
        run_fresh_hour(s, H5 + 5 * HOUR, H5 + 6 * HOUR)

    # availability: the first item leaves the live lists once its available_until has passed
    time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    lists = live_lists(s)
    assert first not in lists[user_id] and second in lists[user_id]

    # the next night supersedes the hourly lists
    report = run_night(s, DataInterval.for_date(NIGHT + timedelta(days=1)), models=["hybrid"])
    assert report.states["hybrid.publish"] == "success", (report.states, report.failures, report.skips)
    assert query(s, "SELECT lists_version, model_version FROM live_models WHERE model = 'hybrid'") == [
        ("hybrid@2019-11-15", "hybrid@2019-11-15")]
    assert {r[0] for r in query(s, "SELECT DISTINCT model_version FROM live_recommendations")} == {"hybrid@2019-11-15"}


def test_no_live_hybrid_is_a_skip(settings):
    add_item(settings, "NX", "Some title", "news", "a body", published_at=H5)
    with pytest.raises(NothingFresh, match="no hybrid model is live"):
        run_fresh_hour(settings, H5, H5 + HOUR)


def test_merge_keeps_the_top_k_by_score_and_leaves_out_seen_listed_and_unknown():
    from recsys.models.hybrid import HybridModel
    from recsys.stages.fresh import merge_lists

    rng = np.random.default_rng(1)
    model = HybridModel(rng.standard_normal((50, 4)).astype(np.float32), np.zeros((1, 4), np.float32),
                        np.arange(50, dtype=np.int64), np.zeros(1, np.int64), {}, np.zeros((2, 2), np.float32))
    new_ids = np.array([100, 101, 102], dtype=np.int64)
    factors = rng.standard_normal((3, 4)).astype(np.float32)
    base = [(u, [1, 2, 3], [0.5, 0.0, -0.5]) for u in range(50)] + [(999, [7], [9.0])]  # 999: not in the model
    seen = [(0, 100), (0, 101), (0, 102)]
    base[1] = (1, [100, 2, 3], [0.5, 0.0, -0.5])  # already lists a new item
    users, ranks, items, scores, changed = merge_lists(model, new_ids, factors, base, seen, k=3)
    one_chunk = merge_lists(model, new_ids, factors, base, seen, k=3, chunk_users=7)
    assert all(np.array_equal(a, b) for a, b in zip((users, ranks, items, scores), one_chunk[:4]))
    lists = {u: list(items[users == u]) for u in np.unique(users).tolist()}
    assert lists[0] == [1, 2, 3] and lists[999] == [7]  # seen everything new / unknown to the model
    assert lists[1].count(100) == 1
    for u in range(2, 50):
        expected = sorted([(0.5, 1), (0.0, 2), (-0.5, 3)] + [(float(model.user_factors[u] @ factors[j]), i)
                                                              for j, i in enumerate(new_ids)], key=lambda p: -p[0])
        assert lists[u] == [i for _, i in expected[:3]]
    assert changed == sum(1 for u, v in lists.items() if set(v) & set(new_ids.tolist()) and u != 1) + \
        (1 if set(lists[1]) - {100, 2, 3} else 0)
    assert set(ranks[users == 2].tolist()) == {1, 2, 3}
