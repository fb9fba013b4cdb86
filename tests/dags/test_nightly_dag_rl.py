"""The RL task group of recsys_nightly (rl_reinforce.train -> score -> ope -> gate -> publish) under real Airflow."""

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.sim.closed_loop import run_closed_loop

REPO = Path(__file__).resolve().parents[2]
RUN_MODELS = ("mf_als", "rl_reinforce")  # the runs' `models` param; every other model's tasks are skipped
pytestmark = pytest.mark.slow


def test_rl_branch_trains_and_publishes_next_to_mf(airflow_db, settings, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from recsys.stages.gate import RL_RANKING_REASON

    run_closed_loop(settings, days=3, users=300, items=60, seed=2)
    monkeypatch.setenv("RECSYS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(settings.artifact_dir))
    monkeypatch.setenv("RECSYS_RL_EPOCHS", "2")
    monkeypatch.setenv("RECSYS_ALS_SEARCH", "0")
    # in this small simulated world popularity is ahead of ALS on the hold-out (0.33 against 0.22),
    # and this test is about the RL branch next to a published MF model, not the floor (test_gate.py's)
    monkeypatch.setenv("RECSYS_GATE_BASELINE_FLOOR", "0")
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["recsys_nightly"]
    # the estimate comes before the gate (the DR gate reads it); realised rates after retention
    # ... and its ranking hold-out (its evidence without an estimate), held to the baselines' floor
    assert dag.get_task("rl_reinforce.gate").upstream_task_ids == {
        "rl_reinforce.ope", "rl_reinforce.train", "rl_reinforce.evaluate", "health",
        "baseline_popular.evaluate", "baseline_trending.evaluate"}
    assert "rl_reinforce.gate" in dag.get_task("rl_reinforce.publish").upstream_task_ids
    assert dag.get_task("ope_realised").upstream_task_ids == {"retention"}
    run = dag.test(logical_date=datetime(2026, 1, 3, tzinfo=timezone.utc),
                   run_conf={"models": list(RUN_MODELS), "score_shards": 1})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    # mf_als's Spark steps skip themselves on the default torch backend
    assert states.pop("mf_als.spark_export") == states.pop("mf_als.spark_fit") == "skipped"
    assert {s for t, s in states.items() if "." not in t or t.split(".")[0] in RUN_MODELS} == {"success"}, states
    assert states["mf_bpr.train"] == states["rl_cql.train"] == "skipped"  # not in this run's models
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        live = dict(conn.execute(text("SELECT model, model_version FROM live_models")).fetchall())
        estimates = conn.execute(text("SELECT policy, model_version FROM ope_estimates")).fetchall()
        rl_gate = conn.execute(text("SELECT metrics->'gate'->>'reason' FROM model_runs"
                                    " WHERE model_version = 'rl_reinforce@2026-01-03'")).scalar()
    assert live == {"mf_als": "mf_als@2026-01-03", "rl_reinforce": "rl_reinforce@2026-01-03"}
    # the off-policy estimate on the logged day 01-01, whose next day is in the log
    assert estimates == [("rl_reinforce", "rl_reinforce@2026-01-03")]
    # the default ranking gate lets RL through, as before gate_rl existed
    # evidence: a DR estimate and lists that are not one list for everyone
    assert rl_gate.startswith(f"{RL_RANKING_REASON}; evidence: the off-policy estimate, DR D1 return ") and " distinct items over " in rl_gate, rl_gate


def test_dr_gate_compares_both_models_with_their_live_versions(airflow_db, settings, monkeypatch):
    """RECSYS_GATE_METRIC=dr_return_lcb: evaluate and ope_rl store the estimates the gates read."""
    from airflow.dag_processing.dagbag import DagBag

    from recsys.config import DR_GATE_METRIC
    from recsys.interval import DataInterval
    from recsys.pipeline import run_night

    run_closed_loop(settings, days=3, users=300, items=60, seed=2)
    env = {"RECSYS_DATABASE_URL": settings.database_url, "RECSYS_ARTIFACT_DIR": str(settings.artifact_dir),
           "RECSYS_RL_EPOCHS": "2", "RECSYS_ALS_SEARCH": "0", "RECSYS_OPE_BOOTSTRAP": "50",
           "RECSYS_GATE_METRIC": DR_GATE_METRIC,
           # wide enough that both challengers pass on 300 users, so the whole night runs
           "RECSYS_GATE_TOLERANCE": "1.0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from recsys.config import Settings

    champions = Settings.from_env()
    run_night(champions, DataInterval.for_date(date(2026, 1, 3)), extra_models=("rl_reinforce",))

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["recsys_nightly"]
    run = dag.test(logical_date=datetime(2026, 1, 4, tzinfo=timezone.utc),
                   run_conf={"models": list(RUN_MODELS), "score_shards": 1})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    # mf_als's Spark steps skip themselves on the default torch backend
    assert states.pop("mf_als.spark_export") == states.pop("mf_als.spark_fit") == "skipped"
    assert {s for t, s in states.items() if "." not in t or t.split(".")[0] in RUN_MODELS} == {"success"}, states
    assert states["mf_bpr.train"] == states["rl_cql.train"] == "skipped"  # not in this run's models
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        gates = dict(conn.execute(text("SELECT model, metrics->'gate' FROM model_runs"
                                       " WHERE run_date = '2026-01-04'")).fetchall())
        live = dict(conn.execute(text("SELECT model, model_version FROM live_models")).fetchall())
        estimates = conn.execute(text("SELECT policy, model_version FROM ope_estimates"
                                      " WHERE run_date = '2026-01-04' ORDER BY policy")).fetchall()
    for model in ("mf_als", "rl_reinforce"):
        gate = gates[model]
        assert gate["metric"] == DR_GATE_METRIC and gate["logged_day"] == "2026-01-02", gate
        assert gate["champion_version"] == f"{model}@2026-01-03", gate
        assert gate["challenger"] == gate["challenger_ci"][0] and gate["champion"] is not None, gate
    assert live == {"mf_als": "mf_als@2026-01-04", "rl_reinforce": "rl_reinforce@2026-01-04"}
    assert estimates == [("mf_als", "mf_als@2026-01-04"), ("rl_reinforce", "rl_reinforce@2026-01-04")]
