"""The RL branch of recsys_nightly (train_rl -> score_rl -> publish_rl) under real Airflow."""

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys import db
from recsys.sim.closed_loop import run_closed_loop

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_rl_branch_trains_and_publishes_next_to_mf(airflow_db, settings, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    run_closed_loop(settings, days=3, users=300, items=60, seed=2)
    monkeypatch.setenv("RECSYS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(settings.artifact_dir))
    monkeypatch.setenv("RECSYS_RL_EPOCHS", "2")
    monkeypatch.setenv("RECSYS_ALS_SEARCH", "0")
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["recsys_nightly"]
    run = dag.test(logical_date=datetime(2026, 1, 3, tzinfo=timezone.utc),
                   run_conf={"models": ["mf_als", "rl_reinforce"], "score_shards": 1})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        live = dict(conn.execute(text("SELECT model, model_version FROM live_models")).fetchall())
        estimates = conn.execute(text("SELECT policy, model_version FROM ope_estimates")).fetchall()
    assert live == {"mf_als": "mf_als@2026-01-03", "rl_reinforce": "rl_reinforce@2026-01-03"}
    # the off-policy estimate on the logged day 01-01, whose next day is in the log
    assert estimates == [("rl_reinforce", "rl_reinforce@2026-01-03")]
