"""train_rl -> score -> publish on a real database, fed by the closed-loop simulator."""

import dataclasses
from datetime import date

import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.config import RLConfig
from recsys.errors import EmptyWindowError
from recsys.interval import DataInterval
from recsys.pipeline import run_night
from recsys.db.registry import get_run
from recsys.stages.train_rl import train_rl
from recsys.stages.extract import extract_window
from recsys.sim.closed_loop import run_closed_loop

SMALL_RL = RLConfig(embedding_dim=8, hidden_dim=8, epochs=2, batch_sessions=128)


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def test_night_trains_scores_and_publishes_rl_with_finite_scores(settings):
    s = dataclasses.replace(settings, rl=SMALL_RL, train_window_days=30)
    run_closed_loop(s, days=2, users=300, items=60, seed=1)
    report = run_night(s, DataInterval.for_date(date(2026, 1, 3)), extra_models=("rl_reinforce", "rl_cql"))
    assert "rl_reinforce.publish" in report.results and "rl_cql.publish" in report.results, report.results
    assert get_run(s, "rl_cql@2026-01-03").status == "published"
    run = get_run(s, "rl_reinforce@2026-01-03")
    assert run.model_kind == "rl" and run.artifact_sha256
    assert report.results["rl_reinforce.train"]["propensity_coverage"] == 1.0
    assert report.results["rl_reinforce.train"]["mf_init"] is True
    rows = _rows(s, "SELECT count(DISTINCT user_id), count(*), bool_and(score = score AND abs(score) < 'Infinity')"
                    " FROM live_recommendations WHERE model = 'rl_reinforce'")
    assert rows[0][0] > 0 and rows[0][1] == rows[0][0] * s.k and rows[0][2]
    # the off-policy estimate of the candidate, on day 01-01 (whose next day is logged)
    ope_rows = _rows(s, "SELECT policy, model_version, estimator, predicted, ci_low, ci_high, realised"
                        " FROM ope_estimates")
    assert len(ope_rows) == 2
    policy, version, estimator, predicted, low, high, realised = sorted(ope_rows)[1]
    assert (policy, version, estimator, realised) == ("rl_reinforce", "rl_reinforce@2026-01-03", "dr", None)
    assert 0 <= low <= predicted <= high <= 1.5
    metrics = {r[0] for r in _rows(s, "SELECT metric FROM eval_metrics WHERE subject = 'ope'")}
    assert {"ips_click", "snips_return", "dr_return", "dr_return_ci_low", "dr_return_ess"} <= metrics


def test_log_without_impressions_is_refused_and_nothing_registered(settings):
    from eventdata import copy_events  # noqa: PLC0415 - the shared test helper
    import pandas as pd

    frame = pd.DataFrame({"event_time": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 11:00"], utc=True),
                          "user_id": [1, 2], "item_id": [5, 6], "event_type": ["consume", "consume"],
                          "value": [4.0, 5.0]})
    copy_events(settings, frame, source="t")
    interval = DataInterval.for_date(date(2026, 1, 2))
    extracted = extract_window(settings, interval)
    with pytest.raises(EmptyWindowError, match="impressions"):
        train_rl(settings, interval, extracted.dataset_path, model="rl_reinforce")
    assert _rows(settings, "SELECT count(*) FROM model_runs WHERE model = 'rl_reinforce'") == [(0,)]
