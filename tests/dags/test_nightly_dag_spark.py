"""The nightly DAG on the Spark backend, under real Airflow: `mf_backend=spark` exports the
window to Parquet, SparkSubmitOperator runs pyspark.ml's ALS in local[2] through the
`spark_default` connection, and the train, evaluate, gate, score and publish tasks consume
its factors and lists as they consume a torch fit."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from spark_local import use_local_spark
from recsys.db import engine as db

pytestmark = pytest.mark.slow


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def test_a_night_on_the_spark_backend_publishes_the_spark_lists(airflow_db, movielens_settings, monkeypatch):
    s = movielens_settings
    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(s.artifact_dir))
    # the connection a team points at its cluster; spark-submit comes with pyspark in this venv
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    use_local_spark(monkeypatch)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    assert not bag.import_errors
    dag = bag.dags["recsys_nightly"]
    task = dag.get_task("mf_als.spark_fit")
    assert type(task).__name__ == "SparkSubmitOperator" and task._conn_id == "spark_default"

    run = dag.test(logical_date=datetime(1998, 4, 23, tzinfo=timezone.utc),
                   run_conf={"train_window_days": 365, "models": ["mf_als"], "mf_backend": "spark"})

    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    assert str(getattr(run.state, "value", run.state)) == "success", states
    for stage in ("spark_export", "spark_fit", "train", "evaluate", "gate", "score", "approval", "publish"):
        assert states[f"mf_als.{stage}"] == "success", (stage, states)

    ((params, status),) = _rows(s, "SELECT params, status FROM model_runs WHERE model_version = 'mf_als@1998-04-23'")
    assert status == "published" and params["backend"] == "spark"
    assert params["spark"]["master"] == "local[2]" and params["spark"]["n_pairs"] > 90_000
    assert params["search"] == {} and params["warm_start"] == {}  # the configured values, fitted cold
    from recsys.registry_table import read_entries

    assert [(e.version, e.backend) for e in read_entries(s)] == [("mf_als@1998-04-23", "spark")]  # models list
    # the gate's figures are those of the Spark hold-out fit, beside popularity's
    subjects = {subject for (subject,) in _rows(s, "SELECT subject FROM eval_metrics WHERE metric = 'ndcg' "
                                                   "AND model_version = 'mf_als@1998-04-23'")}
    assert {"model", "popularity"} <= subjects

    # every user gets K unseen items, and the published lists are the ones Spark ranked
    per_user = _rows(s, "SELECT count(*), min(rank), max(rank) FROM live_recommendations WHERE model = 'mf_als' "
                        "GROUP BY user_id")
    assert len(per_user) == 943 and set(per_user) == {(10, 1, 10)}
    assert _rows(s, "SELECT count(*) FROM live_recommendations r JOIN interactions i "
                    "ON i.user_id = r.user_id AND i.item_id = r.item_id WHERE r.model = 'mf_als'") == [(0,)]
    spark_lists = pq.read_table(Path(s.artifact_dir) / "1998-04-23" / "mf_als" / "spark" / "out" / "top_k").to_pandas()
    published = _rows(s, "SELECT user_id, rank, item_id FROM live_recommendations WHERE model = 'mf_als' "
                         "ORDER BY user_id, rank")
    spark_lists = spark_lists.sort_values(["user_id", "rank"])
    assert np.array_equal(np.array(published, dtype=np.int64),
                          spark_lists[["user_id", "rank", "item_id"]].to_numpy(np.int64))
