"""Adding a model is one catalogue entry plus its module: a model declared here only (in
the catalogue, by the test) trains, is gated, scored and published by `dag.test()` and by
`recsys run`, with no other edit."""

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys import catalogue
from recsys.db import engine as db

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


@pytest.fixture
def toy_in_catalogue(movielens_settings, monkeypatch):
    """The toy model appended to the catalogue; the environment points at MovieLens 100K."""
    from toy_model import TOY

    monkeypatch.setattr(catalogue, "MODELS", catalogue.MODELS + (TOY,))
    for name, value in {"RECSYS_DATABASE_URL": movielens_settings.database_url, "RECSYS_ALS_SEARCH": "0",
                        "RECSYS_ARTIFACT_DIR": str(movielens_settings.artifact_dir),
                        "RECSYS_TRAIN_WINDOW_DAYS": "365"}.items():
        monkeypatch.setenv(name, value)
    return TOY


def test_a_model_declared_in_the_catalogue_runs_in_the_dag(airflow_db, movielens_settings, toy_in_catalogue):
    from airflow.dag_processing.dagbag import DagBag

    s = movielens_settings
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors
    dag = bag.dags["recsys_nightly"]
    assert {"toy_popular.train", "toy_popular.evaluate", "toy_popular.gate", "toy_popular.score",
            "toy_popular.publish"} <= set(dag.task_ids)
    assert "toy_popular" in dag.params.get_param("models").schema["items"]["enum"]

    dag_run = dag.test(logical_date=datetime(1998, 4, 23, tzinfo=timezone.utc),
                       run_conf={"train_window_days": 365, "score_shards": 2, "models": ["toy_popular"]})

    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success", states
    assert {t: st for t, st in states.items() if t.startswith("toy_popular.")} == {
        "toy_popular.train": "success", "toy_popular.evaluate": "success", "toy_popular.gate": "success",
        "toy_popular.score": "success", "toy_popular.approval": "success", "toy_popular.publish": "success"}
    assert states["mf_als.train"] == "skipped"  # not in this run's models
    assert _rows(s, "SELECT model_version, model_kind, status FROM model_runs") == [
        ("toy_popular@1998-04-23", "mf", "published")]
    # one list for everyone: the most consumed items each user has not seen
    assert _rows(s, "SELECT count(DISTINCT user_id), count(*) FROM live_recommendations"
                    " WHERE model = 'toy_popular'") == [(943, 9430)]


def test_a_model_declared_in_the_catalogue_runs_in_recsys_run(movielens_settings, toy_in_catalogue, capsys):
    from recsys import cli

    s = movielens_settings
    assert cli.main(["run", "--date", "1998-04-23", "--models", "toy_popular"]) == 0
    assert _rows(s, "SELECT model_version, status FROM model_runs") == [("toy_popular@1998-04-23", "published")]
    assert cli.main(["recommend", "1", "--model", "toy_popular"]) == 0
    assert "toy_popular@1998-04-23" in capsys.readouterr().out
