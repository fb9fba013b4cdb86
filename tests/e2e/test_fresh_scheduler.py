"""recsys_fresh_items under the real scheduler: after a `hybrid` night on the MIND sample,
`airflow backfill create` over three hours (two with a new article, one without), then a
re-run of the first hour by clearing its task."""

import dataclasses
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from airflow_stack import AirflowStack
from recsys.db.engine import raw_connection
from recsys.dev import devdb
from recsys.interval import DataInterval
from recsys.loaders.catalogue import write_catalogue
from recsys.loaders.mind import load_mind
from recsys.pipeline import run_night
from recsys.source import assign_listed_keys

REPO = Path(__file__).resolve().parents[2]
MIND = REPO.parent / "shared" / "datasets" / "mind-small-sample"
pytestmark = pytest.mark.slow


@pytest.fixture
def metadata_url(pg_admin_url):
    name = f"recsys_airflow_e2e_{uuid.uuid4().hex[:10]}"
    url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    yield url
    devdb.drop_database(pg_admin_url, name)


def _rows(settings, statement, **params):
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def _add(settings, key, title, topic, body, published_at):
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        ids = assign_listed_keys(cur, settings.schema, "item", np.array([key], dtype=object))
        write_catalogue(cur, "test", ids, [key], {"title": [title], "topic": [topic], "body": [body],
                                                  "published_at": [published_at]})
    return int(ids[0])


def test_three_hours_backfilled_then_one_rerun(settings, metadata_url, tmp_path):
    if not (MIND / "news.tsv").exists():
        pytest.skip(f"shared dataset missing: {MIND}")
    load_mind(settings, MIND)
    s = dataclasses.replace(settings, source_table="mind_events", train_window_days=7,
                            als=dataclasses.replace(settings.als, iterations=3))
    assert run_night(s, DataInterval.for_date(date(2019, 11, 14)), models=["hybrid"]).states["hybrid.publish"] == "success"
    (clicked,) = _rows(s, """
        WITH clicks AS (SELECT m.user_key, m.news_key, m.event_time FROM mind_impressions AS m
                        JOIN items AS i ON i.item_key = m.news_key
                        WHERE m.clicked AND i.body IS NOT NULL AND m.event_time < '2019-11-13')
        SELECT (array_agg(news_key ORDER BY event_time DESC))[1] FROM clicks
        GROUP BY user_key ORDER BY count(*) DESC, user_key LIMIT 1""")[0]
    title, topic, body = _rows(s, "SELECT title, topic, body FROM items WHERE item_key = %(k)s", k=clicked)[0]
    first = _add(s, "NE2E5", f"Now: {title}", topic, body, datetime(2019, 11, 14, 5, 10, tzinfo=timezone.utc))
    second = _add(s, "NE2E6", f"Later: {title}", topic, body, datetime(2019, 11, 14, 6, 40, tzinfo=timezone.utc))
    env = {"RECSYS_DATABASE_URL": s.database_url, "RECSYS_ARTIFACT_DIR": str(s.artifact_dir),
           "RECSYS_SOURCE_TABLE": "mind_events", "RECSYS_DAG_START_DATE": "2019-11-01"}
    with AirflowStack(tmp_path / "airflow", metadata_url, REPO / "dags", env) as stack:
        stack.wait_for_dag("recsys_fresh_items")
        stack.request("PATCH", "/api/v2/dags/recsys_fresh_items", {"is_paused": False})
        # hours [05, 06), [06, 07), [07, 08): a scheduled run's logical date is its hour's start
        stack.cli("backfill", "create", "--dag-id", "recsys_fresh_items", "--from-date", "2019-11-14T05:00:00+00:00",
                  "--to-date", "2019-11-14T07:00:00+00:00", "--max-active-runs", "1")
        runs = stack.wait_for_runs("recsys_fresh_items", lambda r: r["run_type"] == "backfill", 3)
        assert sorted(r["state"] for r in runs) == ["success"] * 3, stack.logs()
        by_hour = {datetime.fromisoformat(r["data_interval_start"]).hour: r for r in runs}
        states = {h: stack.request("GET", f"/api/v2/dags/recsys_fresh_items/dagRuns/{r['dag_run_id']}"
                                          "/taskInstances/merge_new_items")["state"] for h, r in by_hour.items()}
        assert states == {5: "success", 6: "success", 7: "skipped"}, stack.logs()
        assert _rows(s, "SELECT lists_version FROM live_models WHERE model = 'hybrid'") == [("hybrid@2019-11-14T07",)]
        assert _rows(s, "SELECT model_version, base_lists FROM fresh_lists ORDER BY 1") == [
            ("hybrid@2019-11-14T06", "hybrid@2019-11-14"), ("hybrid@2019-11-14T07", "hybrid@2019-11-14T06")]
        live = {i for (i,) in _rows(s, "SELECT DISTINCT item_id FROM live_recommendations WHERE model = 'hybrid'")}
        assert {first, second} <= live
        lists = "SELECT user_id, item_ids, scores FROM recommendation_lists WHERE model_version = %(v)s ORDER BY 1"
        before = _rows(s, lists, v="hybrid@2019-11-14T06")

        # a re-run of the first hour: same lists, and the later hour stays live
        stamp = _rows(s, "SELECT created_at FROM fresh_lists WHERE model_version = 'hybrid@2019-11-14T06'")
        stack.cli("tasks", "clear", "recsys_fresh_items", "-t", "merge_new_items", "-s", "2019-11-14T05:00:00+00:00",
                  "-e", "2019-11-14T05:00:00+00:00", "-y")
        deadline = time.time() + 300
        while _rows(s, "SELECT created_at FROM fresh_lists WHERE model_version = 'hybrid@2019-11-14T06'") == stamp:
            assert time.time() < deadline, stack.logs()
            time.sleep(2)
        assert _rows(s, lists, v="hybrid@2019-11-14T06") == before
        assert _rows(s, "SELECT lists_version FROM live_models WHERE model = 'hybrid'") == [("hybrid@2019-11-14T07",)]
