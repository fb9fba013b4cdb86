"""`dag.test()` of recsys_nightly with its alerts going to a real SMTP server and a local HTTP
endpoint standing in for a Slack webhook: a model the gate keeps out, a task that fails
without retries on bad input, and no connection at all (nothing sent, the log says so)."""

import logging
import re
from urllib.parse import quote
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from alert_sinks import alert_sinks, mail_text
from recsys.db import engine as db
from recsys.sim.synthetic_log import simulate_log

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
BASE_URL = "http://airflow.test:8080"
NO_CHANNEL = "no alert sent, no alert channel is set up"


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["recsys_nightly"]


def _states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def _night(settings, monkeypatch, env: dict[str, str], day: date):
    for key, value in {"RECSYS_DATABASE_URL": settings.database_url, "RECSYS_ARTIFACT_DIR": str(settings.artifact_dir),
                       "RECSYS_ALS_ITERATIONS": "3", "RECSYS_ALS_SEARCH": "0",
                       "AIRFLOW__API__BASE_URL": BASE_URL, **env}.items():
        monkeypatch.setenv(key, value)
    return _dag().test(logical_date=datetime(day.year, day.month, day.day, tzinfo=timezone.utc),
                       run_conf={"models": ["mf_als"], "k": 5, "score_shards": 1})


def _nan_log(settings) -> None:
    """The log seen through a view with one NaN value inside the interval of 2026-01-20: bad input."""
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("CREATE VIEW log_with_nan AS SELECT event_time, user_id, item_id, event_type, value"
                    " FROM interactions UNION ALL"
                    " SELECT '2026-01-19 12:00+00'::timestamptz, 1::bigint, 1::bigint, 'consume', 'NaN'::float8")


def test_a_model_the_gate_keeps_out_is_mailed_and_posted_with_the_reason_and_a_link(
        airflow_db, settings, monkeypatch):
    simulate_log(settings, days=20, users=300, items=200, seed=3, start_date=date(2026, 1, 1))
    with alert_sinks() as (inbox, hook, env):
        # any normal day is below 50 x the trailing median: data health holds the night at the gate
        dag_run = _night(settings, monkeypatch, {**env, "RECSYS_HEALTH_MIN_VOLUME_RATIO": "50"}, date(2026, 1, 20))
        states = _states(dag_run)
        assert states["mf_als.gate"] == states["mf_als.publish"] == "skipped", states
        assert str(getattr(dag_run.state, "value", dag_run.state)) == "success", states
        mails, posts = list(inbox.mails), list(hook.posts)
    assert len(mails) == 1 and len(posts) == 1, (mails, posts)
    recipients, mail = mails[0]
    assert sorted(recipients) == ["ml@test.local", "oncall@test.local"]
    assert mail["From"] == "recsys@test.local"
    assert mail["Subject"] == "[recsys] recsys_nightly 2026-01-20 mf_als.gate: not published"
    path, body = posts[0]
    assert path == "/T000/B000/test-token"
    link = f"{BASE_URL}/dags/recsys_nightly/runs/{quote(dag_run.run_id)}/tasks/mf_als.gate?try_number=1"
    for text in (mail_text(mail), body["text"]):
        for expected in ("recsys_nightly", "2026-01-20", "mf_als", "mf_als.gate", link,
                         "mf_als@2026-01-20 not published: data health held the night: volume: events "):
            assert expected in text, (expected, text)
        # the reason's figures: the day's events, the trailing median, the threshold (50 x the median)
        events, median, threshold = map(int, re.search(
            r"volume: events (\d+) \(median of the 7 days before: (\d+)\) is below the threshold (\d+)", text).groups())
        assert threshold == 50 * median and events < threshold
    assert body["text"].splitlines()[1:5] == ["DAG: recsys_nightly", "as-of date: 2026-01-20", "model: mf_als",
                                              "step: mf_als.gate"]


def test_a_task_failing_on_bad_input_is_mailed_and_posted_with_its_error(airflow_db, settings, monkeypatch):
    simulate_log(settings, days=20, users=300, items=200, seed=3, start_date=date(2026, 1, 1))
    _nan_log(settings)
    with alert_sinks() as (inbox, hook, env):
        dag_run = _night(settings, monkeypatch, {**env, "RECSYS_SOURCE_TABLE": "log_with_nan"}, date(2026, 1, 20))
        extract = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "extract")
        assert str(getattr(extract.state, "value", extract.state)) == "failed" and extract.try_number == 1
        mails, posts = list(inbox.mails), list(hook.posts)
    # extract alone failed (its dependants are upstream_failed, which calls no callback)
    assert len(mails) == 1 and len(posts) == 1, (mails, posts)
    link = f"{BASE_URL}/dags/recsys_nightly/runs/{quote(dag_run.run_id)}/tasks/extract?try_number=1"
    assert mails[0][1]["Subject"] == "[recsys] recsys_nightly 2026-01-20 extract: failed after its last try"
    for text in (mail_text(mails[0][1]), posts[0][1]["text"]):
        for expected in ("recsys_nightly", "2026-01-20", "mf_als", "extract", link,
                         "log_with_nan.value: 1 rows hold NaN", "not retried: fix the input"):
            assert expected in text, (expected, text)
    # the alert came on top of the registry's record, not instead of it
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT model_version, status FROM model_runs")
        assert cur.fetchall() == [("mf_als@2026-01-20", "failed")]


def test_without_connections_nothing_is_sent_and_the_log_says_so_once(airflow_db, settings, monkeypatch, caplog):
    simulate_log(settings, days=20, users=300, items=200, seed=3, start_date=date(2026, 1, 1))
    _nan_log(settings)
    with alert_sinks() as (inbox, hook, env):
        # the servers run, but no AIRFLOW_CONN_* names them
        for key in ("AIRFLOW_CONN_RECSYS_SMTP", "AIRFLOW_CONN_RECSYS_SLACK"):
            monkeypatch.delenv(key, raising=False)
        with caplog.at_level(logging.INFO, logger="recsys.airflow_support"):
            dag_run = _night(settings, monkeypatch, {"RECSYS_SOURCE_TABLE": "log_with_nan",
                                                     "RECSYS_ALERT_EMAIL_TO": env["RECSYS_ALERT_EMAIL_TO"]},
                             date(2026, 1, 20))
        assert _states(dag_run)["extract"] == "failed"
        assert inbox.mails == [] and hook.posts == []
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith(NO_CHANNEL)]
    assert len(said) == 1, [r.getMessage() for r in caplog.records if r.name == "recsys.airflow_support"]
    assert "connections 'recsys_smtp', 'recsys_slack' not defined" in said[0]
    assert "extract: failed after its last try" in said[0]
