"""The DAG as users run it: real api-server, scheduler and dag-processor on
PostgreSQL with LocalExecutor; a run triggered through the REST API, then
`airflow backfill create` over three past dates, checked date by date."""

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
pytestmark = pytest.mark.slow


@pytest.fixture
def metadata_url(pg_admin_url):
    name = f"recsys_airflow_e2e_{uuid.uuid4().hex[:10]}"
    url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    yield url
    devdb.drop_database(pg_admin_url, name)


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def test_rest_trigger_then_backfill_three_dates(settings, metadata_url, tmp_path):
    simulate_log(settings, days=20, users=300, items=200, seed=3, start_date=date(2026, 1, 1))
    env = {
        "RECSYS_DATABASE_URL": settings.database_url,
        "RECSYS_ARTIFACT_DIR": str(settings.artifact_dir),
        "RECSYS_DAG_START_DATE": "2026-01-01",
        "RECSYS_ALS_ITERATIONS": "5",
    }
    with AirflowStack(tmp_path / "airflow", metadata_url, REPO / "dags", env) as stack:
        stack.cli("pools", "set", "recsys_training", "2", "training and evaluation tasks")
        stack.wait_for_dag("recsys_nightly")
        stack.request("PATCH", "/api/v2/dags/recsys_nightly", {"is_paused": False})
        run = stack.request("POST", "/api/v2/dags/recsys_nightly/dagRuns",
                            {"logical_date": "2026-01-20T00:00:00Z", "conf": {"k": 5}})
        [done] = stack.wait_for_runs("recsys_nightly", lambda r: r["dag_run_id"] == run["dag_run_id"], 1)
        assert done["state"] == "success", stack.logs()
        manual_end = datetime.fromisoformat(done["data_interval_end"]).date()
        assert _rows(settings, f"SELECT status, triggered_by FROM model_runs WHERE run_date = '{manual_end}'") == [
            ("published", "manual")]
        assert _rows(settings, "SELECT max(rank) FROM live_recommendations") == [(5,)]

        stack.cli("backfill", "create", "--dag-id", "recsys_nightly", "--from-date", "2026-01-10",
                  "--to-date", "2026-01-12")
        backfills = stack.wait_for_runs("recsys_nightly", lambda r: r["run_type"] == "backfill", 3)
        assert sorted(r["state"] for r in backfills) == ["success"] * 3, stack.logs()

    for r in backfills:
        end = datetime.fromisoformat(r["data_interval_end"]).date()
        start = datetime.fromisoformat(r["data_interval_start"]).date()
        rows = _rows(settings, f"""SELECT status, triggered_by, data_interval_start::date, n_interactions
                                  FROM model_runs WHERE run_date = '{end}'""")
        assert rows and rows[0][:3] == ("superseded", "backfill", start), rows
        # trained only on data before its own as-of date
        seen = _rows(settings, f"""SELECT count(*) FROM interactions WHERE event_time < '{end}'
                                  AND event_type IN ('click', 'consume')""")[0][0]
        assert rows[0][3] == seen
        assert _rows(settings, f"SELECT count(*) > 0 FROM recommendations WHERE run_date = '{end}'") == [(True,)]
    # the backfills never replaced the newer live version
    assert _rows(settings, "SELECT run_date FROM live_models") == [(manual_end,)]
