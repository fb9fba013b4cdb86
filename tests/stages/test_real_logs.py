"""Real public logs in tables of their own shape, mapped with a view as a team would.

The MIND news sample keeps its text ids (`U81994`, `N138`): no prefix stripping in
the view; the night maps them and the published lists give them back.
"""

import dataclasses
import io
from datetime import date

import pytest
from sqlalchemy import text

from recsys import cli
from recsys.db import engine as db
from recsys.interval import DataInterval
from recsys.pipeline import run_night
from conftest import SHARED_DATASETS

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
