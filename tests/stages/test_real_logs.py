"""Real public logs in tables of their own shape, mapped with a view as a team would.

The MIND news sample keeps its text ids (`U81994`, `N138`): no prefix stripping in
the view; the night maps them and the published lists give them back.
"""

import dataclasses
import io
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys import cli
from recsys.db import engine as db
from recsys.interval import DataInterval
from recsys.pipeline import run_night

SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"  # beside the checkout
MIND = SHARED_DATASETS / "mind-small-sample" / "behaviors.tsv"

# A team's view of MIND's behaviours: every slot of an impression is an impression event,
# a clicked slot also a click; the impression id is the session. MIND has no propensity,
# no serving model and no value: those columns are left out. Its times have no zone: the
# wall time is read as UTC whatever the session's TimeZone (to_timestamp, then ::timestamp).
MIND_VIEW = r"""
CREATE VIEW news.recsys_events AS
SELECT to_timestamp(b.shown_at, 'FMMM/FMDD/YYYY FMHH12:MI:SS AM')::timestamp AT TIME ZONE 'UTC' AS event_time,
       b.user_key AS user_id,
       split_part(slot.entry, '-', 1) AS item_id,
       kind.event_type,
       b.impression_id AS session_id
FROM news.impression_log AS b
CROSS JOIN LATERAL unnest(string_to_array(b.impressions, ' ')) AS slot (entry)
CROSS JOIN LATERAL (VALUES ('impression'), ('click')) AS kind (event_type)
WHERE kind.event_type = 'impression' OR split_part(slot.entry, '-', 2) = '1'
"""


def _team_table(settings, ddl: str, path, copy_options: str, view: str) -> None:
    """Create a team's own table, COPY a real file into it byte for byte, and map it with a view."""
    _sql(settings, ddl)
    table = ddl.split("CREATE TABLE ", 1)[1].split(" ", 1)[0]
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.copy_expert(f"COPY {table} FROM STDIN {copy_options}", io.BytesIO(path.read_bytes()))
    _sql(settings, view)


def _sql(settings, statement, **params):
    with db.get_engine(settings.database_url, settings.schema).begin() as conn:
        result = conn.execute(text(statement), params)
        return result.fetchall() if result.returns_rows else None


@pytest.fixture
def mind_settings(settings):
    if not MIND.exists():
        pytest.skip(f"shared dataset missing: {MIND}")
    _sql(settings, "CREATE SCHEMA news; CREATE TABLE news.impression_log (impression_id bigint, user_key text, "
                   "shown_at text, history text, impressions text)")
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        # MIND's TSV has no quoting and no backslash escapes: read it as CSV with a tab and no quote char
        cur.copy_expert("COPY news.impression_log FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t', QUOTE E'\\x01')",
                        io.BytesIO(MIND.read_bytes()))
    _sql(settings, MIND_VIEW)
    return dataclasses.replace(settings, source_table="news.recsys_events", train_window_days=7)


def test_mind_night_publishes_the_logs_own_text_ids(mind_settings, monkeypatch, capsys):
    s = mind_settings
    assert _sql(s, "SELECT count(*), count(*) FILTER (WHERE event_type = 'click') FROM news.recsys_events")[0] == (
        189_359 + 7_542, 7_542)
    report = run_night(s, DataInterval.for_date(date(2019, 11, 15)), models=["mf_als"])
    assert report.results["mf_als.publish"]["live"], report.states
    users_in_log = _sql(s, "SELECT count(DISTINCT user_key) FROM news.impression_log")[0][0]
    assert _sql(s, "SELECT count(*) FROM user_keys")[0][0] == users_in_log
    rows = _sql(s, "SELECT user_key, item_key FROM live_recommendations WHERE model = 'mf_als'")
    assert rows and all(u.startswith("U") and i.startswith("N") for u, i in rows)
    shown = {r[0] for r in _sql(s, "SELECT DISTINCT item_id FROM news.recsys_events")}
    assert {i for _, i in rows} <= shown  # every listed item is one of the log's own ids

    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    assert cli.main(["recommend", "U81994", "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "user U81994, mf_als@2019-11-15:" and all(" item N" in line for line in out[1:])


TAOBAO = SHARED_DATASETS / "taobao-userbehavior-head" / "UserBehavior.csv"


# Taobao's behaviours kept as they are, declared with the weights a shop would give them
TAOBAO_TYPES = "pv:positive:1,cart:positive:2,fav:positive:2,buy:positive:4"
TAOBAO_NIGHT = date(2017, 12, 4)


def _taobao_log(settings, **overrides):
    """The Taobao head in a table of its own shape, and a view that keeps its own event types."""
    if not TAOBAO.exists():
        pytest.skip(f"shared dataset missing: {TAOBAO}")
    _team_table(settings, "CREATE SCHEMA shop; CREATE TABLE shop.user_behavior (user_id bigint, item_id bigint, "
                          "category_id bigint, behavior text, ts bigint)", TAOBAO, "WITH (FORMAT csv)",
                "CREATE VIEW shop.recsys_events AS SELECT to_timestamp(ts) AS event_time, user_id, item_id, "
                "behavior AS event_type FROM shop.user_behavior")
    return dataclasses.replace(settings, source_table="shop.recsys_events", train_window_days=120, **overrides)


def _taobao_declared(settings, confidence: str):
    from recsys.settings_table import BY_NAME
    return _taobao_log(settings, event_types=BY_NAME["RECSYS_EVENT_TYPES"].parse(TAOBAO_TYPES),
                       mf_confidence=confidence)


def test_taobao_outlier_far_before_the_bulk_is_reported(settings, caplog):
    """The Taobao head holds one event of 2017-09-11, months before the rest (2017-11-24 on)."""
    s = _taobao_declared(settings, "count")
    from recsys.stages.extract import extract_window
    import logging
    with caplog.at_level(logging.WARNING):
        manifest = extract_window(s, DataInterval.for_date(TAOBAO_NIGHT))
    assert manifest.n_events == 4321  # reported, not dropped
    said = [r.getMessage() for r in caplog.records if "far before the bulk" in r.getMessage()]
    assert len(said) == 1 and "1 events on 1 days" in said[0] and "2017-09-11" in said[0], said
    assert "74 days before its first day 2017-11-24" in said[0], said


def test_taobao_outlier_in_retention_and_a_start_date_that_leaves_it_out(settings, caplog):
    """The retention refresh reports the stray day too; RECSYS_RETENTION_START_DATE then
    leaves it out: no one-user cohort of 2017-09-11, no engagement days with DAU 0, and
    `is_full_window` false on each of the ten observed days (a month is not observed)."""
    import logging

    from recsys.errors import DataValidationError
    from recsys.stages.retention import rebuild_retention, refresh_retention
    s = _taobao_declared(settings, "count")
    as_of = date(2017, 12, 4)
    with caplog.at_level(logging.WARNING):
        refresh_retention(s, as_of)
    said = [r.getMessage() for r in caplog.records if "far before the bulk" in r.getMessage()]
    assert len(said) == 1 and "1 active users on 1 days" in said[0] and "2017-09-11" in said[0], said
    assert "RECSYS_RETENTION_START_DATE=2017-11-24" in said[0], said
    cohorts_sql = "SELECT DISTINCT cohort_date FROM retention ORDER BY 1"
    engagement_sql = "SELECT min(day), count(*), count(*) FILTER (WHERE dau = 0), bool_or(is_full_window) FROM engagement"
    assert _sql(s, cohorts_sql)[0][0] == date(2017, 9, 11)
    first_day, days, empty_days, any_full = _sql(s, engagement_sql)[0]
    assert (first_day, empty_days, any_full) == (date(2017, 9, 11), 73, False)  # 74 days to the bulk, 73 empty

    started = dataclasses.replace(s, retention_start_date=date(2017, 11, 24))
    with pytest.raises(DataValidationError, match="recsys retention rebuild"):
        refresh_retention(started, as_of)  # the tables were built without a start date
    rebuild_retention(started, as_of)
    assert min(c for (c,) in _sql(s, cohorts_sql)) == date(2017, 11, 24)
    assert _sql(s, engagement_sql)[0] == (date(2017, 11, 24), 10, 0, False)
    refresh_retention(started, as_of)  # the settings now match the tables


@pytest.mark.parametrize("confidence", ["weight", "count"])
def test_taobao_night_with_its_own_event_types_weighs_mf_by_the_declared_weights(settings, monkeypatch, capsys,
                                                                                 confidence):
    """pv / cart / fav / buy are declared, not squeezed: the night publishes, the registry records
    the confidence and the weights, and the matrix ALS is fitted on holds, per (user, item), the
    sum of the declared weights (or the count) of the pair's events, as pandas computes them."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from recsys.stages import train

    s = _taobao_declared(settings, confidence)
    fitted = []
    real_fit = train.fit_als
    monkeypatch.setattr(train, "fit_als", lambda m, *a, **k: fitted.append(m.copy()) or real_fit(m, *a, **k))
    report = run_night(s, DataInterval.for_date(TAOBAO_NIGHT), models=["mf_als"])
    assert report.results["mf_als.publish"]["live"], report.states
    assert report.states["retention"] == "success", report.states

    # (b) the registry says what the MF input was made of
    version = f"mf_als@{TAOBAO_NIGHT.isoformat()}"
    params = _sql(s, "SELECT params FROM model_runs WHERE model_version = :v", v=version)[0][0]
    assert params["confidence"] == confidence
    declared = {e.split(":")[0]: float(e.split(":")[2]) for e in TAOBAO_TYPES.split(",")}
    assert params["event_weights"] == {"click": 1.0, "consume": 1.0, **declared}
    assert params["positive_event_types"] == ["click", "consume", "pv", "cart", "fav", "buy"]
    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    assert cli.main(["models", "show", version]) == 0
    shown = capsys.readouterr().out
    assert f'"confidence": "{confidence}"' in shown and '"buy": 4.0' in shown

    # (c) the last fit is the published model's: its input against the file, read by pandas
    log = pd.read_csv(TAOBAO, header=None, names=["user", "item", "category", "behavior", "ts"])
    # the declared positive types make their users active: every user of the file has a cohort
    assert _sql(s, "SELECT count(*) FROM user_cohorts")[0][0] == log["user"].nunique()
    start = pd.Timestamp(TAOBAO_NIGHT, tz="UTC") - pd.Timedelta(days=s.train_window_days)
    log = log[pd.to_datetime(log["ts"], unit="s", utc=True) >= start]
    log["weight"] = log["behavior"].map(declared) if confidence == "weight" else 1.0
    want = log.groupby(["user", "item"])["weight"].sum()
    users, items = np.sort(log["user"].unique()), np.sort(log["item"].unique())
    expected = sp.csr_matrix((want.to_numpy(), (np.searchsorted(users, want.index.get_level_values(0)),
                                                np.searchsorted(items, want.index.get_level_values(1)))),
                             shape=(len(users), len(items)))
    got = fitted[-1]
    assert got.shape == expected.shape and abs(got - expected).max() < 1e-6
    counts = log.groupby(["user", "item"]).size()
    by_type = log["behavior"].value_counts()
    assert got.sum() == pytest.approx(sum(n * (declared[b] if confidence == "weight" else 1) for b, n in by_type.items()))
    if confidence == "weight":  # each buy counts 4, each cart or fav 2, each view 1: heavier than the count
        assert got.sum() > counts.sum() and by_type["buy"] > 0
        buys = log[log["behavior"] == "buy"].groupby(["user", "item"]).size()
        (u, i), n = next(iter(buys.items()))
        assert got[np.searchsorted(users, u), np.searchsorted(items, i)] >= 4 * n
    else:
        assert got.sum() == counts.sum()


def test_taobao_types_nobody_declared_stop_the_night_naming_the_view_column_and_types(settings):
    """Without the declaration (or with one type left out) the extract refuses the log: nothing is
    trained or published."""
    from recsys.errors import DataValidationError

    s = _taobao_log(settings)
    with pytest.raises(DataValidationError, match=r"^shop\.recsys_events\.event_type: 4321 rows with unknown event "
                                                  r"types \['buy', 'cart', 'fav', 'pv'\]; expected one of "
                                                  r"\['impression', 'click', 'consume'\]: declare the others in "
                                                  r"RECSYS_EVENT_TYPES") as err:
        run_night(s, DataInterval.for_date(TAOBAO_NIGHT), models=["mf_als"])
    assert (err.value.table, err.value.column) == ("shop.recsys_events", "event_type")
    from recsys.settings_table import BY_NAME
    partly = dataclasses.replace(s, event_types=BY_NAME["RECSYS_EVENT_TYPES"].parse("pv:positive,cart:positive:2,"
                                                                                     "fav:positive:2"))
    n_buys = sum(1 for line in TAOBAO.read_text().splitlines() if line.split(",")[3] == "buy")
    with pytest.raises(DataValidationError, match=rf"{n_buys} rows with unknown event types \['buy'\]; expected one "
                                                  r"of \['impression', 'click', 'consume', 'pv', 'cart', 'fav'\]"):
        run_night(partly, DataInterval.for_date(TAOBAO_NIGHT), models=["mf_als"])
    assert _sql(s, "SELECT count(*) FROM live_recommendations")[0][0] == 0
    assert _sql(s, "SELECT count(*) FROM model_runs WHERE status <> 'failed'")[0][0] == 0


def test_far_past_report_stays_quiet_on_an_ordinary_log():
    import numpy as np
    from recsys.stages.extract import report_far_past_events
    day = 86400.0
    steady = np.arange(0, 30 * day, 3600.0)
    assert report_far_past_events(steady, "log") is None
    two_halves = np.r_[steady, steady + 60 * day]  # a long pause, but half of the log on each side
    assert report_far_past_events(two_halves, "log") is None
    found = report_far_past_events(np.r_[5.0, steady + 100 * day], "log")
    assert (found.days, found.count, found.days_before_bulk, found.bulk_starts) == (
        (date(1970, 1, 1),), 1, 100, date(1970, 4, 11))


GOWALLA = SHARED_DATASETS / "gowalla-checkins-head50k" / "Gowalla_totalCheckins50000.txt"


def test_gowalla_first_night_gives_every_mature_cell_as_pandas_does(settings, monkeypatch, capsys):
    """Integer ids, 20 months of history: the first night alone writes every mature classic
    cell of that history, each equal to an independent pandas computation; `recsys retention
    rebuild` gives the same table."""
    import pandas as pd

    if not GOWALLA.exists():
        pytest.skip(f"shared dataset missing: {GOWALLA}")
    _team_table(settings, "CREATE SCHEMA geo; CREATE TABLE geo.checkins (user_id bigint, checked_at timestamptz, "
                          "latitude float8, longitude float8, location_id bigint)", GOWALLA, "",
                "CREATE VIEW geo.recsys_events AS SELECT checked_at AS event_time, user_id, "
                "location_id AS item_id, 'consume'::text AS event_type FROM geo.checkins")
    s = dataclasses.replace(settings, source_table="geo.recsys_events", train_window_days=30)
    night = date(2010, 10, 23)
    report = run_night(s, DataInterval.for_date(night), models=["baseline_popular"])
    assert report.states["retention"] == "success", report.states
    cells_sql = ("SELECT cohort_date, day_n, cohort_size, retained_users FROM retention "
                 "WHERE retention_kind = 'classic' AND is_mature")
    after_first_night = {(c, n): (size, kept) for c, n, size, kept in _sql(s, cells_sql)}

    log = pd.read_csv(GOWALLA, sep="\t", header=None, names=["user", "t", "lat", "lon", "item"])
    log["day"] = pd.to_datetime(log["t"], utc=True).dt.date
    active = set(zip(log["user"], log["day"]))
    first = log.groupby("user")["day"].min()
    want = {}
    for n in s.retention_days:
        for cohort, users in first.groupby(first).groups.items():
            if cohort + pd.Timedelta(days=n) <= night - pd.Timedelta(days=1):
                want[(cohort, n)] = (len(users), sum((u, cohort + pd.Timedelta(days=n)) in active for u in users))
    assert len(want) == 496 and after_first_night == want  # 128, 125, 124, 119 cells for N = 1, 7, 14, 30

    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    monkeypatch.setenv("RECSYS_SOURCE_TABLE", s.source_table)
    assert cli.main(["retention", "rebuild", "--as-of", night.isoformat()]) == 0
    assert "retention rebuilt as of 2010-10-23" in capsys.readouterr().out
    assert {(c, n): (size, kept) for c, n, size, kept in _sql(s, cells_sql)} == want


def test_mind_rl_lists_keep_the_coverage_floor(mind_settings, capsys):
    """MIND has no propensities and no consumption: REINFORCE's lists once held 15 distinct
    items over 4,637 users. Scored with the floor they hold at least RECSYS_RL_MIN_DISTINCT_ITEMS;
    lists that already did are left as they were."""
    import numpy as np

    from recsys.stages.extract import dataset_path
    from recsys.stages.score import score_shard
    s = dataclasses.replace(mind_settings, rl=dataclasses.replace(mind_settings.rl, epochs=2))
    interval = DataInterval.for_date(date(2019, 11, 15))
    run_night(s, interval, models=["mf_als", "rl_reinforce"])
    path, version = str(dataset_path(s, interval)), "rl_reinforce@2019-11-15"

    def lists(settings):
        scored = np.load(score_shard(settings, path, version).path)
        return scored["user_id"], scored["item_id"]

    raw_users, raw_items = lists(dataclasses.replace(s, rl=dataclasses.replace(s.rl, min_distinct_items=0)))
    users, items = lists(s)
    with capsys.disabled():
        print(f"\nMIND rl_reinforce lists: {len(np.unique(raw_items))} distinct items without the floor, "
              f"{len(np.unique(items))} with it, over {len(np.unique(users))} users")
    assert len(np.unique(items)) >= s.rl.min_distinct_items == 20
    assert len(np.unique(users)) == len(np.unique(raw_users)) and len(items) == len(raw_items)  # nobody's list shrank
    if len(np.unique(raw_items)) >= s.rl.min_distinct_items:
        assert np.array_equal(items, raw_items)
