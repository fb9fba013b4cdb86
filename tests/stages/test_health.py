"""Data health on a real PostgreSQL: a simulated log (impressions, clicks, propensities, model
versions) with each anomaly injected into its last day, and the night held for it.

The log is 14 simulated days from 2026-01-01; run date 2026-01-15 checks day 2026-01-14
against the 7 days before it. The last day's impressions are served by a registered,
published version whose lists are what the user was shown, so a normal night complies.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pytest
from sqlalchemy import text

from eventdata import copy_events
from recsys.db import engine as db
from recsys.errors import PublishRejected
from recsys.interval import DataInterval
from recsys.pipeline import run_night
from recsys.sim.synthetic_log import generate_events
from recsys.stages.health import check_health, health_hold
from recsys.stages.publish import publish_lists

RUN_DATE = date(2026, 1, 15)
LAST_DAY = "2026-01-14"
SERVED = "mf_bpr@2026-01-13"  # the version that served the last day
NIGHT = DataInterval.for_date(RUN_DATE)


def _query(settings, statement, **params):
    with db.get_engine(settings.database_url, settings.schema).begin() as conn:
        result = conn.execute(text(statement), params)
        return result.fetchall() if result.returns_rows else None


def _register(settings, version, model, run_date, status="trained"):
    _query(settings, "INSERT INTO model_runs (model, model_kind, model_version, run_date, data_interval_start,"
                     " data_interval_end, train_window_start, status) VALUES (:m, 'mf', :v, :d, :d, :d, :d, :s)",
           m=model, v=version, d=run_date, s=status)


def _log(settings, frame=None):
    """The simulated log; its last day's impressions tagged with SERVED, whose lists are those impressions."""
    frame = generate_events(14, 400, 200, seed=7) if frame is None else frame
    frame["model_version"] = frame["model_version"].astype(object)
    frame["event_type"] = frame["event_type"].astype(str)
    last = frame["event_time"].dt.strftime("%Y-%m-%d") == LAST_DAY
    shown = last & (frame["event_type"] == "impression")
    frame.loc[shown, "model_version"] = SERVED
    copy_events(settings, frame[["event_time", "user_id", "item_id", "event_type", "value", "session_id",
                                 "model_version", "propensity"]])
    _register(settings, SERVED, "mf_bpr", date(2026, 1, 13))
    lists = frame.loc[shown, ["user_id", "item_id"]].drop_duplicates().sort_values(["user_id", "item_id"])
    ranks = lists.groupby("user_id").cumcount().to_numpy() + 1
    publish_lists(settings, "mf_bpr", SERVED, date(2026, 1, 13), lists["user_id"].to_numpy(), ranks,
                  lists["item_id"].to_numpy(), np.linspace(1, 0, len(lists)).astype(np.float32))
    return frame


def _statuses(settings):
    return dict(_query(settings, "SELECT check_name, status FROM data_health WHERE run_date = :d", d=RUN_DATE))


def _row(settings, check):
    return _query(settings, "SELECT value, baseline, threshold_low, threshold_high, status, reason"
                            " FROM data_health WHERE run_date = :d AND check_name = :c", d=RUN_DATE, c=check)[0]


def _night(settings, **kwargs):
    return run_night(settings, NIGHT, models=["baseline_popular"], raise_on_failure=True, **kwargs)


def _live(settings):
    return _query(settings, "SELECT model_version FROM live_models WHERE model = 'baseline_popular'")


def test_a_normal_night_is_all_ok_and_publishes(settings):
    _log(settings)
    report = _night(settings)
    assert _statuses(settings) == {name: "ok" for name in (
        "volume", "click_through", "new_users", "new_items", "propensity_share", "model_version_share",
        "serving_compliance")}
    value, *_ = _row(settings, "serving_compliance")
    assert value == 1.0
    assert report.results["health"]["held"] == []
    assert report.states["baseline_popular.publish"] == "success"
    assert _live(settings) == [("baseline_popular@2026-01-15",)]
    # a re-run replaces the night's rows
    check_health(settings, NIGHT)
    assert _query(settings, "SELECT count(*) FROM data_health")[0][0] == 7


def test_a_day_with_a_fifth_of_the_usual_events_is_held(settings):
    frame = generate_events(14, 400, 200, seed=7)
    last = np.flatnonzero(frame["event_time"].dt.strftime("%Y-%m-%d").to_numpy() == LAST_DAY)
    sessions = frame.loc[last, "session_id"].unique()
    kept = set(sessions[: len(sessions) // 6])  # whole sessions go, as when a collector is down
    drop = [i for i in last if frame.at[i, "session_id"] not in kept]
    _log(settings, frame.drop(index=drop).reset_index(drop=True))
    report = _night(settings)
    value, baseline, low, _, status, reason = _row(settings, "volume")
    assert status == "held" and value < 0.2 * baseline and low == pytest.approx(0.2 * baseline)
    assert "events" in reason and "median" in reason and "below the threshold" in reason
    assert report.states["baseline_popular.gate"] == "skipped" and "volume" in report.skips["baseline_popular.gate"]
    assert report.states["baseline_popular.publish"] == "skipped"
    assert _live(settings) == []
    status, health = _query(settings, "SELECT status, metrics->'health' FROM model_runs"
                                      " WHERE model_version = 'baseline_popular@2026-01-15'")[0]
    assert status == "rejected" and health["held"] == ["volume"] and "median" in health["reason"]


def test_propensities_dropped_on_the_last_day_are_held(settings):
    frame = generate_events(14, 400, 200, seed=7)
    frame.loc[frame["event_time"].dt.strftime("%Y-%m-%d") == LAST_DAY, "propensity"] = np.nan
    _log(settings, frame)
    report = _night(settings)
    value, baseline, low, _, status, reason = _row(settings, "propensity_share")
    assert (value, baseline, status) == (0.0, 1.0, "held") and low == 0.5
    assert "propensity" in reason
    assert report.states["baseline_popular.publish"] == "skipped" and _live(settings) == []


def test_impressions_tagged_with_a_version_never_published_fail_compliance(settings):
    frame = generate_events(14, 400, 200, seed=7)
    _log(settings, frame)
    # the serving layer tags the day's impressions with a version the gate rejected
    _register(settings, "mf_als@2026-01-14", "mf_als", date(2026, 1, 14), status="rejected")
    _query(settings, "UPDATE interactions SET model_version = 'mf_als@2026-01-14'"
                     " WHERE event_type = 'impression' AND event_time::date = :d", d=LAST_DAY)
    with pytest.raises(PublishRejected, match="serving_compliance"):
        check_health(settings, NIGHT)
        health_hold(settings, SERVED, RUN_DATE)
    value, _, low, _, status, reason = _row(settings, "serving_compliance")
    assert (value, low, status) == (0.0, 0.5, "held")
    assert "never published: mf_als@2026-01-14" in reason


def test_versions_no_longer_kept_are_counted_apart_from_non_compliant(settings):
    _log(settings)
    # a newer version of the model goes out keeping one version: the lists that served the day are dropped
    _register(settings, "mf_bpr@2026-01-14", "mf_bpr", date(2026, 1, 14))
    publish_lists(dataclasses.replace(settings, keep_versions=1), "mf_bpr", "mf_bpr@2026-01-14", date(2026, 1, 14),
                  np.array([1]), np.array([1]), np.array([1]), np.array([1.0], np.float32))
    assert _query(settings, "SELECT to_regclass('recommendations_mf_bpr_20260113')")[0][0] is None
    check_health(settings, NIGHT)
    _, _, _, _, status, reason = _row(settings, "serving_compliance")
    assert status == "skipped" and "versions not kept" in reason
    (detail,) = _query(settings, "SELECT detail FROM data_health WHERE check_name = 'serving_compliance'")[0]
    assert detail["impressions_not_kept"] > 0 and "impressions_never_published" not in detail


def test_force_publish_overrides_the_hold_and_says_so(settings, caplog):
    frame = generate_events(14, 400, 200, seed=7)
    frame.loc[frame["event_time"].dt.strftime("%Y-%m-%d") == LAST_DAY, "propensity"] = np.nan
    _log(settings, frame)
    report = _night(settings, force_publish=True)
    assert _statuses(settings)["propensity_share"] == "held"
    assert report.states["baseline_popular.publish"] == "success"
    assert _live(settings) == [("baseline_popular@2026-01-15",)]
    assert "overridden by force_publish" in report.results["baseline_popular.gate"][0]["reason"]
    status, health = _query(settings, "SELECT status, metrics->'health' FROM model_runs"
                                      " WHERE model_version = 'baseline_popular@2026-01-15'")[0]
    assert status == "published" and health["overridden_by_force_publish"] is True
    assert "force_publish overrides the data-health hold" in caplog.text


def test_a_view_without_propensity_and_model_version_skips_those_checks(settings):
    _log(settings)
    _query(settings, "CREATE VIEW plain_log AS SELECT event_time, user_id, item_id, event_type, value"
                     " FROM interactions")
    plain = dataclasses.replace(settings, source_table="plain_log")
    report = check_health(plain, NIGHT)
    statuses = _statuses(plain)
    assert statuses["propensity_share"] == statuses["model_version_share"] == "skipped"
    assert statuses["serving_compliance"] == "skipped"
    assert "no propensity column" in _row(plain, "propensity_share")[5]
    assert report.held == [] and health_hold(plain, SERVED, RUN_DATE) is None


def test_warn_only_publishes_with_warnings(settings, caplog):
    frame = generate_events(14, 400, 200, seed=7)
    frame.loc[frame["event_time"].dt.strftime("%Y-%m-%d") == LAST_DAY, "propensity"] = np.nan
    _log(settings, frame)
    warn = dataclasses.replace(settings, health=dataclasses.replace(settings.health, warn_only=True))
    report = _night(warn)
    assert _statuses(warn)["propensity_share"] == "warned"
    assert report.results["health"]["warned"] == ["propensity_share"]
    assert report.states["baseline_popular.publish"] == "success"
    assert "propensity_share WARNED" in caplog.text


def test_a_log_without_history_is_skipped_not_held(settings):
    frame = generate_events(14, 400, 200, seed=7)
    _log(settings, frame[frame["event_time"].dt.strftime("%Y-%m-%d") == LAST_DAY].reset_index(drop=True))
    report = check_health(settings, NIGHT)
    assert _statuses(settings)["volume"] == "skipped" and report.held == []
