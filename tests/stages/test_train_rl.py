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
    # the last epoch's fit diagnostics are kept with the version (docs/rl-training.md)
    diag = _rows(s, "SELECT params -> 'fit_diagnostics' FROM model_runs"
                    " WHERE model_version = 'rl_reinforce@2026-01-03'")[0][0]
    assert 0 < diag["ess_share"] <= 1 and 0 <= diag["clipped_share"] <= 1 and diag["entropy"] > 0
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


def test_declared_types_give_rl_ope_and_mf_the_events_of_the_built_in_roles(settings, tmp_path):
    """The same log with its impressions called `shown` and its clicks `tap`, declared with those
    roles, gives the RL recommenders the same trajectories, the off-policy estimates the same
    logged day and MF the same positive events as the built-in names do."""
    import numpy as np

    from recsys.settings_table import BY_NAME
    from recsys.stages.ope import logged_day, read_logged_day, _day_start
    from recsys.stages.train_rl import build_trajectories
    from recsys.dataset import WindowDataset

    s = dataclasses.replace(settings, rl=SMALL_RL, train_window_days=30, artifact_dir=tmp_path / "built_in")
    run_closed_loop(s, days=3, users=150, items=40, seed=2)
    with db.get_engine(s.database_url, s.schema).begin() as conn:
        conn.execute(text("CREATE VIEW renamed AS SELECT event_time, user_id, item_id, "
                          "CASE event_type WHEN 'impression' THEN 'shown' WHEN 'click' THEN 'tap' ELSE event_type END "
                          "AS event_type, value, session_id, model_version, propensity FROM interactions"))
    renamed = dataclasses.replace(s, source_table="renamed", artifact_dir=tmp_path / "declared",
                                  event_types=BY_NAME["RECSYS_EVENT_TYPES"].parse("shown:impression,tap:positive:3"),
                                  positive_event_types=("consume",), active_event_types=("consume",))
    assert _rows(s, "SELECT count(*) FROM renamed WHERE event_type IN ('impression', 'click')")[0][0] == 0
    interval = DataInterval.for_date(date(2026, 1, 4))
    built_in = WindowDataset.load(extract_window(s, interval).dataset_path)
    declared = WindowDataset.load(extract_window(renamed, interval).dataset_path)
    assert np.array_equal(built_in.user_ids, declared.user_ids) and np.array_equal(built_in.item_ids, declared.item_ids)
    assert set(declared.event_code.tolist()) == {2, 3, 4}  # consume, then the declared shown and tap
    mask = built_in.positive_mask(s.positive_types)
    assert mask.sum() > 0 and np.array_equal(mask, declared.positive_mask(renamed.positive_types))

    ours, theirs = build_trajectories(s, interval, built_in), build_trajectories(renamed, interval, declared)
    assert ours.n > 0 and ours.click.sum() > 0
    for field in dataclasses.fields(ours):
        a, b = getattr(ours, field.name), getattr(theirs, field.name)
        assert (np.array_equal(a, b, equal_nan=a.dtype.kind == "f") if isinstance(a, np.ndarray) else a == b), field.name

    day = _day_start(logged_day(interval.run_date))
    logged = read_logged_day(s, day)
    assert len(logged) > 0 and logged["clicked"].sum() > 0 and logged["returned"].sum() > 0
    assert read_logged_day(renamed, day).equals(logged)
