from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.sim.synthetic_log import (
    LOGGING_POLICY,
    SimParams,
    expected_events,
    generate_events,
    item_catalog,
    iter_day_events,
    simulate_log,
    slate_inclusion_probability,
    users_for_target_events,
)

DAYS, USERS, ITEMS = 14, 2_000, 1_000


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return generate_events(DAYS, USERS, ITEMS, seed=11)


def test_same_seed_same_events_and_different_seed_different_events(log):
    pd.testing.assert_frame_equal(log, generate_events(DAYS, USERS, ITEMS, seed=11))
    other = generate_events(DAYS, USERS, ITEMS, seed=12)
    assert len(other) != len(log) or not other.equals(log)


def test_columns_match_the_interactions_table(log):
    assert list(log.columns) == [
        "event_time", "user_id", "item_id", "event_type", "value", "session_id", "model_version", "propensity",
    ]
    assert str(log["event_time"].dt.tz) == "UTC"
    assert log["event_time"].is_monotonic_increasing
    assert log["event_time"].min() >= pd.Timestamp("2026-01-01", tz="UTC")
    assert log["event_time"].max() < pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=DAYS)
    assert set(log["event_type"]) == {"impression", "click", "consume"}
    assert log["user_id"].between(0, USERS - 1).all() and log["item_id"].between(0, ITEMS - 1).all()


def test_impressions_precede_clicks_precede_consumption_within_a_session(log):
    by_type = {kind: frame for kind, frame in log.groupby("event_type", observed=True)}
    last_impression = by_type["impression"].groupby("session_id")["event_time"].max()
    first_click = by_type["click"].groupby("session_id")["event_time"].min()
    assert (first_click > last_impression.reindex(first_click.index)).all()
    # every consumption follows the click on the same item in the same session
    pairs = by_type["consume"].merge(
        by_type["click"], on=["session_id", "item_id"], suffixes=("_consume", "_click"), validate="one_to_one"
    )
    assert len(pairs) == len(by_type["consume"])
    assert (pairs["event_time_consume"] > pairs["event_time_click"]).all()
    # a user's sessions of one day do not overlap
    spans = log.groupby("session_id").agg(user=("user_id", "first"), start=("event_time", "min"), end=("event_time", "max"))
    spans = spans.sort_values(["user", "start"])
    same_user = spans["user"].to_numpy()[1:] == spans["user"].to_numpy()[:-1]
    assert (spans["start"].to_numpy()[1:][same_user] > spans["end"].to_numpy()[:-1][same_user]).all()


def test_sessions_show_distinct_items_with_propensities_in_unit_interval(log):
    impressions = log[log["event_type"] == "impression"]
    slates = impressions.groupby("session_id")["item_id"]
    assert (slates.size() == SimParams().slate_size).all()
    assert (slates.nunique() == SimParams().slate_size).all()
    assert impressions["propensity"].gt(0).all() and impressions["propensity"].le(1).all()
    assert (impressions["model_version"] == LOGGING_POLICY).all()
    others = log[log["event_type"] != "impression"]
    assert others["propensity"].isna().all() and others["model_version"].isna().all()
    assert log.groupby("session_id")["user_id"].nunique().eq(1).all()
    sessions_per_user_day = log.groupby(["user_id", log["event_time"].dt.date])["session_id"].nunique()
    assert sessions_per_user_day.between(1, 3).all()


def test_first_slot_propensity_matches_how_often_the_item_is_drawn(log):
    impressions = log[log["event_type"] == "impression"]
    first = impressions.groupby("session_id").head(1)  # slot 1: propensity is pi of the item
    assert first.groupby("item_id")["propensity"].nunique().eq(1).all()
    n = len(first)
    top = first.groupby("item_id").agg(count=("propensity", "size"), propensity=("propensity", "first")).nlargest(5, "count")
    sigma = np.sqrt(n * top["propensity"] * (1 - top["propensity"]))
    assert (abs(top["count"] - n * top["propensity"]) < 4 * sigma).all()


def test_inclusion_probability_matches_how_often_the_log_shows_an_item(log):
    incl = slate_inclusion_probability(ITEMS, seed=11, draws=50_000)
    assert incl.sum() == pytest.approx(SimParams().slate_size)  # every slate holds slate_size distinct items
    impressions = log[log["event_type"] == "impression"]
    first = impressions.groupby("session_id").head(1).groupby("item_id")["propensity"].first()
    assert (incl[first.index.to_numpy()] >= first.to_numpy()).all()  # in the slate at least as often as in slot 1
    n = impressions["session_id"].nunique()
    shown = impressions.groupby("item_id")["session_id"].nunique().nlargest(20)
    p = incl[shown.index.to_numpy()]
    # the log's share of sessions showing an item, within 4 sigma of both binomial errors
    assert (abs(shown.to_numpy() / n - p) < 4 * np.sqrt(p * (1 - p) * (1 / n + 1 / 50_000))).all()
    np.testing.assert_array_equal(slate_inclusion_probability(10, seed=0, draws=100), np.ones(10))


def test_consumption_values_are_star_ratings(log):
    values = log.loc[log["event_type"] == "consume", "value"]
    assert values.isin([1.0, 2.0, 3.0, 4.0, 5.0]).all() and values.nunique() >= 4
    assert log.loc[log["event_type"] != "consume", "value"].isna().all()


def test_users_arrive_over_the_period_and_some_return_while_others_do_not(log):
    days = log.groupby("user_id")["event_time"].agg(lambda t: t.dt.normalize().nunique())
    assert log["user_id"].nunique() == USERS  # everyone arrives within the period
    assert (days == 1).mean() > 0.1 and (days >= 3).mean() > 0.1
    first_day = log.groupby("user_id")["event_time"].min().dt.normalize()
    arrivals = first_day.value_counts().sort_index()
    assert len(arrivals) == DAYS
    assert arrivals.iloc[: DAYS // 2].sum() > arrivals.iloc[DAYS // 2:].sum()


def test_popularity_is_skewed(log):
    counts = log["item_id"].value_counts()
    top_decile = counts.iloc[: ITEMS // 10].sum() / counts.sum()
    assert top_decile > 0.3
    clicks = log.loc[log["event_type"] == "click", "item_id"].value_counts()
    assert clicks.iloc[: ITEMS // 10].sum() / clicks.sum() > 0.3


def test_clicks_prefer_the_users_favourite_topic():
    # with a sharp topic preference, clicks concentrate on fewer topics than impressions
    params = SimParams(topic_concentration=0.05)
    topic = item_catalog(500, seed=5, params=params).set_index("item_id")["topic"]
    events = generate_events(5, 500, 500, seed=5, params=params)
    events = events.assign(topic=events["item_id"].map(topic))

    def top_topic_share(kind: str) -> float:
        rows = events[events["event_type"] == kind]
        return rows.groupby("user_id")["topic"].agg(lambda t: t.value_counts(normalize=True).iloc[0]).mean()

    assert top_topic_share("click") > top_topic_share("impression") + 0.2


def test_size_scales_with_users_and_days_as_documented():
    for days, users in ((1, 3_000), (7, 1_500), (28, 1_000)):
        n = sum(len(frame) for frame in iter_day_events(days, users, 2_000, seed=days))
        assert n == pytest.approx(expected_events(days, users), rel=0.08)
    assert expected_events(28, 200_000) == pytest.approx(2 * expected_events(28, 100_000))
    assert expected_events(7, 1) < expected_events(28, 1) < expected_events(90, 1)
    assert 8_000 < users_for_target_events(1_000_000, 28) < 12_000
    assert 80_000 < users_for_target_events(10_000_000, 28) < 120_000


def test_argument_checks():
    with pytest.raises(ValueError, match="slate_size"):
        generate_events(3, 10, 5, seed=1)
    with pytest.raises(ValueError):
        generate_events(0, 10, 50, seed=1)


def query(settings, statement: str, **params):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement), params).all()


def test_simulate_log_writes_the_generated_log_and_reruns_replace_it(settings, capsys):
    start = date(2026, 3, 1)
    expected = generate_events(5, 300, 200, seed=3, start_date=start)
    summary = simulate_log(settings, days=5, users=300, items=200, seed=3, start_date=start)
    assert (summary.events, summary.users, summary.items, summary.days) == (len(expected), 300, 200, 5)
    assert summary.source == "simulate:seed=3" and summary.seconds > 0

    again = simulate_log(settings, days=5, users=300, items=200, seed=3, start_date=start, progress=True)
    assert again.events == summary.events
    assert "5/5" in capsys.readouterr().err  # the per-day progress bar
    simulate_log(settings, days=2, users=50, items=200, seed=4, start_date=start)  # another source stays apart
    rows = dict(query(settings, "SELECT source, count(*) FROM interactions GROUP BY source"))
    assert rows["simulate:seed=3"] == len(expected) and len(rows) == 2

    stored = query(
        settings,
        """SELECT event_type, count(*), sum(user_id), sum(item_id), sum(session_id), sum(value), sum(propensity),
                  min(event_time), max(event_time), count(model_version)
           FROM interactions WHERE source = 'simulate:seed=3' GROUP BY event_type""",
    )
    for kind, n, users, items, sessions, value, propensity, first, last, versions in stored:
        frame = expected[expected["event_type"] == kind]
        assert (n, int(users), int(items), int(sessions)) == (
            len(frame), int(frame["user_id"].sum()), int(frame["item_id"].sum()), int(frame["session_id"].sum())
        )
        assert (value or 0.0) == pytest.approx(frame["value"].sum())
        assert (propensity or 0.0) == pytest.approx(frame["propensity"].sum(), rel=1e-12)
        assert (first, last) == (frame["event_time"].min(), frame["event_time"].max())
        assert versions == frame["model_version"].notna().sum()
    # Rows go to COPY in time order; the free space map may still drop a short row into a
    # gap of an earlier page, so allow a handful of rows out of physical order.
    ((inversions,),) = query(
        settings,
        """SELECT count(*) FROM (SELECT event_time < lag(event_time) OVER (ORDER BY ctid) AS earlier
                                 FROM interactions WHERE source = 'simulate:seed=3') AS t WHERE earlier""",
    )
    assert inversions <= len(expected) // 1000
    assert query(settings, "SELECT count(*), count(DISTINCT topic), min(source) FROM items") == [(200, 20, "simulate:seed=4")]
