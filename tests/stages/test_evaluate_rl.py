"""The RL policies' ranking hold-out (recsys.stages.evaluate with algorithm reinforce/cql) and the
gate that judges them by it where there is no off-policy estimate."""

import dataclasses
import logging
from datetime import date

import numpy as np
import pytest
from sqlalchemy import text

from recsys import holdout_users
from recsys.db import engine as db
from recsys.interval import DataInterval
from recsys.sim.closed_loop import run_closed_loop
from recsys.pipeline import run_night
from recsys.stages.gate import RL_RANKING_REASON
from tests.eventdata import copy_events
from tests.stages.test_evaluate_impressions import AS_OF, _frame, _hand_log

def query(settings, statement: str, **params):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement), params).all()


def _small_rl(settings):
    return dataclasses.replace(settings, rl=dataclasses.replace(settings.rl, epochs=2),
                               search=dataclasses.replace(settings.search, enabled=False))


def test_the_hold_out_policy_never_trains_on_the_hold_out_day(settings, caplog):
    """Every impression of the hand-made log is on the window's last day: the served policy trains on
    them, the hold-out one has nothing before that day, so RL has no ranking hold-out, no estimate
    (no propensities) and no evidence."""
    s = _small_rl(settings)
    copy_events(s, _frame(_hand_log()))
    with caplog.at_level(logging.INFO, logger="recsys.stages.evaluate"):
        report = run_night(s, DataInterval.for_date(AS_OF), models=["rl_reinforce"], raise_on_failure=False)
    assert report.states["rl_reinforce.train"] == report.states["rl_reinforce.evaluate"] == "success"
    assert "no ranking hold-out for rl_reinforce@2026-03-10: no impressions in interactions before the hold-out day" \
        in caplog.text
    reason = query(s, "SELECT metrics->'gate'->>'reason' FROM model_runs WHERE model = 'rl_reinforce'")[0][0]
    assert reason.startswith(RL_RANKING_REASON) and "and no ranking hold-out: no evidence" in reason, reason
    assert report.states["rl_reinforce.publish"] != "success"


def test_rl_without_propensities_is_judged_on_the_ranking_hold_out(settings):
    """A small closed-loop log with its propensities removed: no off-policy estimate, so RL's gate
    reads its ranking hold-out, the second night paired against the live RL version on the same users."""
    s = dataclasses.replace(_small_rl(settings), gate_min_users=10, gate_min_distinct_items=0,
                            gate_baseline_floor=False)
    run_closed_loop(s, days=3, users=300, items=60, seed=2)
    with db.get_engine(s.database_url, s.schema).begin() as conn:
        conn.execute(text("UPDATE interactions SET propensity = NULL"))
    first = run_night(s, DataInterval.for_date(date(2026, 1, 3)), models=["rl_reinforce"])
    reason = query(s, "SELECT metrics->'gate'->>'reason' FROM model_runs WHERE model_version = 'rl_reinforce@2026-01-03'")
    assert "evidence: the ranking hold-out, no live model yet; ndcg@10 " in reason[0][0], reason
    assert first.results["rl_reinforce.publish"]["live"]

    report = run_night(s, DataInterval.for_date(date(2026, 1, 4)), models=["rl_reinforce"], raise_on_failure=False)
    version = "rl_reinforce@2026-01-04"
    figures = dict(((subject, metric), (value, n)) for subject, metric, value, n in query(
        s, "SELECT subject, metric, value, n_users FROM eval_metrics WHERE model_version = :v AND k = 10",
        v=version))
    n_users = figures[("model", "ndcg")][1]
    assert n_users >= 10 and figures[("champion", "ndcg")][1] == n_users and ("popularity", "recall") in figures
    # the per-user figures the gate's paired bootstrap reads, and their means are eval_metrics'
    run_path = query(s, "SELECT artifact_path FROM model_runs WHERE model_version = :v", v=version)[0][0]
    kept = holdout_users.load(holdout_users.path_for(run_path), version, 10)
    assert kept.n_users == n_users
    assert np.mean(kept.get("champion", "ndcg")) == pytest.approx(figures[("champion", "ndcg")][0])
    assert np.mean(kept.get("model", "ndcg")) == pytest.approx(figures[("model", "ndcg")][0])
    gate = query(s, "SELECT metrics->'gate' FROM model_runs WHERE model_version = :v", v=version)[0][0]
    assert gate["champion_version"] == "rl_reinforce@2026-01-03" and gate["n_users"] == n_users
    assert "no off-policy estimate (no logged impressions with propensities on 2026-01-02)" in gate["reason"]
    assert "evidence: the ranking hold-out, ndcg@10 " in gate["reason"] and "paired diff" in gate["reason"]
    assert gate["difference_ci"] is not None
    # accepted, or rejected by the paired rule, with that reason
    assert report.states["rl_reinforce.gate"] == ("success" if gate["accepted"] else "failed")
