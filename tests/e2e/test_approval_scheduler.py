"""Approval before a go-live under the real scheduler, api-server and dag-processor
(RECSYS_APPROVAL=first_and_forced): the first publish of mf_als waits in the Required Actions
with the gate's figures in its body and goes live once approved through the HITL REST API; a
forced night that is rejected publishes nothing and records who rejected it; a forced night
left unanswered times out into a rejection."""

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
NIGHTLY, TASK = "recsys_nightly", "mf_als.approval"
TIMEOUT_MINUTES = 0.5  # the unanswered night's wait; the answered ones are answered within seconds


@pytest.fixture
def metadata_url(pg_admin_url):
    name = f"recsys_airflow_e2e_{uuid.uuid4().hex[:10]}"
    url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    yield url
    devdb.drop_database(pg_admin_url, name)


def _rows(settings, statement, **params):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement), params).fetchall()


def _trigger(stack, day: str, force: bool = False) -> str:
    conf = {"k": 5, "models": ["mf_als"], "force_publish": force}
    run = stack.request("POST", f"/api/v2/dags/{NIGHTLY}/dagRuns", {"logical_date": f"{day}T00:00:00Z", "conf": conf})
    return run["dag_run_id"]


def _path(run_id: str) -> str:
    return f"/api/v2/dags/{NIGHTLY}/dagRuns/{urllib.parse.quote(run_id)}"


def _required_action(stack, run_id: str, timeout: float = 240) -> dict:
    """The run's approval request, once its task waits for an answer."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        details = stack.request("GET", f"{_path(run_id)}/hitlDetails")["hitl_details"]
        waiting = [d for d in details if d["task_instance"]["task_id"] == TASK]
        if waiting and waiting[0]["task_instance"]["state"] == "awaiting_input":
            return waiting[0]
        time.sleep(1)
    raise TimeoutError(f"no required action in {run_id}: {stack.dag_runs(NIGHTLY)}\n{stack.logs()}")


def _answer(stack, run_id: str, option: str) -> dict:
    # Airflow 3.3.2: an answer within about a second of the task parking races the scheduler's
    # handling of the parking process's exit ("finished with state success, but the task
    # instance's state attribute is queued"), which marks the resumed task up_for_retry and asks
    # again. A person takes longer than that; the test waits a few scheduler loops (heartbeat 2 s).
    time.sleep(6)
    return stack.request("PATCH", f"{_path(run_id)}/taskInstances/{TASK}/-1/hitlDetails", {"chosen_options": [option]})


def _finished(stack, run_id: str) -> dict[str, str]:
    [run] = stack.wait_for_runs(NIGHTLY, lambda r: r["dag_run_id"] == run_id, 1, timeout=240)
    assert run["state"] == "success", stack.logs()
    tis = stack.request("GET", f"{_path(run_id)}/taskInstances?limit=100")["task_instances"]
    return {ti["task_id"]: ti["state"] for ti in tis if ti["task_id"].startswith("mf_als.")}


def _approval(settings, version):
    [(status, record)] = _rows(settings, "SELECT status, metrics -> 'approval' FROM model_runs"
                                         " WHERE model_version = :v", v=version)
    return status, record


def test_a_first_publish_waits_for_approval_and_a_rejected_or_unanswered_forced_one_publishes_nothing(
        settings, metadata_url, tmp_path):
    simulate_log(settings, days=20, users=300, items=200, seed=3, start_date=date(2026, 1, 1))
    env = {
        "RECSYS_DATABASE_URL": settings.database_url,
        "RECSYS_ARTIFACT_DIR": str(settings.artifact_dir),
        "RECSYS_DAG_START_DATE": "2026-01-01",
        "RECSYS_ALS_ITERATIONS": "5",
        "RECSYS_APPROVAL": "first_and_forced",
        "RECSYS_APPROVAL_TIMEOUT_MINUTES": str(TIMEOUT_MINUTES),
        # the scheduler's sweep of unanswered requests (15 s by default)
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
    }
    with AirflowStack(tmp_path / "airflow", metadata_url, REPO / "dags", env) as stack:
        stack.cli("pools", "set", "recsys_training", "2", "training and evaluation tasks")
        stack.wait_for_dag(NIGHTLY)
        stack.request("PATCH", f"/api/v2/dags/{NIGHTLY}", {"is_paused": False})

        # mf_als has no live version: its first publish waits, showing the gate's figures
        first = _trigger(stack, "2026-01-20")
        action = _required_action(stack, first)
        assert action["options"] == ["Approve", "Reject"] and action["defaults"] == ["Reject"]
        assert action["subject"].startswith("Publish mf_als@2026-01-20?")
        body = action["body"]
        [(gate_reason,)] = _rows(settings, "SELECT metrics -> 'gate' ->> 'reason' FROM model_runs"
                                           " WHERE model_version = 'mf_als@2026-01-20'")
        assert f"**Gate:** {gate_reason}" in body
        assert "`mf_als@2026-01-20`" in body and "2026-01-20" in body and "first publish of mf_als" in body
        [(ndcg, popular)] = _rows(settings, "SELECT max(value) FILTER (WHERE subject = 'model'),"
                                            " max(value) FILTER (WHERE subject = 'popularity') FROM eval_metrics"
                                            " WHERE model_version = 'mf_als@2026-01-20' AND metric = 'ndcg' AND k = 5")
        assert f"| ndcg@5 | {ndcg:.4f} | {popular:.4f} |" in body, body
        assert _rows(settings, "SELECT count(*) FROM live_models") == [(0,)]  # nothing live while it waits
        assert _answer(stack, first, "Approve")["responded_by"]["name"] == "admin"
        states = _finished(stack, first)
        assert states["mf_als.approval"] == "success" and states["mf_als.publish"] == "success", states
        assert _rows(settings, "SELECT model_version FROM live_models") == [("mf_als@2026-01-20",)]
        assert _rows(settings, "SELECT count(*) > 0 FROM live_recommendations WHERE model = 'mf_als'") == [(True,)]
        status, record = _approval(settings, "mf_als@2026-01-20")
        assert status == "published" and record["outcome"] == "approved" and record["by"] == "admin"

        # two forced nights at once: one rejected, one left unanswered; neither publishes
        rejected, unanswered = _trigger(stack, "2026-01-21", force=True), _trigger(stack, "2026-01-19", force=True)
        action = _required_action(stack, rejected)
        assert "forced publish" in action["body"] and "**Live now:** `mf_als@2026-01-20`" in action["body"]
        assert "| metric | this version | live | popularity |" in action["body"]
        _answer(stack, rejected, "Reject")
        _required_action(stack, unanswered)
        for run_id in (rejected, unanswered):
            states = _finished(stack, run_id)
            assert states["mf_als.approval"] == "skipped" and states["mf_als.publish"] == "skipped", states
        status, record = _approval(settings, "mf_als@2026-01-21")
        assert status == "rejected" and record["outcome"] == "rejected" and record["by"] == "admin"
        assert record["reason"].startswith("rejected by admin (forced publish")
        status, record = _approval(settings, "mf_als@2026-01-19")
        assert status == "rejected" and record["outcome"] == "timed_out" and record["by"] is None
        assert record["reason"].startswith(f"no answer within {TIMEOUT_MINUTES:g} minutes")
        # the approved lists stay live; the other nights wrote no lists
        assert _rows(settings, "SELECT model_version FROM live_models") == [("mf_als@2026-01-20",)]
        assert _rows(settings, "SELECT DISTINCT model_version FROM recommendations") == [("mf_als@2026-01-20",)]
