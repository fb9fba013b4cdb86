"""The text of the alerts (recsys.alerts) and the deadline's arithmetic (recsys.deadline), without Airflow."""

from datetime import date, datetime, time, timedelta, timezone

import pytest

from recsys import alerts, deadline
from recsys.errors import ConfigurationError

REASON = ("mf_als@2026-03-01 not published: ndcg@10 0.1012 vs live 0.1250 (paired lower bound -0.0301 < "
          "-0.0063 = -5% x live, 412 users); the live tables stay")
LINK = "http://airflow.example:8080/dags/recsys_nightly/runs/scheduled__2026-02-28T00:00:00+00:00/tasks/mf_als.gate"


def test_a_rejection_names_dag_date_model_step_reason_and_link():
    alert = alerts.publish_rejected("recsys_nightly", "scheduled__2026-02-28T00:00:00+00:00", date(2026, 3, 1),
                                    "mf_als.gate", "mf_als", REASON, LINK)
    assert alert.subject() == "[recsys] recsys_nightly 2026-03-01 mf_als.gate: not published"
    assert alert.text().splitlines() == [
        alert.subject(), "DAG: recsys_nightly", "as-of date: 2026-03-01", "model: mf_als", "step: mf_als.gate",
        f"reason: {REASON}", "run: scheduled__2026-02-28T00:00:00+00:00", f"link: {LINK}"]
    body = alert.html()
    # the reason's "<" is escaped, the figures are all there, the link is a link
    assert "0.1012 vs live 0.1250 (paired lower bound -0.0301 &lt; -0.0063" in body and " < " not in body
    assert f'<a href="{LINK}">{LINK}</a>' in body
    assert "<th align=\"left\">as-of date</th><td>2026-03-01</td>" in body


def test_a_failure_of_a_shared_step_names_every_model_it_was_building():
    alert = alerts.task_failed("recsys_nightly", "manual__x", date(1998, 4, 23), "extract", ("mf_als", "mf_bpr"),
                               "log_with_nan.value: 1 rows hold NaN", LINK)
    assert alert.subject() == "[recsys] recsys_nightly 1998-04-23 extract: failed after its last try"
    assert "model: mf_als, mf_bpr" in alert.text() and "error: log_with_nan.value: 1 rows hold NaN" in alert.text()
    retention = alerts.task_failed("recsys_nightly", "manual__x", None, "retention", (), "boom", LINK)
    assert "as-of date: none (a run without a logical date)" in retention.text()
    assert "model: none (a shared step)" in retention.text()


def test_a_late_night_names_the_deadline_and_the_run_state():
    due = datetime(2026, 3, 1, 5, 0, tzinfo=timezone.utc)
    url = alerts.run_url("http://airflow.example:8080/", "recsys_nightly", "scheduled__2026-02-28T00:00:00+00:00")
    assert url == "http://airflow.example:8080/dags/recsys_nightly/runs/scheduled__2026-02-28T00%3A00%3A00%2B00%3A00"
    alert = alerts.lists_late("recsys_nightly", "scheduled__2026-02-28T00:00:00+00:00", date(2026, 3, 1), "06:00",
                              "Europe/Berlin", due, "running", url)
    assert alert.subject() == "[recsys] recsys_nightly 2026-03-01: lists not live in time"
    assert ("late: lists not live by 06:00 Europe/Berlin (deadline 2026-03-01T05:00+00:00); the run was running "
            "when the scheduler saw the deadline pass") in alert.text()
    assert "step: the whole run" in alert.text()


def test_recipients_drop_blanks():
    assert alerts.recipients(" a@x.org, ,b@y.org ") == ["a@x.org", "b@y.org"]
    assert alerts.recipients("") == []


@pytest.mark.parametrize("run_date, zone, due", [
    (date(2026, 1, 10), "Europe/Berlin", datetime(2026, 1, 10, 5, 0)),  # CET, UTC+1
    (date(2026, 7, 10), "Europe/Berlin", datetime(2026, 7, 10, 4, 0)),  # CEST, UTC+2
    (date(2026, 3, 29), "Europe/Berlin", datetime(2026, 3, 29, 4, 0)),  # the spring change is at 01:00 UTC
    (date(2026, 7, 10), "America/New_York", datetime(2026, 7, 10, 10, 0)),  # 00:00 UTC is 20:00 the day before
    (date(2026, 7, 10), "Asia/Tokyo", datetime(2026, 7, 10, 21, 0)),  # 06:00 JST is past at 00:00 UTC: the next
    (date(2026, 7, 10), "UTC", datetime(2026, 7, 10, 6, 0)),
])
def test_lists_are_due_at_the_first_hh_mm_after_the_data_interval(run_date, zone, due):
    assert deadline.lists_due(run_date, "06:00", zone) == due.replace(tzinfo=timezone.utc)
    assert deadline.lists_due(run_date, "06:00", zone) >= datetime.combine(run_date, time(0), timezone.utc)


def test_the_interval_after_the_logical_date_follows_the_next_night_s_offset():
    # a scheduled run's logical date is its interval's start, D-1 00:00 UTC
    winter = deadline.deadline_interval("06:00", "Europe/Berlin", datetime(2026, 1, 9, 12, tzinfo=timezone.utc))
    assert winter == timedelta(hours=29)
    # parsed on the evening before the spring change: the run created at midnight is due at 04:00 UTC
    spring = deadline.deadline_interval("06:00", "Europe/Berlin", datetime(2026, 3, 28, 23, 59, tzinfo=timezone.utc))
    assert spring == timedelta(hours=28)
    assert datetime(2026, 3, 28, tzinfo=timezone.utc) + spring == deadline.lists_due(date(2026, 3, 29), "06:00",
                                                                                       "Europe/Berlin")


def test_the_settings_are_checked_when_the_dag_file_reads_them():
    assert deadline.from_environ({}) is None
    assert deadline.from_environ({"RECSYS_LISTS_LIVE_BY": " "}) is None
    assert deadline.from_environ({"RECSYS_LISTS_LIVE_BY": "6:30"}) == ("6:30", "UTC")
    assert deadline.from_environ({"RECSYS_LISTS_LIVE_BY": "06:00", "RECSYS_LISTS_LIVE_TZ": "Europe/Berlin"}) == (
        "06:00", "Europe/Berlin")
    with pytest.raises(ConfigurationError, match=r"RECSYS_LISTS_LIVE_BY='24:00': expected HH:MM"):
        deadline.from_environ({"RECSYS_LISTS_LIVE_BY": "24:00"})
    with pytest.raises(ConfigurationError, match=r"RECSYS_LISTS_LIVE_TZ='Mars/Olympus': not a time zone"):
        deadline.from_environ({"RECSYS_LISTS_LIVE_BY": "06:00", "RECSYS_LISTS_LIVE_TZ": "Mars/Olympus"})
