"""The nightly's Deadline Alert under the real scheduler: a night whose "lists live by" time
has already passed when the scheduler creates it (a run late on purpose) sends the "lists
not live" alert through the executor, to a real SMTP server and a local Slack webhook."""

import uuid
from datetime import datetime, time, timezone
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from airflow_stack import AirflowStack
from alert_sinks import alert_sinks, mail_text, wait_for
from recsys.dev import devdb

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
ZONE = "Europe/Berlin"


@pytest.fixture
def metadata_url(pg_admin_url):
    name = f"recsys_airflow_e2e_{uuid.uuid4().hex[:10]}"
    url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    yield url
    devdb.drop_database(pg_admin_url, name)


def test_a_night_past_its_deadline_sends_lists_not_live(settings, metadata_url, tmp_path):
    today = datetime.now(timezone.utc).date()
    # the newest whole day ends at today 00:00 UTC; its lists are due by the first HH:MM in Berlin
    # at or after that: HH:MM = that very instant's Berlin time, so the deadline is already past
    # when the scheduler creates the night (an empty log makes the night itself quick)
    live_by = datetime.combine(today, time(0), timezone.utc).astimezone(ZoneInfo(ZONE)).strftime("%H:%M")
    with alert_sinks() as (inbox, hook, sinks):
        env = {**sinks, "RECSYS_DATABASE_URL": settings.database_url, "RECSYS_ARTIFACT_DIR": str(settings.artifact_dir),
               "RECSYS_DAG_START_DATE": "2026-01-01", "RECSYS_LISTS_LIVE_BY": live_by, "RECSYS_LISTS_LIVE_TZ": ZONE}
        with AirflowStack(tmp_path / "airflow", metadata_url, REPO / "dags", env) as stack:
            stack.cli("pools", "set", "recsys_training", "2", "training and evaluation tasks")
            stack.wait_for_dag("recsys_nightly")
            stack.request("PATCH", "/api/v2/dags/recsys_nightly", {"is_paused": False})
            # catchup off: the scheduler creates the newest whole day's night, and the deadline with it
            arrived = wait_for(lambda: inbox.mails and hook.posts, timeout=150)
            runs = stack.dag_runs("recsys_nightly")
            assert arrived, f"no alert: mails {inbox.mails}, posts {hook.posts}, runs {runs}\n{stack.logs()}"
    [run] = [r for r in runs if r["run_type"] == "scheduled"]
    assert run["data_interval_end"].startswith(today.isoformat()), run
    assert len(inbox.mails) == 1 and len(hook.posts) == 1, (inbox.mails, hook.posts)
    run_date = today.isoformat()
    subject = f"[recsys] recsys_nightly {run_date}: lists not live in time"
    assert inbox.mails[0][1]["Subject"] == subject
    link = f"{stack.base}/dags/recsys_nightly/runs/{quote(run['dag_run_id'])}"
    due = datetime.combine(today, time(0), timezone.utc).isoformat(timespec="minutes")
    for text in (mail_text(inbox.mails[0][1]), hook.posts[0][1]["text"]):
        for expected in (subject, "recsys_nightly", run_date, f"lists not live by {live_by} {ZONE}",
                         f"(deadline {due})", link, run["dag_run_id"]):
            assert expected in text, (expected, text)
