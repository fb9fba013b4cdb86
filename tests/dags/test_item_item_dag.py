"""The item-item models in the nightly DAG: chosen in the `models` param, their task groups
train, evaluate, gate, score (two shards) and publish through `dag.test()`."""

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys.db import engine as db

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_itemknn_and_ease_run_in_the_nightly_dag(airflow_db, movielens_settings, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    s = movielens_settings
    for name, value in {"RECSYS_DATABASE_URL": s.database_url, "RECSYS_ARTIFACT_DIR": str(s.artifact_dir),
                        "RECSYS_TRAIN_WINDOW_DAYS": "365", "RECSYS_ITEMKNN_NEIGHBOURS": "50",
                        "RECSYS_EASE_LAMBDAS": "300"}.items():
        monkeypatch.setenv(name, value)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors
    dag = bag.dags["recsys_nightly"]
    assert {"itemknn", "ease"} <= set(dag.params.get_param("models").schema["items"]["enum"])

    dag_run = dag.test(logical_date=datetime(1998, 4, 23, tzinfo=timezone.utc),
                       run_conf={"train_window_days": 365, "score_shards": 2, "models": ["itemknn", "ease"]})

    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success", states
    for model in ("itemknn", "ease"):
        assert {t: st for t, st in states.items() if t.startswith(f"{model}.")} == {
            f"{model}.{stage}": "success" for stage in ("train", "evaluate", "gate", "score", "approval", "publish")}, states
    assert states["mf_als.train"] == "skipped"  # not in this run's models
    with db.get_engine(s.database_url, s.schema).connect() as conn:
        runs = conn.execute(text("SELECT model_version, model_kind, status FROM model_runs ORDER BY 1")).fetchall()
        served = conn.execute(text("SELECT model, count(DISTINCT user_id), count(*) FROM live_recommendations"
                                   " GROUP BY 1 ORDER BY 1")).fetchall()
    assert runs == [("ease@1998-04-23", "item_item", "published"), ("itemknn@1998-04-23", "item_item", "published")]
    assert served == [("default", 943, 9430), ("ease", 943, 9430), ("itemknn", 943, 9430)]
