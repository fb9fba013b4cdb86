"""`dag.test()` of recsys_nightly on real Airflow and a real PostgreSQL."""

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys.db import engine as db

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors
    return bag.dags["recsys_nightly"]


def _states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def test_nightly_dag_writes_the_tables_for_its_logical_date(airflow_db, movielens_settings, monkeypatch):
    s = movielens_settings
    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(s.artifact_dir))
    dag = _dag()

    dag_run = dag.test(logical_date=datetime(1998, 4, 23, tzinfo=timezone.utc),
                       run_conf={"train_window_days": 365, "score_shards": 3, "models": ["mf_als", "mf_bpr"]})

    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success", _states(dag_run)
    states = _states(dag_run)
    # mf_als's Spark steps skip themselves on the default torch backend (tests/dags/test_nightly_dag_spark.py)
    assert states.pop("mf_als.spark_export") == states.pop("mf_als.spark_fit") == "skipped"
    # the shared tasks and both MF task groups ran; every other model's tasks are skipped
    ran = {t: st for t, st in states.items() if "." not in t or t.split(".")[0] in ("mf_als", "mf_bpr")}
    assert set(ran.values()) == {"success"}, ran
    assert {st for t, st in states.items() if t not in ran and t.endswith(".train")} == {"skipped"}, states
    assert states["rl_reinforce.train"] == states["rl_cql.train"] == "skipped"
    assert sum(1 for ti in dag_run.get_task_instances() if ti.task_id == "mf_als.score") == 3
    assert sum(1 for ti in dag_run.get_task_instances() if ti.task_id == "mf_bpr.score") == 3
    assert _rows(s, "SELECT model_version, status, triggered_by FROM model_runs ORDER BY 1") == [
        ("mf_als@1998-04-23", "published", "manual"), ("mf_bpr@1998-04-23", "published", "manual")]
    assert _rows(s, "SELECT model, count(DISTINCT user_id), count(*) FROM live_recommendations"
                    " GROUP BY model ORDER BY model") == [
        ("default", 943, 9430), ("mf_als", 943, 9430), ("mf_bpr", 943, 9430)]
    # the serving alias serves the model whose lists did better on the night's hold-out
    (winner,) = _rows(s, "SELECT model FROM serving_aliases WHERE alias = 'default'")[0]
    assert states["choose"] == "success" and winner in ("mf_als", "mf_bpr")
    assert _rows(s, "SELECT model FROM alias_choices WHERE run_date = '1998-04-23'") == [(winner,)]
    assert _rows(s, "SELECT count(*) FROM eval_metrics WHERE model_version = 'mf_bpr@1998-04-23'"
                    " AND subject = 'model' AND metric = 'recall'") == [(1,)]
    assert _rows(s, "SELECT count(*) > 0 FROM eval_metrics") == [(True,)]
    assert _rows(s, "SELECT count(*) > 0 FROM retention WHERE cohort_date = '1998-04-22'") == [(True,)]


def test_empty_night_is_skipped_not_failed(airflow_db, movielens_settings, monkeypatch):
    s = movielens_settings
    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(s.artifact_dir))
    dag_run = _dag().test(logical_date=datetime(1998, 6, 2, tzinfo=timezone.utc))
    states = _states(dag_run)
    assert states["extract"] == "skipped"
    assert states["mf_als.train"] == states["mf_als.publish"] == "skipped"
    assert states["retention"] == "success"
    assert _rows(s, "SELECT count(*) FROM model_runs") == [(0,)]


def test_bad_input_fails_at_once_and_the_registry_says_failed(airflow_db, movielens_settings, monkeypatch):
    s = movielens_settings
    with db.raw_connection(s.database_url, s.schema) as conn, conn.cursor() as cur:
        # a user's own log mapped through a view, with one NaN value inside the interval
        cur.execute("CREATE VIEW log_with_nan AS SELECT event_time, user_id, item_id, event_type, value"
                    " FROM interactions UNION ALL"
                    " SELECT '1998-04-22 12:00+00'::timestamptz, 1::bigint, 1::bigint, 'consume', 'NaN'::float8")
    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(s.artifact_dir))
    monkeypatch.setenv("RECSYS_SOURCE_TABLE", "log_with_nan")

    dag_run = _dag().test(logical_date=datetime(1998, 4, 23, tzinfo=timezone.utc))

    extract = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "extract")
    assert str(getattr(extract.state, "value", extract.state)) == "failed"
    assert extract.try_number == 1  # not retried: a retry cannot fix the input
    assert _states(dag_run)["mf_als.publish"] == "upstream_failed"
    assert _states(dag_run)["retention"] == "success"
    rows = _rows(s, "SELECT model_version, status, metrics->'last_failure'->>'stage',"
                    " metrics->'last_failure'->>'error' FROM model_runs")
    assert [r[:3] for r in rows] == [("mf_als@1998-04-23", "failed", "extract")]
    assert rows[0][3].startswith("log_with_nan.value: 1 rows hold NaN")
    assert _rows(s, "SELECT count(*) FROM live_models") == [(0,)]
