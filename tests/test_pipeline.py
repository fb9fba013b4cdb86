"""The nightly stages on a real PostgreSQL, called the way the DAG calls them."""

import dataclasses
from datetime import date

import pytest
from sqlalchemy import text

from eventdata import copy_events
from recsys.db import engine as db
from recsys.errors import DataValidationError, EmptyWindowError, SchemaMissingError
from recsys.stages.extract import extract_window
from recsys.interval import DataInterval
from recsys.pipeline import run_night

LAST_ML_DAY = date(1998, 4, 23)  # MovieLens 100K ends 1998-04-22 23:10 UTC


def _query(settings, statement, **params):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement), params).fetchall()


def test_night_trains_evaluates_and_publishes(movielens_settings):
    s = movielens_settings
    report = run_night(s, DataInterval.for_date(LAST_ML_DAY))
    assert report.skipped is None
    assert list(report.seconds) == ["extract", "health", "mf_als.train", "mf_als.evaluate", "mf_als.gate", "mf_als.score",
                                    "mf_als.approval", "mf_als.publish", "choose", "retention", "ope_realised", "cleanup_artifacts"]
    # the Spark backend's steps skip themselves on the default torch backend, without a skip reason
    spark_steps = {"mf_als.spark_export", "mf_als.spark_fit"}
    assert {report.states.pop(step) for step in spark_steps} == {"skipped"} and not report.skips
    assert set(report.states.values()) == {"success"} and not report.failures
    assert report.results["health"]["held"] == []  # MovieLens's last day looks like the week before it

    runs = _query(s, "SELECT model_version, status, n_interactions, metrics FROM model_runs")
    assert [(r[0], r[1]) for r in runs] == [("mf_als@1998-04-23", "published")]
    assert _query(s, "SELECT params->>'backend' FROM model_runs") == [("torch",)]  # which backend fitted it
    assert runs[0][2] == 100_000 - _query(s, "SELECT count(*) FROM interactions WHERE event_time < '1997-04-23'")[0][0]
    metrics = {(m, subj): v for subj, m, v in _query(s, "SELECT subject, metric, value FROM eval_metrics")}
    assert {("recall", "model"), ("ndcg", "model"), ("recall", "popularity"), ("ndcg", "popularity")} <= set(metrics)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    # MovieLens' last day has a handful of users with a new item: too few for the metric to decide
    n = runs[0][3]["holdout_users"]
    assert 0 < n < s.gate_min_users
    assert runs[0][3]["gate"]["reason"] == (
        f"no live model yet; ndcg@10 {metrics[('ndcg', 'model')]:.4f} on {n} hold-out users < 50"
        " (RECSYS_GATE_MIN_USERS), so the metric decides nothing: the first model goes live")

    # every user of the window gets K items, ranks 1..K, none of them already rated
    per_user = _query(s, "SELECT count(*), min(rank), max(rank), count(DISTINCT item_id) FROM live_recommendations"
                         " WHERE model = 'mf_als' GROUP BY user_id")
    assert len(per_user) == 943
    assert all(row == (10, 1, 10, 10) for row in per_user)
    overlap = _query(s, """SELECT count(*) FROM live_recommendations r JOIN interactions i
                           ON i.user_id = r.user_id AND i.item_id = r.item_id""")[0][0]
    assert overlap == 0
    scores_sorted = _query(s, """SELECT bool_and(score >= next) FROM (SELECT score,
        lead(score) OVER (PARTITION BY user_id ORDER BY rank) AS next FROM live_recommendations) x
        WHERE next IS NOT NULL""")[0][0]
    assert scores_sorted


def test_a_night_against_the_live_model_names_the_figures_the_interval_and_the_users(movielens_settings, monkeypatch,
                                                                                     capsys):
    """Two nights on MovieLens: the second night's gate compares ALS with the live one on the
    same hold-out users by a paired bootstrap and holds it to the baselines, and its reason,
    as `recsys models list` shows it, names every figure (its interval recomputed here from
    the per-user figures evaluate kept)."""
    from recsys import cli, holdout_users
    from recsys.metrics.paired import paired_bootstrap

    # MovieLens' days hold 5-15 users with a new item: let 5 decide, so that the rules show
    s = dataclasses.replace(movielens_settings, gate_min_users=5,
                            search=dataclasses.replace(movielens_settings.search, enabled=False))
    first = run_night(s, DataInterval.for_date(date(1998, 4, 2)))
    assert not first.failures and _query(s, "SELECT model_version FROM live_models") == [("mf_als@1998-04-02",)]
    report = run_night(s, DataInterval.for_date(LAST_ML_DAY))
    assert not report.failures and set(report.states.values()) <= {"success", "skipped"}  # green, either way

    version = f"mf_als@{LAST_ML_DAY}"
    (status, gate, path), = _query(s, "SELECT status, metrics->'gate', artifact_path FROM model_runs"
                                      " WHERE model_version = :v", v=version)
    users = holdout_users.load(holdout_users.path_for(path), version, s.k)
    mine, theirs = users.get("model", "ndcg"), users.get("champion", "ndcg")
    paired = paired_bootstrap(mine, theirs, s.gate_bootstrap_samples, s.gate_seed)
    best = max(users.get(b, "ndcg").mean() for b in ("popularity", "trending"))
    assert gate["champion_version"] == "mf_als@1998-04-02" and gate["n_users"] == users.n_users >= 5
    assert gate["reason"].startswith(
        f"ndcg@10 {mine.mean():.4f} vs live {theirs.mean():.4f}: paired diff {paired.mean:+.4f} "
        f"[95% {paired.low:+.4f}, {paired.high:+.4f}] on {users.n_users} users "
        f"{'>=' if paired.low >= -0.05 * theirs.mean() else '<'} -5% of live ({-0.05 * theirs.mean():+.4f}); ")
    assert f"best baseline, {gate['floor_baseline']}'s {best:.4f}" in gate["reason"]
    accepted = bool(paired.low >= -0.05 * theirs.mean() and mine.mean() >= best)
    assert gate["accepted"] is accepted and status == ("published" if accepted else "rejected")
    assert report.states["mf_als.gate"] == ("success" if accepted else "skipped")
    live = "mf_als@1998-04-23" if accepted else "mf_als@1998-04-02"
    assert _query(s, "SELECT model_version FROM live_models") == [(live,)]

    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    capsys.readouterr()
    assert cli.main(["models", "list", "--json"]) == 0
    assert f"on {users.n_users} users" in capsys.readouterr().out


def test_the_demos_simulated_nights_end_green_when_popularity_beats_als(settings, monkeypatch, capsys):
    """scripts/demo.sh's log and nights, with the models it runs: on the simulated log the
    popularity baseline is about twice as good as ALS on the hold-out, so the baseline floor
    keeps ALS off every night, with its reason; the nights end green and popularity serves."""
    from recsys import cli
    from recsys.sim.synthetic_log import simulate_log

    simulate_log(settings, days=28, users=3000, items=1500, seed=7, start_date=date(2026, 1, 1))
    for day in (date(2026, 1, 27), date(2026, 1, 28), date(2026, 1, 29)):
        report = run_night(settings, DataInterval.for_date(day), triggered_by="demo",
                           models=["mf_als", "baseline_popular"])
        assert not report.failures and set(report.states.values()) == {"success", "skipped"}, report.states
        assert report.states["mf_als.gate"] == "skipped" and "below the best baseline" in report.skips["mf_als.gate"]
        assert report.states["baseline_popular.evaluate"] == "success"
    runs = dict(_query(settings, "SELECT model_version, status FROM model_runs"))
    assert {v: st for v, st in runs.items() if v.startswith("mf_als")} == {
        "mf_als@2026-01-27": "rejected", "mf_als@2026-01-28": "rejected", "mf_als@2026-01-29": "rejected"}
    assert _query(settings, "SELECT model FROM live_models") == [("baseline_popular",)]
    assert _query(settings, "SELECT count(DISTINCT user_id) > 0 FROM live_recommendations") == [(True,)]
    reasons = _query(settings, "SELECT metrics->'gate'->>'reason' FROM model_runs WHERE model = 'mf_als'")
    assert all("users; below the best baseline" in r and "nothing goes live" in r for r, in reasons), reasons

    monkeypatch.setenv("RECSYS_DATABASE_URL", settings.database_url)
    capsys.readouterr()
    assert cli.main(["models", "list", "--limit", "6"]) == 0
    assert "rejected" in capsys.readouterr().out


def test_rerun_replaces_and_backfill_keeps_newest_live(movielens_settings):
    s = movielens_settings
    run_night(s, DataInterval.for_date(LAST_ML_DAY))
    run_night(s, DataInterval.for_date(LAST_ML_DAY))  # same date again
    assert _query(s, "SELECT count(*) FROM recommendations")[0][0] == 9430
    older = date(1998, 4, 20)
    run_night(s, DataInterval.for_date(older))  # backfill: history only
    live = _query(s, "SELECT model_version FROM live_models")
    assert live == [("mf_als@1998-04-23",)]
    statuses = dict(_query(s, "SELECT model_version, status FROM model_runs"))
    assert statuses == {"mf_als@1998-04-23": "published", "mf_als@1998-04-20": "superseded"}
    counts = dict(_query(s, "SELECT run_date::text, count(*) FROM recommendations GROUP BY 1"))
    assert set(counts) == {"1998-04-23", "1998-04-20"}
    # the backfilled model saw nothing after its own as-of date
    end = _query(s, "SELECT data_interval_end FROM model_runs WHERE model_version = 'mf_als@1998-04-20'")[0][0]
    assert end.date() == older


def test_empty_interval_skips_and_keeps_live_tables(movielens_settings):
    s = movielens_settings
    run_night(s, DataInterval.for_date(LAST_ML_DAY))
    report = run_night(s, DataInterval.for_date(date(1998, 6, 1)))  # no events on 1998-05-31
    assert report.skipped and "no events" in report.skipped
    assert "retention" in report.seconds
    assert _query(s, "SELECT model_version FROM live_models") == [("mf_als@1998-04-23",)]
    with pytest.raises(EmptyWindowError):
        extract_window(s, DataInterval.for_date(date(1998, 6, 1)))


def test_missing_schema_says_to_upgrade(empty_database, tmp_path):
    from recsys.config import Settings

    s = Settings(database_url=empty_database, artifact_dir=tmp_path)
    with pytest.raises(SchemaMissingError, match="recsys db upgrade"):
        extract_window(s, DataInterval.for_date(LAST_ML_DAY))


def test_bad_source_rows_name_table_and_column_and_publish_nothing(movielens_settings):
    s = movielens_settings
    run_night(s, DataInterval.for_date(LAST_ML_DAY))
    with db.raw_connection(s.database_url, s.schema) as conn, conn.cursor() as cur:
        cur.execute("""CREATE VIEW bad_log AS
                       SELECT event_time, CASE WHEN user_id = 1 THEN NULL ELSE user_id END AS user_id,
                              item_id, event_type, value FROM interactions""")
    bad = dataclasses.replace(s, source_table="bad_log")
    with pytest.raises(DataValidationError, match=r"bad_log\.user_id: \d+ rows have NULL user_id"):
        run_night(bad, DataInterval.for_date(date(1998, 4, 22)))
    assert _query(s, "SELECT model_version FROM live_models") == [("mf_als@1998-04-23",)]
    # the failed date is in the registry as failed, with the stage and the message
    assert _query(s, "SELECT model_version, status, metrics->'last_failure'->>'stage' FROM model_runs"
                     " ORDER BY 1") == [("mf_als@1998-04-22", "failed", "extract"),
                                        ("mf_als@1998-04-23", "published", None)]


def test_published_lists_are_the_same_for_any_shard_count(movielens_settings):
    import numpy as np

    from recsys.stages.extract import extract_window
    from recsys.stages.score import score_shard
    from recsys.stages.train import train_als

    s = dataclasses.replace(movielens_settings, als=dataclasses.replace(movielens_settings.als, iterations=3))
    interval = DataInterval.for_date(LAST_ML_DAY)
    extracted = extract_window(s, interval)
    version = train_als(s, interval, extracted.dataset_path, model="mf_als").model_version

    def lists(n):
        rows = []
        for shard in range(n):
            with np.load(score_shard(s, extracted.dataset_path, version, shard, n).path) as d:
                rows += list(zip(d["user_id"].tolist(), d["rank"].tolist(), d["item_id"].tolist()))
        return sorted(rows)

    one = lists(1)
    assert len(one) == 9430
    assert lists(3) == one
    assert lists(7) == one
