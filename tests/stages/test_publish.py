"""Publishing: atomic swaps under concurrent readers, re-runs, backfills, history, the reader role."""

import dataclasses
import threading
from datetime import date, datetime, timedelta, timezone

import numpy as np
import psycopg2
import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.dev import devdb
from recsys.stages import publish
from recsys.db.registry import model_version, register_trained

MODEL = "mf_als"
USERS, K = 2000, 10


def _register(settings, run_date: date) -> str:
    end = datetime.combine(run_date, datetime.min.time(), tzinfo=timezone.utc)
    return register_trained(settings, {
        "model": MODEL, "model_kind": "mf", "model_version": model_version(MODEL, run_date), "run_date": run_date,
        "data_interval_start": end - timedelta(days=1), "data_interval_end": end,
        "train_window_start": end - timedelta(days=90), "n_interactions": 1, "n_users": USERS, "n_items": 100,
        "params": {}, "triggered_by": "test", "artifact_path": "-", "artifact_sha256": "-",
    })


def _publish(settings, run_date: date, seed: int = 0, users: int = USERS) -> bool:
    version = _register(settings, run_date)
    rng = np.random.default_rng(seed)
    user_ids = np.repeat(np.arange(users, dtype=np.int64), K)
    ranks = np.tile(np.arange(1, K + 1, dtype=np.int16), users)
    items = rng.integers(0, 10_000, size=users * K)
    scores = np.tile(np.linspace(1, 0, K, dtype=np.float32), users)
    return publish.publish_lists(settings, MODEL, version, run_date, user_ids, ranks, items, scores)


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def _partitions(settings):
    return sorted(r[0] for r in _rows(settings, """SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'recommendation_lists'::regclass"""))


def test_readers_never_see_a_mix_or_an_empty_table_during_swaps(settings):
    _publish(settings, date(2026, 1, 1))
    stop = threading.Event()
    seen, errors = [], []

    def reader():
        conn = psycopg2.connect(devdb._dsn(settings.database_url))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SET search_path TO recsys")
                while not stop.is_set():
                    cur.execute("SELECT model_version, count(*) FROM live_recommendations"
                                " WHERE model = %s GROUP BY 1", (MODEL,))
                    seen.append(tuple(cur.fetchall()))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for day in range(2, 6):
        _publish(settings, date(2026, 1, day), seed=day)
        _publish(settings, date(2026, 1, day), seed=day + 100)  # a re-run swaps the live version in place
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(seen) > 20
    versions = set()
    for answer in seen:
        assert len(answer) == 1, f"a reader saw a mix or nothing: {answer}"
        version, count = answer[0]
        assert count == USERS * K
        versions.add(version)
    assert len(versions) >= 2


def test_rerun_of_a_date_replaces_only_that_date(settings):
    _publish(settings, date(2026, 1, 1), seed=1)
    _publish(settings, date(2026, 1, 2), seed=2)
    before = _rows(settings, "SELECT item_id FROM recommendations WHERE run_date = '2026-01-01' ORDER BY user_id, rank")
    live_before = _rows(settings, "SELECT user_id, rank, item_id FROM live_recommendations ORDER BY 1, 2")
    _publish(settings, date(2026, 1, 2), seed=3)
    assert _rows(settings, "SELECT item_id FROM recommendations WHERE run_date = '2026-01-01' ORDER BY user_id, rank") == before
    assert _rows(settings, "SELECT count(*) FROM recommendations WHERE run_date = '2026-01-02'") == [(USERS * K,)]
    assert _rows(settings, "SELECT user_id, rank, item_id FROM live_recommendations ORDER BY 1, 2") != live_before


def test_out_of_order_backfill_keeps_the_newest_date_live(settings):
    for day in (5, 3, 4):
        went_live = _publish(settings, date(2026, 1, day), seed=day)
        assert went_live == (day == 5)
    assert _rows(settings, "SELECT model_version FROM live_models") == [("mf_als@2026-01-05",)]
    assert _rows(settings, "SELECT DISTINCT model_version FROM live_recommendations") == [("mf_als@2026-01-05",)]
    assert _rows(settings, "SELECT model_version, status FROM model_runs ORDER BY 1") == [
        ("mf_als@2026-01-03", "superseded"), ("mf_als@2026-01-04", "superseded"), ("mf_als@2026-01-05", "published")]
    assert _rows(settings, "SELECT run_date::text, count(*) FROM recommendations GROUP BY 1 ORDER BY 1") == [
        ("2026-01-03", USERS * K), ("2026-01-04", USERS * K), ("2026-01-05", USERS * K)]


def test_two_concurrent_publishes_of_one_date_serialise(settings):
    _register(settings, date(2026, 1, 7))
    errors = []

    def run(seed):
        try:
            _publish(settings, date(2026, 1, 7), seed=seed)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _partitions(settings) == ["recommendations_mf_als_20260107"]
    assert _rows(settings, "SELECT count(*), count(DISTINCT (user_id, rank)) FROM live_recommendations") == [
        (USERS * K, USERS * K)]


def test_history_keeps_the_configured_number_of_versions(settings):
    s = dataclasses.replace(settings, keep_versions=3)
    for day in range(1, 7):
        _publish(s, date(2026, 2, day), users=50)
    assert _partitions(s) == [f"recommendations_mf_als_2026020{d}" for d in (4, 5, 6)]
    assert _rows(s, "SELECT model_version FROM live_models") == [("mf_als@2026-02-06",)]


def test_failed_publish_leaves_the_old_version_live(settings, monkeypatch):
    _publish(settings, date(2026, 3, 1), seed=1)
    live_before = _rows(settings, "SELECT user_id, rank, item_id FROM live_recommendations ORDER BY 1, 2")

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure after COPY")

    monkeypatch.setattr(publish, "define_live_view", broken)
    with pytest.raises(RuntimeError, match="injected"):
        _publish(settings, date(2026, 3, 2), seed=2)
    assert _rows(settings, "SELECT user_id, rank, item_id FROM live_recommendations ORDER BY 1, 2") == live_before
    assert _partitions(settings) == ["recommendations_mf_als_20260301"]
    assert _rows(settings, "SELECT to_regclass('recommendations_mf_als_20260302_staging') IS NULL") == [(True,)]


def test_reader_role_reads_the_live_view_and_cannot_write(settings):
    _publish(settings, date(2026, 1, 1))
    conn = psycopg2.connect(devdb._dsn(settings.database_url))
    try:
        with conn.cursor() as cur:
            cur.execute("SET ROLE recsys_reader")
            cur.execute("SELECT count(*) FROM recsys.live_recommendations")
            assert cur.fetchone()[0] == USERS * K
            for statement in ("INSERT INTO recsys.interactions (event_time, user_id, item_id, event_type)"
                              " VALUES (now(), 1, 1, 'click')",
                              "DELETE FROM recsys.live_models",
                              "SELECT count(*) FROM recsys.interactions"):
                cur.execute("SAVEPOINT s")
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
                cur.execute("ROLLBACK TO SAVEPOINT s")
    finally:
        conn.rollback()
        conn.close()


def test_lists_of_different_lengths_and_unsorted_input_read_back_in_rank_order(settings):
    """A user with fewer candidates than K gets a shorter list; input order does not matter."""
    version = _register(settings, date(2026, 4, 1))
    user_ids = np.array([9, 5, 9, 5, 5, 7], dtype=np.int64)
    ranks = np.array([2, 3, 1, 1, 2, 1], dtype=np.int16)
    items = np.array([92, 53, 91, 51, 52, 71], dtype=np.int64)
    scores = np.array([0.5, 0.1, 0.9, 0.8, 0.4, 0.3], dtype=np.float32)
    assert publish.publish_lists(settings, MODEL, version, date(2026, 4, 1), user_ids, ranks, items, scores)
    rows = _rows(settings, "SELECT user_id, rank, item_id, score FROM live_recommendations ORDER BY user_id, rank")
    assert [tuple(r[:3]) for r in rows] == [(5, 1, 51), (5, 2, 52), (5, 3, 53), (7, 1, 71), (9, 1, 91), (9, 2, 92)]
    assert [round(r[3], 6) for r in rows] == [0.8, 0.4, 0.1, 0.3, 0.9, 0.5]
    assert _rows(settings, "SELECT count(*) FROM recommendation_lists") == [(3,)]


@pytest.mark.parametrize("ranks", [[1, 3], [1, 1], [2, 3]])
def test_ranks_with_a_gap_or_a_repeat_are_refused(settings, ranks):
    version = _register(settings, date(2026, 4, 2))
    with pytest.raises(ValueError, match="user 4 has rank"):
        publish.publish_lists(settings, MODEL, version, date(2026, 4, 2), np.array([4, 4]), np.array(ranks),
                              np.array([1, 2]), np.array([0.5, 0.4], dtype=np.float32))
    assert _rows(settings, "SELECT count(*) FROM live_models") == [(0,)]
