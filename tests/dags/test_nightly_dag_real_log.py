"""`dag.test()` of recsys_nightly on a real log: the MIND news sample as `recsys load mind` writes it.

Text keys in, text keys out; the catalogue's titles beside the lists; an article whose
`available_until` passed before the night's as-of time is never published.
"""

import dataclasses
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.loaders.items import ItemColumns, load_items
from recsys.loaders.mind import load_mind

REPO = Path(__file__).resolve().parents[2]
MIND = REPO.parent / "shared" / "datasets" / "mind-small-sample"
pytestmark = pytest.mark.slow


def _rows(settings, statement, **params):
    with db.get_engine(settings.database_url, settings.schema).begin() as conn:
        result = conn.execute(text(statement), params)
        return result.fetchall() if result.returns_rows else None


def test_nightly_dag_on_mind_publishes_its_keys_titles_and_no_expired_article(airflow_db, settings, monkeypatch,
                                                                             tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    if not (MIND / "behaviors.tsv").exists():
        pytest.skip(f"shared dataset missing: {MIND}")
    load_mind(settings, MIND)
    # the log's most clicked article (news.tsv's 2000 lines do not describe it) was taken down
    # at noon on the log's last day: the newsroom's catalogue update says so
    (expired,) = _rows(settings, "SELECT news_key FROM mind_impressions WHERE clicked GROUP BY news_key"
                                 " ORDER BY count(*) DESC, news_key LIMIT 1")[0]
    update = tmp_path / "takedowns.csv"
    update.write_text(f"news_id,title,taken_down\n{expired},Withdrawn article,2019-11-14T12:00:00Z\n")
    mind = dataclasses.replace(settings, source_table="mind_events")
    assert load_items(mind, update, ItemColumns(key="news_id", title="title", available_until="taken_down")) == 1
    monkeypatch.setenv("RECSYS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(settings.artifact_dir))
    monkeypatch.setenv("RECSYS_SOURCE_TABLE", "mind_events")
    monkeypatch.setenv("RECSYS_ALS_ITERATIONS", "3")
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors

    dag_run = bag.dags["recsys_nightly"].test(
        logical_date=datetime(2019, 11, 15, tzinfo=timezone.utc),
        run_conf={"train_window_days": 7, "models": ["mf_als", "baseline_popular"], "score_shards": 2})

    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success", states
    assert _rows(settings, "SELECT model_version, status FROM model_runs ORDER BY 1") == [
        ("baseline_popular@2019-11-15", "published"), ("mf_als@2019-11-15", "published")]
    # the log's own keys come back, for every one of the users with a list
    keys = _rows(settings, "SELECT model, count(DISTINCT user_key), bool_and(user_key ~ '^U[0-9]+$'),"
                           " bool_and(item_key ~ '^N[0-9]+$') FROM live_recommendations GROUP BY model ORDER BY 1")
    assert [row[0] for row in keys] == ["baseline_popular", "default", "mf_als"]
    assert all(row[2] and row[3] for row in keys)
    assert all(row[1] > 1000 for row in keys), keys
    # the expired article is in no list, though popularity ranks by clicks and it had the most
    assert _rows(settings, "SELECT count(*) FROM live_recommendations WHERE item_key = :key", key=expired) == [(0,)]
    # titles: the lists' items are the catalogue's news, joined by the one item key map (the
    # sample's news.tsv describes 2000 of the 7457 articles shown, none of the most popular)
    titled = _rows(settings, "SELECT count(*) FILTER (WHERE i.title IS NOT NULL), count(*) FROM live_recommendations"
                             " AS l LEFT JOIN items AS i USING (item_id) WHERE l.model = 'mf_als'")[0]
    assert titled[0] > 0, titled
    assert _rows(settings, "SELECT count(*) > 0 FROM retention WHERE cohort_date = :d", d=date(2019, 11, 14)) == [
        (True,)]
