"""`dag.test()` of recsys_nightly: the "went live" asset events it leaves in Airflow's metadata
database, and the nights that leave none (a history-only publish, a rejected model)."""

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.sim.synthetic_log import simulate_log

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
MF_ALS, DEFAULT = "recsys://recsys/live/mf_als", "recsys://recsys/live/default"


def _dag(dag_id: str = "recsys_nightly"):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


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
            .where(AssetEvent.source_dag_id == "recsys_nightly", AssetEvent.source_run_id == dag_run.run_id)
            .order_by(AssetEvent.id)).all()
    return [(uri, task_id, dict(extra)) for uri, task_id, extra in rows]


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def test_went_live_events_carry_the_version_and_history_only_or_rejected_nights_emit_none(
        airflow_db, settings, monkeypatch):
    simulate_log(settings, days=20, users=300, items=200, seed=3, start_date=date(2026, 1, 1))
    monkeypatch.setenv("RECSYS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(settings.artifact_dir))
    monkeypatch.setenv("RECSYS_ALS_ITERATIONS", "5")
    dag = _dag()
    conf = {"models": ["mf_als"], "k": 5, "score_shards": 2}

    def night(day: int):
        dag_run = dag.test(logical_date=datetime(2026, 1, day, tzinfo=timezone.utc), run_conf=conf)
        assert str(getattr(dag_run.state, "value", dag_run.state)) == "success", _states(dag_run)
        return dag_run

    # the first night: mf_als goes live, and the alias serves it
    first = night(20)
    users, rows = _rows(settings, "SELECT count(DISTINCT user_id), count(*) FROM live_recommendations"
                                  " WHERE model = 'mf_als'")[0]
    assert rows == 5 * users > 0
    events = _events(first)
    assert [(uri, task) for uri, task, _ in events] == [(MF_ALS, "mf_als.publish"), (DEFAULT, "choose")], events
    assert events[0][2] == {"model": "mf_als", "model_version": "mf_als@2026-01-20", "run_date": "2026-01-20",
                            "live": True, "rows": rows, "users": users}
    alias = events[1][2]
    assert {k: alias[k] for k in ("alias", "model", "model_version", "served_before", "run_date", "live")} == {
        "alias": "default", "model": "mf_als", "model_version": "mf_als@2026-01-20", "served_before": None,
        "run_date": "2026-01-20", "live": True}
    assert alias["reason"].startswith("mf_als (mf_als@2026-01-20) ndcg@5")
    # the example consumer, run by hand (no triggering events; the scheduler's runs: tests/e2e)
    refreshed = _dag("recsys_live_lists_refresh").test()
    assert str(getattr(refreshed.state, "value", refreshed.state)) == "success", _states(refreshed)
    lists = "SELECT model, model_version, user_id, rank, item_id FROM {} ORDER BY 1, 3, 4"
    assert _rows(settings, lists.format("live_lists_snapshot")) == _rows(settings, lists.format("live_recommendations"))

    # an older date, run after: its lists are published as history only, and nothing moves
    older = night(18)
    assert _states(older)["mf_als.publish"] == _states(older)["choose"] == "success"
    assert _rows(settings, "SELECT count(*) > 0 FROM recommendations WHERE run_date = '2026-01-18'") == [(True,)]
    assert _rows(settings, "SELECT run_date FROM live_models") == [(date(2026, 1, 20),)]
    assert _events(older) == []

    # a night whose gate rejects mf_als: no publish, and the alias still serves the 20th's lists
    monkeypatch.setenv("RECSYS_GATE_TOLERANCE", "-1")  # every challenger counts as worse
    rejected = night(21)
    states = _states(rejected)
    assert states["mf_als.gate"] == states["mf_als.publish"] == "skipped" and states["choose"] == "success", states
    assert _rows(settings, "SELECT model, run_date FROM serving_aliases") == [("mf_als", date(2026, 1, 21))]
    assert _events(rejected) == []
    assert _rows(settings, "SELECT model_version FROM live_recommendations WHERE model = 'default' LIMIT 1") == [
        ("mf_als@2026-01-20",)]


def test_a_worker_that_sees_another_schema_than_the_dag_file_fails_the_publish_at_once(
        airflow_db, settings, monkeypatch):
    """The alias the publish task declared is the parse-time schema's: an event added to another
    alias would be dropped without a word, so the task refuses before publishing anything."""
    from recsys.airflow_support import _went_live_outlet
    from recsys.errors import ConfigurationError
    from recsys.night import Step

    task = _dag().get_task("mf_als.publish")
    step = Step("mf_als.publish", "publish", "mf_als")
    assert _went_live_outlet({"task": task}, step, settings) == ("recsys.went_live.recsys.mf_als", MF_ALS)
    import dataclasses

    with pytest.raises(ConfigurationError, match="RECSYS_SCHEMA"):
        _went_live_outlet({"task": task}, step, dataclasses.replace(settings, schema="analytics"))
    assert _went_live_outlet({"task": _dag().get_task("extract")}, Step("extract", "extract"), settings) is None
