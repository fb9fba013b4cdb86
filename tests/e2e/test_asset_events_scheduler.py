"""The asset events under the real scheduler: a nightly run triggered through the REST API
emits "went live" events, the scheduler triggers recsys_live_lists_refresh on them, and its
run refreshes live_lists_snapshot; a history-only night after it triggers nothing."""

import json
import time
import urllib.parse
import uuid
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from airflow_stack import AirflowStack
from recsys.db import engine as db
from recsys.dev import devdb
from recsys.sim.synthetic_log import simulate_log

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
NIGHTLY, REFRESH = "recsys_nightly", "recsys_live_lists_refresh"
LISTS = "SELECT model, model_version, user_id, rank, item_id, score FROM {} ORDER BY 1, 3, 4"


@pytest.fixture
def metadata_url(pg_admin_url):
    name = f"recsys_airflow_e2e_{uuid.uuid4().hex[:10]}"
    url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    yield url
    devdb.drop_database(pg_admin_url, name)


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def _events(stack, **filters) -> list[dict]:
    query = urllib.parse.urlencode({"limit": 100, "order_by": "timestamp", **filters})
    return stack.request("GET", f"/api/v2/assets/events?{query}")["asset_events"]


def _return_value(stack, run_id: str) -> dict:
    entry = stack.request("GET", f"/api/v2/dags/{REFRESH}/dagRuns/{urllib.parse.quote(run_id)}"
                                 "/taskInstances/refresh/xcomEntries/return_value")
    return json.loads(entry["value"]) if isinstance(entry["value"], str) else entry["value"]


def _trigger(stack, day: str) -> dict:
    run = stack.request("POST", f"/api/v2/dags/{NIGHTLY}/dagRuns",
                        {"logical_date": f"{day}T00:00:00Z", "conf": {"k": 5, "models": ["mf_als"]}})
    [done] = stack.wait_for_runs(NIGHTLY, lambda r: r["dag_run_id"] == run["dag_run_id"], 1, timeout=240)
    assert done["state"] == "success", stack.logs()
    return done


def _refreshes_settled(stack, settings, timeout: float = 120) -> list[dict]:
    """The refresh runs once every one has finished and the snapshot shows the live lists."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = stack.dag_runs(REFRESH)
        finished = runs and all(r["state"] in ("success", "failed") for r in runs)
        if finished and _rows(settings, LISTS.format("live_lists_snapshot")) == \
                _rows(settings, LISTS.format("live_recommendations")):
            return runs
        time.sleep(2)
    raise TimeoutError(f"{REFRESH} did not refresh the snapshot: {stack.dag_runs(REFRESH)}\n{stack.logs()}")


def test_went_live_events_trigger_the_refresh_and_a_history_only_night_does_not(settings, metadata_url, tmp_path):
    simulate_log(settings, days=20, users=300, items=200, seed=3, start_date=date(2026, 1, 1))
    env = {
        "RECSYS_DATABASE_URL": settings.database_url,
        "RECSYS_ARTIFACT_DIR": str(settings.artifact_dir),
        "RECSYS_DAG_START_DATE": "2026-01-01",
        "RECSYS_ALS_ITERATIONS": "5",
    }
    with AirflowStack(tmp_path / "airflow", metadata_url, REPO / "dags", env) as stack:
        stack.cli("pools", "set", "recsys_training", "2", "training and evaluation tasks")
        for dag_id in (NIGHTLY, REFRESH):
            stack.wait_for_dag(dag_id)
            stack.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

        night = _trigger(stack, "2026-01-20")
        users, rows = _rows(settings, "SELECT count(DISTINCT user_id), count(*) FROM live_recommendations"
                                      " WHERE model = 'mf_als'")[0]
        emitted = _events(stack, source_dag_id=NIGHTLY)
        by_task = {e["source_task_id"]: e for e in emitted}
        assert sorted(by_task) == ["choose", "mf_als.publish"] and len(emitted) == 2, emitted
        assert by_task["mf_als.publish"]["uri"] == "recsys://recsys/live/mf_als"
        assert by_task["mf_als.publish"]["extra"] == {
            "model": "mf_als", "model_version": "mf_als@2026-01-20", "run_date": "2026-01-20", "live": True,
            "rows": rows, "users": users}
        assert by_task["choose"]["uri"] == "recsys://recsys/live/default"
        assert {k: by_task["choose"]["extra"][k] for k in ("alias", "model", "model_version", "live")} == {
            "alias": "default", "model": "mf_als", "model_version": "mf_als@2026-01-20", "live": True}
        assert {e["source_run_id"] for e in emitted} == {night["dag_run_id"]}

        # the scheduler runs the consumer on them (one run, or two if the events came a loop apart)
        refreshes = _refreshes_settled(stack, settings)
        assert [r["state"] for r in refreshes] == ["success"] * len(refreshes), stack.logs()
        assert {r["run_type"] for r in refreshes} == {"asset_triggered"}
        consumed = [e for r in refreshes for e in stack.request(
            "GET", f"/api/v2/dags/{REFRESH}/dagRuns/{urllib.parse.quote(r['dag_run_id'])}/upstreamAssetEvents"
        )["asset_events"]]
        assert sorted(e["id"] for e in consumed) == sorted(e["id"] for e in emitted)
        # the refresh task read each triggering event's extra and checked the snapshot against it
        returned = [_return_value(stack, r["dag_run_id"]) for r in refreshes]
        def canonical(extras):
            return sorted(json.dumps(x, sort_keys=True) for x in extras)

        assert canonical(x for v in returned for x in v["events"]) == canonical(e["extra"] for e in emitted)
        assert sorted(n for v in returned for n in v["checked"]) == ["default", "mf_als"]
        assert _rows(settings, "SELECT model, count(*) FROM live_lists_snapshot GROUP BY 1 ORDER BY 1") == [
            ("default", rows), ("mf_als", rows)]

        # an older night, run after: history only, so no event and no refresh
        _trigger(stack, "2026-01-18")
        assert _rows(settings, "SELECT count(*) > 0 FROM recommendations WHERE run_date = '2026-01-18'") == [(True,)]
        time.sleep(8)  # a few scheduler loops (heartbeat 2 s): a refresh would have been created by now
        assert len(_events(stack, source_dag_id=NIGHTLY)) == 2
        assert len(stack.dag_runs(REFRESH)) == len(refreshes)
    assert _rows(settings, "SELECT DISTINCT model_version FROM live_lists_snapshot") == [("mf_als@2026-01-20",)]
