"""Approval before a go-live: which publishes need a person (`approval_reason`), what the approver
reads (`approval_body`), and `recsys run`'s side of it on a real PostgreSQL (no publish of a
version that needs approval without --approve; the answer recorded in model_runs).

The Airflow side (the Required Actions, approve and reject) is tests/e2e/test_approval_scheduler.py.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from sqlalchemy import text

from recsys.config import APPROVAL_MODES
from recsys.db import engine as db
from recsys.errors import ConfigurationError, NotApproved
from recsys.interval import DataInterval
from recsys.pipeline import SKIPPED, SUCCESS, run_night
from recsys.sim.synthetic_log import simulate_log
from recsys.stages.approval import (ApprovalRequest, approval_body, approval_reason, approval_request,
                                    record_answer)

FIRST = "first publish of m (no live version yet)"
FORCED = "forced publish (force_publish overrides the gate and the data-health hold)"


@pytest.mark.parametrize("mode, live, forced, expected", [
    ("off", None, True, None),
    ("first", None, False, FIRST),
    ("first", "m@2026-01-01", True, None),
    ("forced", None, False, None),
    ("forced", "m@2026-01-01", True, FORCED),
    ("first_and_forced", None, True, f"{FIRST}; {FORCED}"),
    ("first_and_forced", "m@2026-01-01", False, None),
    ("first_and_forced", "m@2026-01-01", True, FORCED),
])
def test_which_publishes_need_approval(mode, live, forced, expected):
    assert approval_reason(mode, "m", live, forced) == expected


def test_an_unknown_mode_is_refused_by_the_function_and_the_setting():
    with pytest.raises(ValueError, match="expected one of off, first, forced, first_and_forced"):
        approval_reason("always", "m", None, False)
    assert "first" in APPROVAL_MODES
    from recsys.config import Settings

    with pytest.raises(ConfigurationError, match="RECSYS_APPROVAL must be one of"):
        Settings(approval="yes")
    with pytest.raises(ConfigurationError, match="RECSYS_APPROVAL_TIMEOUT_MINUTES"):
        Settings(approval_timeout_minutes=0)


def test_the_body_shows_the_version_the_gate_reason_and_the_figures_against_live_and_popularity():
    figures = [("champion", "ndcg", 0.21, 120), ("model", "ndcg", 0.25, 120), ("popularity", "ndcg", 0.1, 120),
               ("model", "recall", 0.4, 120), ("popularity", "recall", 0.2, 120), ("model", "coverage", 0.3, 120)]
    body = approval_body("mf_als", "mf_als@2026-01-20", "2026-01-20", FORCED, "ndcg@10 0.2500 vs live 0.2100",
                         "mf_als@2026-01-19", figures, 10, 30)
    assert "`mf_als@2026-01-20`" in body and "2026-01-20" in body and FORCED in body
    assert "**Gate:** ndcg@10 0.2500 vs live 0.2100" in body and "`mf_als@2026-01-19`" in body
    assert "| metric | this version | live | popularity |" in body
    lines = body.splitlines()
    # the headline metrics first, a figure the live model lacks shown as a dash
    table = [line for line in lines if line.startswith("| ") and "@10" in line]
    assert table == ["| ndcg@10 | 0.2500 | 0.2100 | 0.1000 |", "| recall@10 | 0.4000 | – | 0.2000 |",
                     "| coverage@10 | 0.3000 | – | – |"]
    assert "(120 users)" in body and "within 30 minutes counts as Reject" in body
    empty = approval_body("m", "m@2026-01-20", "2026-01-20", FIRST, "", None, [], 10, 1440)
    assert "nothing (no live version of this model)" in empty and "none recorded" in empty


def _query(settings, statement, **params):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement), params).fetchall()


def _approval(settings, version):
    [(status, record)] = _query(settings, "SELECT status, metrics -> 'approval' FROM model_runs"
                                          " WHERE model_version = :v", v=version)
    return status, record


def _live(settings):
    return _query(settings, "SELECT model_version FROM live_models WHERE model = 'baseline_popular'")


def test_recsys_run_publishes_a_version_that_needs_approval_only_with_approve(settings):
    simulate_log(settings, days=12, users=150, items=80, seed=5, start_date=date(2026, 1, 1))
    s = dataclasses.replace(settings, approval="first_and_forced", gate_min_users=0)

    def night(day, **kwargs):
        return run_night(s, DataInterval.for_date(day), models=["baseline_popular"], triggered_by="cli", **kwargs)

    # the first publish, without --approve: recorded as not approved, nothing live
    report = night(date(2026, 1, 11))
    assert report.states["baseline_popular.approval"] == SKIPPED
    assert report.states["baseline_popular.publish"] == SKIPPED
    assert "re-run with --approve" in report.skips["baseline_popular.approval"]
    assert _live(s) == []
    status, record = _approval(s, "baseline_popular@2026-01-11")
    assert status == "rejected" and record["outcome"] == "not_asked"
    assert record["why"] == "first publish of baseline_popular (no live version yet)"

    # the same night with --approve goes live, and says who approved
    report = night(date(2026, 1, 11), approve=True)
    assert report.states["baseline_popular.publish"] == SUCCESS
    assert report.results["baseline_popular.approval"]["outcome"] == "approved"
    assert _live(s) == [("baseline_popular@2026-01-11",)]
    status, record = _approval(s, "baseline_popular@2026-01-11")
    assert status == "published" and record["by"] == "recsys run --approve"

    # the next night is no first publish and not forced: no approval asked, it publishes as before
    report = night(date(2026, 1, 12))
    assert report.results["baseline_popular.approval"] == {
        "model_version": "baseline_popular@2026-01-12", "needed": False, "outcome": None, "by": None, "why": None}
    assert _live(s) == [("baseline_popular@2026-01-12",)]
    assert _approval(s, "baseline_popular@2026-01-12")[1] is None

    # a forced night without --approve publishes nothing: the live lists stay
    report = night(date(2026, 1, 13), force_publish=True)
    assert report.states["baseline_popular.publish"] == SKIPPED
    assert _live(s) == [("baseline_popular@2026-01-12",)]
    status, record = _approval(s, "baseline_popular@2026-01-13")
    assert status == "rejected" and record["why"].startswith("forced publish")

    # what an approver of that forced night reads, and an unanswered request recorded as timed out
    request = approval_request(s, "baseline_popular@2026-01-13", "forced by the run's force_publish parameter", True)
    assert isinstance(request, ApprovalRequest) and request.live_version == "baseline_popular@2026-01-12"
    assert "| ndcg@10 |" in request.body and "popularity" in request.body
    assert "forced by the run's force_publish parameter" in request.body
    with pytest.raises(NotApproved, match="no answer within 1440 minutes"):
        record_answer(s, request, "timed_out")
    assert _approval(s, "baseline_popular@2026-01-13")[1]["outcome"] == "timed_out"


def test_approval_off_reads_nothing_and_asks_nothing(settings):
    # the default: no request even for a version the registry does not hold (no database read)
    assert approval_request(settings, "nothing@2026-01-01", "", True) is None


def test_models_list_shows_the_approval_after_the_gate(settings):
    from recsys.registry_table import decision, read_entries

    simulate_log(settings, days=12, users=150, items=80, seed=5, start_date=date(2026, 1, 1))
    s = dataclasses.replace(settings, approval="first", gate_min_users=0)
    run_night(s, DataInterval.for_date(date(2026, 1, 11)), models=["baseline_popular"], triggered_by="cli")
    [entry] = read_entries(s, "baseline_popular", 5)
    assert entry.status == "rejected" and "approval: recsys run has no one to ask" in decision(entry)
    assert "approval" not in entry.metrics  # the hold-out summary only
