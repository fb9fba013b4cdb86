"""`dag.test()` of recsys_fresh_items after a real `hybrid` night on the MIND sample: an hour
with a new item merges it into the live lists, an hour without one is skipped, not failed."""

import dataclasses
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from recsys.db.engine import raw_connection
from recsys.interval import DataInterval
from recsys.loaders.catalogue import write_catalogue
from recsys.loaders.mind import load_mind
from recsys.pipeline import run_night
from recsys.source import assign_listed_keys

REPO = Path(__file__).resolve().parents[2]
MIND = REPO.parent / "shared" / "datasets" / "mind-small-sample"
pytestmark = pytest.mark.slow


def _rows(settings, statement, **params):
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def _states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def _events(dag_run) -> list[tuple[str, str, dict]]:
    """(asset URI, source task, extra) of every asset event the run emitted, in order."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.source_task_id, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == "recsys_fresh_items", AssetEvent.source_run_id == dag_run.run_id)
            .order_by(AssetEvent.id)).all()
    return [(uri, task_id, dict(extra)) for uri, task_id, extra in rows]


def test_fresh_dag_merges_an_hour_and_skips_an_empty_one(airflow_db, settings, monkeypatch):
    if not (MIND / "news.tsv").exists():
        pytest.skip(f"shared dataset missing: {MIND}")
    load_mind(settings, MIND)
    s = dataclasses.replace(settings, source_table="mind_events", train_window_days=7,
                            als=dataclasses.replace(settings.als, iterations=3))
    assert run_night(s, DataInterval.for_date(date(2019, 11, 14)), models=["hybrid"]).states["hybrid.publish"] == "success"
    # the new article: a twin of the latest click (with a text) of the user with the most such clicks
    (clicked,) = _rows(s, """
        WITH clicks AS (SELECT m.user_key, m.news_key, m.event_time FROM mind_impressions AS m
                        JOIN items AS i ON i.item_key = m.news_key
                        WHERE m.clicked AND i.body IS NOT NULL AND m.event_time < '2019-11-13')
        SELECT (array_agg(news_key ORDER BY event_time DESC))[1] FROM clicks
        GROUP BY user_key ORDER BY count(*) DESC, user_key LIMIT 1""")[0]
    title, topic, body = _rows(s, "SELECT title, topic, body FROM items WHERE item_key = %(k)s", k=clicked)[0]
    with raw_connection(s.database_url, s.schema) as conn, conn.cursor() as cur:
        ids = assign_listed_keys(cur, s.schema, "item", np.array(["NDAG5"], dtype=object))
        write_catalogue(cur, "test", ids, ["NDAG5"], {"title": [f"Now: {title}"], "topic": [topic], "body": [body],
                                                        "published_at": [datetime(2019, 11, 14, 5, 20, tzinfo=timezone.utc)]})
    for name, value in {"RECSYS_DATABASE_URL": s.database_url, "RECSYS_ARTIFACT_DIR": str(s.artifact_dir),
                        "RECSYS_SOURCE_TABLE": "mind_events"}.items():
        monkeypatch.setenv(name, value)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors
    dag = bag.dags["recsys_fresh_items"]

    # a run triggered with a logical date covers the hour that ends there (the timetable's manual interval)
    run = dag.test(logical_date=datetime(2019, 11, 14, 6, tzinfo=timezone.utc))
    assert _states(run) == {"merge_new_items": "success"}
    assert _rows(s, "SELECT lists_version FROM live_models WHERE model = 'hybrid'") == [("hybrid@2019-11-14T06",)]
    assert _rows(s, "SELECT new_items FROM fresh_lists") == [(1,)]
    assert _rows(s, "SELECT count(*) > 0 FROM live_recommendations WHERE item_id = %(i)s", i=int(ids[0])) == [(True,)]
    [(uri, task_id, extra)] = _events(run)
    assert (uri, task_id) == ("recsys://recsys/live/hybrid", "merge_new_items")
    assert {k: extra[k] for k in ("model", "model_version", "base_version", "run_date", "live", "new_items")} == {
        "model": "hybrid", "model_version": "hybrid@2019-11-14T06", "base_version": "hybrid@2019-11-14",
        "run_date": "2019-11-14", "live": True, "new_items": 1}

    run = dag.test(logical_date=datetime(2019, 11, 14, 10, tzinfo=timezone.utc))
    assert str(getattr(run.state, "value", run.state)) == "success", _states(run)
    assert _states(run) == {"merge_new_items": "skipped"}
    assert _events(run) == []
    assert _rows(s, "SELECT lists_version FROM live_models WHERE model = 'hybrid'") == [("hybrid@2019-11-14T06",)]
