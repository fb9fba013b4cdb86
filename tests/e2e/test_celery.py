"""recsys_nightly on CeleryExecutor with Redis and a real `airflow celery worker`."""

import socket
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from airflow_stack import AirflowStack
from recsys.db import engine as db
from recsys.dev import devdb
from recsys.sim.synthetic_log import simulate_log

REPO = Path(__file__).resolve().parents[2]
REDIS = ("127.0.0.1", 6379)
pytestmark = pytest.mark.slow


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def metadata_url(pg_admin_url):
    name = f"recsys_airflow_celery_{uuid.uuid4().hex[:10]}"
    url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    yield url
    devdb.drop_database(pg_admin_url, name)


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379 (the Celery broker)")
def test_tasks_run_on_a_celery_worker(settings, metadata_url, tmp_path):
    simulate_log(settings, days=10, users=200, items=150, seed=5, start_date=date(2026, 1, 1))
    worker = f"recsys-test-{uuid.uuid4().hex[:6]}"
    result_backend = "db+" + metadata_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    env = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/7",
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "RECSYS_DATABASE_URL": settings.database_url,
        "RECSYS_ARTIFACT_DIR": str(settings.artifact_dir),
        "RECSYS_DAG_START_DATE": "2026-01-01",
        "RECSYS_ALS_ITERATIONS": "3",
    }
    services = ("api-server", "scheduler", "dag-processor", f"celery worker -H {worker}@%h -c 2")
    with AirflowStack(tmp_path / "airflow", metadata_url, REPO / "dags", env, services=services) as stack:
        stack.cli("pools", "set", "recsys_training", "2", "training and evaluation tasks")
        stack.wait_for_dag("recsys_nightly")
        stack.request("PATCH", "/api/v2/dags/recsys_nightly", {"is_paused": False})
        run = stack.request("POST", "/api/v2/dags/recsys_nightly/dagRuns",
                            {"logical_date": "2026-01-10T00:00:00Z", "conf": {"score_shards": 2}})
        [done] = stack.wait_for_runs("recsys_nightly", lambda r: r["dag_run_id"] == run["dag_run_id"], 1)
        assert done["state"] == "success", stack.logs()
        tis = stack.request("GET", f"/api/v2/dags/recsys_nightly/dagRuns/{run['dag_run_id']}/taskInstances?limit=100")
        instances = tis["task_instances"]
        states = {ti["task_id"]: ti["state"] for ti in instances}
        for task_id in ("extract", "mf_als.train", "mf_als.evaluate", "mf_als.gate", "mf_als.score",
                        "mf_als.publish", "retention", "ope_realised"):
            assert states[task_id] == "success", states
        # the RL branch is opt-in (models defaults to mf_als): skipped, never failed
        assert set(states.values()) <= {"success", "skipped"}, states
    # Celery ran them: every task instance carries the id of the Celery task that executed it,
    # and the worker's log shows it received them
    from sqlalchemy import create_engine

    engine = create_engine(metadata_url)
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT task_id, external_executor_id FROM task_instance"
                                " WHERE run_id = :r AND state = 'success'"), {"r": run["dag_run_id"]}).fetchall()
    engine.dispose()
    assert ids and all(celery_id for _, celery_id in ids), ids
    worker_log = next((tmp_path / "airflow").glob("celery-worker*.log")).read_text()
    assert all(celery_id in worker_log for _, celery_id in ids), worker_log[-3000:]
    end = datetime.fromisoformat(done["data_interval_end"]).date()
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        assert conn.execute(text("SELECT status FROM model_runs WHERE run_date = :d"), {"d": end}).scalar() == "published"
