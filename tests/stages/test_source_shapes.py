"""Logs as teams keep them: text ids mapped to internal ids and back, optional columns
left out, catalogue availability respected. Real PostgreSQL, real nights."""

import dataclasses
import logging
import threading
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from psycopg2 import sql
from sqlalchemy import text

from recsys import cli
from recsys.db import engine as db
from recsys.config import RLConfig
from recsys.interval import DataInterval
from recsys.pipeline import run_night
from recsys.sim.closed_loop import run_closed_loop
from recsys.db.engine import load_sql
from recsys.lookup import user_history
from recsys.source import assign_listed_keys
from recsys.stages import publish
from recsys.db.registry import model_version, register_trained
from eventdata import movielens_frame

ML_NIGHT = date(1998, 4, 23)  # the day after MovieLens 100K's last rating


def _sql(settings, statement, **params):
    with db.get_engine(settings.database_url, settings.schema).begin() as conn:
        result = conn.execute(text(statement), params)
        return result.fetchall() if result.returns_rows else None


def _team_log_with_text_ids(settings, movielens_100k, columns: str = "event_time, user_id, item_id, event_type, value"):
    """MovieLens 100K in a team's own table, ids as text keys (`U196`, `M242`), and a view of recsys's shape."""
    frame = movielens_frame(movielens_100k)
    _sql(settings, "CREATE SCHEMA team; CREATE TABLE team.ratings (rated_at timestamptz, account text, "
                   "film text, stars int)")
    rows = "\n".join(f"{t.isoformat()}\tU{u}\tM{i}\t{int(v)}" for t, u, i, v in
                     frame[["event_time", "user_id", "item_id", "value"]].itertuples(index=False))
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        import io
        cur.copy_expert("COPY team.ratings FROM STDIN", io.StringIO(rows + "\n"))
    select = {"event_time": "rated_at AS event_time", "user_id": "account AS user_id", "item_id": "film AS item_id",
              "event_type": "'consume'::text AS event_type", "value": "stars::float8 AS value"}
    _sql(settings, "CREATE VIEW team.recsys_events AS SELECT "
                   + ", ".join(select[c.strip()] for c in columns.split(",")) + " FROM team.ratings")
    return dataclasses.replace(settings, source_table="team.recsys_events", train_window_days=365), frame


def test_text_keyed_log_publishes_and_serves_the_logs_own_keys(settings, movielens_100k, monkeypatch, capsys):
    s, frame = _team_log_with_text_ids(settings, movielens_100k)
    s = dataclasses.replace(s, als=dataclasses.replace(s.als, iterations=3))
    report = run_night(s, DataInterval.for_date(ML_NIGHT), models=["mf_als"])
    assert report.results["mf_als.publish"]["live"], report.results

    # every user of the log got one internal id, every key comes back as the log's own
    assert _sql(s, "SELECT count(*), count(DISTINCT user_id) FROM user_keys")[0] == (943, 943)
    rows = _sql(s, "SELECT user_key, item_key, user_id, item_id FROM live_recommendations WHERE model = 'mf_als'")
    assert len(rows) == 943 * s.k
    assert all(u.startswith("U") and i.startswith("M") for u, i, _, _ in rows)
    mapped = dict(_sql(s, "SELECT user_id, user_key FROM user_keys"))
    items = dict(_sql(s, "SELECT item_id, item_key FROM item_keys"))
    assert all(mapped[uid] == u and items[iid] == i for u, i, uid, iid in rows)
    # lists exclude what the user already rated, by key
    rated = set(zip("U" + frame["user_id"].astype(str), "M" + frame["item_id"].astype(str)))
    assert not any((u, i) in rated for u, i, _, _ in rows)

    # serving by key is one probe of the partition's key index, then the filter on expiry
    plan = "\n".join(r[0] for r in _sql(s, "EXPLAIN SELECT rank, item_key FROM live_recommendations "
                                           "WHERE model = 'mf_als' AND user_key = 'U196' ORDER BY rank"))
    assert "recommendations_mf_als_19980423_user_key" in plan and "Seq Scan" not in plan, plan

    # a re-run of the night keeps the ids: keys are never reassigned
    before = dict(_sql(s, "SELECT user_key, user_id FROM user_keys"))
    run_night(s, DataInterval.for_date(ML_NIGHT), models=["mf_als"])
    assert dict(_sql(s, "SELECT user_key, user_id FROM user_keys")) == before

    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    monkeypatch.setenv("RECSYS_SOURCE_TABLE", s.source_table)
    _sql(s, "INSERT INTO items (item_id, item_key, title) SELECT item_id, item_key, 'Film ' || item_key FROM item_keys")
    assert cli.main(["recommend", "U196", "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "user U196, mf_als@1998-04-23:" and len(out) == 4
    assert all(" item M" in line and "  Film M" in line for line in out[1:]), out
    assert cli.main(["recommend", "196"]) == 1  # the internal id is not a key of this log
    capsys.readouterr()

    # the user's recent history, read from the team's own log by key, with the catalogue's titles
    assert cli.main(["recommend", "U196", "-k", "1", "--history", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    newest = frame[frame["user_id"] == 196].sort_values("event_time", ascending=False)
    assert out[2] == "recent history of U196 (4 newest events of types click, consume):", out
    shown = [(line.split()[0] + " " + line.split()[1], line.split()[4]) for line in out[3:]]
    assert len(shown) == 4 and all(f"  Film {item}" in line for (_, item), line in zip(shown, out[3:])), out
    cutoff = newest["event_time"].iloc[3]  # ties in MovieLens' seconds: any 4 of the newest are right
    expected = {("M" + str(i), t.strftime("%Y-%m-%d %H:%M")) for i, t in
                newest[newest["event_time"] >= cutoff][["item_id", "event_time"]].itertuples(index=False)}
    assert {(item, when) for when, item in shown} <= expected, (shown, expected)
    assert cli.main(["recommend", "U999999", "--history", "3"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "no events of user U999999 in the log"


def test_integer_log_carries_no_keys_and_no_key_index(movielens_settings):
    s = dataclasses.replace(movielens_settings, als=dataclasses.replace(movielens_settings.als, iterations=2))
    run_night(s, DataInterval.for_date(ML_NIGHT), models=["mf_als"])
    assert _sql(s, "SELECT count(*), count(user_key), count(item_keys) FROM recommendation_lists")[0] == (943, 0, 0)
    assert _sql(s, "SELECT count(*) FROM user_keys")[0][0] == 0
    indexes = {r[0] for r in _sql(s, "SELECT indexname FROM pg_indexes WHERE tablename = 'recommendations_mf_als_19980423'")}
    assert indexes == {"recommendations_mf_als_19980423_user"}
    # the view still shows keys: the integer ids as text
    assert _sql(s, "SELECT bool_and(user_key = user_id::text AND item_key = item_id::text) FROM live_recommendations")[0][0]

    # a user's recent history comes from the log's (user_id, event_time) index, newest first
    frame = _sql(s, "SELECT event_time, item_id FROM interactions WHERE user_id = 196 ORDER BY event_time DESC")
    with db.raw_connection(s.database_url, s.schema) as conn, conn.cursor() as cur:
        history = user_history(cur, s, "196", 5)
        assert user_history(cur, s, "U196", 5) == []  # not a name an integer log can have
        cur.execute(sql.SQL("EXPLAIN " + load_sql("lookup/user_history")).format(
            log=sql.Identifier(s.schema, "interactions"), user_match=sql.SQL("log.user_id = 196"),
            value=sql.SQL("log.value"), item_join=sql.SQL(""), item_id=sql.SQL("recent.item_key::bigint")),
            {"types": ["consume"], "limit": 5})
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "interactions_user_time" in plan and "Seq Scan on interactions" not in plan, plan
    assert [e.event_time for e in history] == [t for t, _ in frame[:5]]
    assert all(e.event_type == "consume" and e.item_id == int(e.item_key) for e in history)


def test_concurrent_key_assignment_gives_one_id_per_key(settings):
    keys = np.array([f"user-{i:05d}" for i in range(4000)], dtype=object)
    batches = [keys[:3000], keys[1000:], keys[::-1][:2500]]
    results, errors = [None] * len(batches), []

    def assign(n):
        try:
            with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
                results[n] = dict(zip(batches[n].tolist(), assign_listed_keys(cur, settings.schema, "user", batches[n])))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=assign, args=(n,)) for n in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    stored = dict(_sql(settings, "SELECT user_key, user_id FROM user_keys"))
    assert len(stored) == 4000 and len(set(stored.values())) == 4000
    for result in results:
        assert all(stored[k] == v for k, v in result.items())


def _publish(settings, run_date, user_ids, item_ids):
    end = datetime.combine(run_date, datetime.min.time(), tzinfo=timezone.utc)
    version = register_trained(settings, {
        "model": "mf_als", "model_kind": "mf", "model_version": model_version("mf_als", run_date), "run_date": run_date,
        "data_interval_start": end - timedelta(days=1), "data_interval_end": end, "train_window_start": end,
        "n_interactions": 1, "n_users": 1, "n_items": 1, "params": {}, "triggered_by": "test",
        "artifact_path": "-", "artifact_sha256": "-"})
    k = item_ids.shape[1]
    return publish.publish_lists(settings, "mf_als", version, run_date, np.repeat(user_ids, k),
                                 np.tile(np.arange(1, k + 1, dtype=np.int16), len(user_ids)), item_ids.ravel(),
                                 np.tile(np.linspace(1, 0, k, dtype=np.float32), len(user_ids)))


def test_items_that_expire_after_the_publish_leave_the_live_view(settings):
    _sql(settings, "INSERT INTO items (item_id, title, available_until) VALUES "
                   "(1, 'expires in a moment', now() + interval '1 second'), (2, 'open-ended', NULL), "
                   "(3, 'expires next week', now() + interval '7 days')")
    _publish(settings, date(2026, 3, 1), np.array([10, 11]), np.array([[1, 2, 3], [3, 2, 1]]))
    assert _sql(settings, "SELECT count(*) FROM live_recommendations")[0][0] == 6
    _sql(settings, "SELECT pg_sleep(1.2)")
    rows = _sql(settings, "SELECT user_id, rank, item_id FROM live_recommendations ORDER BY 1, 2")
    assert rows == [(10, 2, 2), (10, 3, 3), (11, 1, 3), (11, 2, 2)]
    # the stored list is untouched: the filter is the view's
    assert _sql(settings, "SELECT sum(cardinality(item_ids)) FROM recommendation_lists")[0][0] == 6


def test_unavailable_items_are_never_published(movielens_settings):
    s = dataclasses.replace(movielens_settings, als=dataclasses.replace(movielens_settings.als, iterations=2))
    as_of = datetime.combine(ML_NIGHT, datetime.min.time(), tzinfo=timezone.utc)
    popular = [r[0] for r in _sql(s, "SELECT item_id FROM interactions GROUP BY 1 ORDER BY count(*) DESC LIMIT 40")]
    expired, embargoed = popular[:20], popular[20:]
    _sql(s, "INSERT INTO items (item_id, available_until) SELECT unnest(CAST(:ids AS bigint[])), :t",
         ids=expired, t=as_of - timedelta(hours=1))
    _sql(s, "INSERT INTO items (item_id, available_from) SELECT unnest(CAST(:ids AS bigint[])), :t",
         ids=embargoed, t=as_of + timedelta(hours=1))
    run_night(s, DataInterval.for_date(ML_NIGHT), models=["mf_als"])
    published = {r[0] for r in _sql(s, "SELECT DISTINCT item_id FROM recommendations")}
    assert published and not published & set(popular)


def test_a_view_of_the_four_required_columns_runs_every_model(settings, caplog):
    """No value, session_id, model_version or propensity: the RL models estimate the behaviour policy."""
    s = dataclasses.replace(settings, rl=RLConfig(embedding_dim=8, hidden_dim=8, epochs=1, batch_sessions=128),
                            train_window_days=30)
    run_closed_loop(s, days=2, users=300, items=60, seed=1)
    _sql(s, "CREATE VIEW bare_log AS SELECT event_time, 'u' || user_id AS user_id, item_id, event_type "
            "FROM interactions")
    s = dataclasses.replace(s, source_table="bare_log")
    with caplog.at_level(logging.INFO):
        report = run_night(s, DataInterval.for_date(date(2026, 1, 3)), models=["mf_als", "rl_reinforce"],
                           raise_on_failure=False)
    assert not report.failures, report.failures
    assert "rl_reinforce.publish" in report.results or "rl_reinforce.gate" in report.skips, report.states
    assert report.results["rl_reinforce.train"]["propensity_coverage"] == 0.0
    said = caplog.text
    for column in ("value", "session_id", "model_version", "propensity"):
        assert f"bare_log has no {column} column" in said
    assert said.count("bare_log has no propensity column") == 1  # once, by the extract
    assert _sql(s, "SELECT count(*) FROM live_recommendations WHERE model = 'mf_als' AND user_key NOT LIKE 'u%'")[0][0] == 0


def test_keys_with_quotes_commas_backslashes_and_tabs_come_back_byte_for_byte(settings):
    _sql(settings, "CREATE VIEW keyed_log AS SELECT now() AS event_time, ''::text AS user_id, ''::text AS item_id, "
                   "''::text AS event_type WHERE false")
    s = dataclasses.replace(settings, source_table="keyed_log")
    odd = np.array(['say "hi"', "a,b", "back\\slash", "{braces}", "tab\there", "NULL", "", "ünï cødé"], dtype=object)
    with db.raw_connection(s.database_url, s.schema) as conn, conn.cursor() as cur:
        users = assign_listed_keys(cur, s.schema, "user", odd)
        items = assign_listed_keys(cur, s.schema, "item", odd)
    _publish(s, date(2026, 3, 1), users, np.tile(items, (len(users), 1)))
    rows = _sql(s, "SELECT user_id, rank, user_key, item_key FROM live_recommendations ORDER BY 1, 2")
    key_of_user, key_of_item = dict(zip(users.tolist(), odd)), dict(zip(items.tolist(), odd))
    assert len(rows) == len(odd) ** 2
    assert all(user_key == key_of_user[uid] and item_key == odd[rank - 1] for uid, rank, user_key, item_key in rows)
    assert all(key_of_item[i] == odd[n] for n, i in enumerate(items.tolist()))
    assert _sql(s, "SELECT rank, item_key FROM live_recommendations WHERE model = 'mf_als' AND user_key = :k "
                   "ORDER BY rank LIMIT 2", k='say "hi"') == [(1, 'say "hi"'), (2, "a,b")]
