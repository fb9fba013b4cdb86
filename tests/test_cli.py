"""The command line against a real database: run, recommend, models, sql."""

import dataclasses
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from recsys import cli
from recsys.db.engine import load_sql, raw_connection
from recsys.db.registry import model_version, record_failure, register_trained, write_metrics
from recsys.errors import ModelFitError
from recsys.interval import DataInterval
from recsys.stages.gate import RL_RANKING_REASON, PublishRejected, decide


@pytest.fixture
def env(movielens_settings, monkeypatch):
    s = movielens_settings
    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(s.artifact_dir))
    monkeypatch.setenv("RECSYS_TRAIN_WINDOW_DAYS", "365")
    monkeypatch.setenv("RECSYS_ALS_ITERATIONS", "3")
    return s


def test_run_then_recommend_models_and_sql(env, capsys):
    assert cli.main(["db", "upgrade"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert cli.main(["run", "--date", "1998-04-23", "--extra-models", "mf_bpr"]) == 0
    out = capsys.readouterr().out
    assert '"skipped": {}' in out and '"failed": {}' in out and '"mf_bpr.publish": "success"' in out
    assert cli.main(["recommend", "1", "--model", "mf", "-k", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "user 1, mf_als@1998-04-23:" and len(out) == 6
    assert cli.main(["models", "list"]) == 0
    assert "mf_als@1998-04-23" in capsys.readouterr().out
    assert cli.main(["models", "show", "mf_als@1998-04-23"]) == 0
    shown = capsys.readouterr().out
    assert '"status": "published"' in shown and '"live": true' in shown and "popularity" in shown
    assert cli.main(["sql", "SELECT count(*) AS n FROM live_recommendations WHERE model = 'mf_als'"]) == 0
    assert "9430" in capsys.readouterr().out
    assert cli.main(["recommend", "1", "--model", "mf_bpr", "-k", "5"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "user 1, mf_bpr@1998-04-23:"
    with pytest.raises(SystemExit):
        cli.main(["run", "--date", "1998-04-23", "--extra-models", "mf_nope"])
    assert cli.main(["recommend", "999999"]) == 1


def test_errors_are_one_clear_line(monkeypatch, capsys, caplog):
    monkeypatch.setenv("RECSYS_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/none")
    # every step that needs the database fails with the reason; the command says which and exits 1
    assert cli.main(["run", "--date", "2026-01-02"]) == 1
    assert "host=127.0.0.1 port=1" in caplog.text and "failed step(s) extract, health, choose, retention" in caplog.text
    assert cli.main(["models", "list"]) == 2  # the other commands: one clear line, exit 2
    assert caplog.text.count("DatabaseUnreachableError") >= 2


def test_retention_rebuild_writes_the_whole_history(env, movielens_100k, capsys):
    from sqlalchemy import text

    from recsys.db import engine as db
    from eventdata import movielens_frame
    first_days = movielens_frame(movielens_100k).groupby("user_id")["event_time"].min().dt.date
    assert cli.main(["retention", "rebuild", "--as-of", "1998-04-23"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("retention rebuilt as of 1998-04-23 in ") and " retention cells (" in out
    with db.get_engine(env.database_url, env.schema).connect() as conn:
        cohorts, mature, cells = conn.execute(text(
            "SELECT count(DISTINCT cohort_date), count(*) FILTER (WHERE is_mature), count(*) FROM retention")).one()
        loaded_days = conn.execute(text("SELECT count(*) FROM activity_days_loaded")).scalar()
    # every day with a first rating is a cohort (the night never ran: this is all the rebuild's work)
    assert cohorts == first_days.nunique() and mature > 0
    assert f"{cells} retention cells" in out
    # the compact tables were rebuilt too: the next night carries on incrementally from them
    assert loaded_days == (date(1998, 4, 22) - first_days.min()).days + 1


# `recsys models list` on a registry written by the real registry and gate functions

LIST_DAY = date(2026, 1, 29)


def _register(settings, model, run_date, kind="mf"):
    end = datetime.combine(run_date, datetime.min.time(), tzinfo=timezone.utc)
    return register_trained(settings, {
        "model": model, "model_kind": kind, "model_version": model_version(model, run_date), "run_date": run_date,
        "data_interval_start": end - timedelta(days=1), "data_interval_end": end,
        "train_window_start": end - timedelta(days=30), "n_interactions": 100, "n_users": 10, "n_items": 20,
        "params": {}, "triggered_by": "test", "artifact_path": "-", "artifact_sha256": "-",
    })


def _holdout(settings, version, **ndcg):
    """Hold-out NDCG@10 of `version` per subject ('model', 'champion', 'popularity')."""
    rows = [{"subject": subject, "metric": "ndcg", "k": 10, "value": value, "n_users": 7}
            for subject, value in ndcg.items()]
    write_metrics(settings, version, rows, {"ndcg@10": ndcg["model"], "holdout_users": 7})


def _dr_return(settings, version, value, subject="ope"):
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("ope/eval_metrics_write"), {"model_version": version, "subject": subject,
                                                         "metric": "dr_return", "k": 10, "value": value,
                                                         "n_users": 300})


def _publish(settings, version, run_date):
    """What publishing does to the registry, without building lists."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("UPDATE model_runs SET status = 'published', published_at = now() WHERE model_version = %s",
                    (version,))
        cur.execute("INSERT INTO live_models (model, model_version, run_date) VALUES (%s, %s, %s)",
                    (version.split("@")[0], version, run_date))


@pytest.fixture
def registry(settings, monkeypatch):
    """Six versions of two nights: a live MF version and its rejected challenger, a live RL
    version and a challenger with a DR estimate, a popularity version not gated yet, and
    one that failed in training."""
    monkeypatch.setenv("RECSYS_DATABASE_URL", settings.database_url)
    gate = dataclasses.replace(settings, gate_min_users=5)  # the 7 hold-out users decide
    old = _register(settings, "mf_als", LIST_DAY - timedelta(days=1))
    _holdout(settings, old, model=0.10, popularity=0.06)
    decide(gate, old)
    _publish(settings, old, LIST_DAY - timedelta(days=1))
    new = _register(settings, "mf_als", LIST_DAY)
    _holdout(settings, new, model=0.08, champion=0.10, popularity=0.05)
    with pytest.raises(PublishRejected):
        decide(gate, new)
    live_rl = _register(settings, "rl_reinforce", LIST_DAY - timedelta(days=1), kind="rl")
    _dr_return(settings, live_rl, 0.36)
    _publish(settings, live_rl, LIST_DAY - timedelta(days=1))
    # the live version's estimate on the challenger's logged day D-2, as the DR gate stores it
    _dr_return(settings, live_rl, 0.38, subject=f"ope@{LIST_DAY - timedelta(days=2)}")
    rl = _register(settings, "rl_reinforce", LIST_DAY, kind="rl")
    _dr_return(settings, rl, 0.41)
    decide(settings, rl)
    popular = _register(settings, "baseline_popular", LIST_DAY, kind="baseline")
    _holdout(settings, popular, model=0.05, popularity=0.05)
    _dr_return(settings, popular, 0.35)
    record_failure(settings, "mf_bpr", DataInterval.for_date(LIST_DAY), "train",
                   ModelFitError("factors contain NaN\n  after 3 iterations"))
    return settings


def test_models_list_is_a_table_of_headline_figures_and_gate_reasons(registry, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    assert cli.main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 200 for line in lines)
    assert lines[0].split() == ["version", "status", "metric", "value", "vs", "live", "vs", "pop", "gate"]
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert list(rows) == ["baseline_popular@2026-01-29", "mf_als@2026-01-29", "mf_bpr@2026-01-29",
                          "rl_reinforce@2026-01-29", "mf_als@2026-01-28", "rl_reinforce@2026-01-28"]
    assert rows["mf_als@2026-01-28"].split()[1:7] == ["published", "ndcg@10", "0.1000", "-", "+0.0400", "accepted:"]
    assert rows["mf_als@2026-01-29"].split()[1:7] == ["rejected", "ndcg@10", "0.0800", "-0.0200", "+0.0300",
                                                      "rejected:"]
    assert "rejected: ndcg@10 0.0800 vs live 0.1000: diff -0.0200 on 7 users" in rows["mf_als@2026-01-29"]
    # an off-policy model is read out by its DR estimate on its logged day, against the live
    # version's on the same day and the same night's popularity version's
    assert rows["rl_reinforce@2026-01-29"].split()[1:6] == ["trained", "dr_return@10", "0.4100", "+0.0300",
                                                            "+0.0600"]
    assert rows["rl_reinforce@2026-01-28"].split()[1:6] == ["published", "dr_return@10", "0.3600", "-", "-"]
    assert RL_RANKING_REASON in rows["rl_reinforce@2026-01-29"]
    assert rows["baseline_popular@2026-01-29"].rstrip().endswith("+0.0000  not gated yet")
    assert rows["mf_bpr@2026-01-29"].split()[1:3] == ["failed", "ndcg@10"]
    assert "failed at train: ModelFitError: factors contain NaN after 3 iterations" in rows["mf_bpr@2026-01-29"]

    assert cli.main(["models", "list", "--model", "als", "--limit", "1"]) == 0  # an alias
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[2].startswith("mf_als@2026-01-29 ")
    assert cli.main(["models", "list", "--model", "mf_gone"]) == 0
    assert capsys.readouterr().out.strip() == "no versions of mf_gone in model_runs"
    with pytest.raises(SystemExit):
        cli.main(["models", "list", "--limit", "0"])


def test_models_list_json_is_one_document_with_fixed_keys(registry, capsys):
    assert cli.main(["models", "list", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert isinstance(records, list) and len(records) == 6
    assert all(list(r) == list(records[0]) for r in records)
    by_version = {r["version"]: r for r in records}
    live = by_version["mf_als@2026-01-28"]
    assert live["is_live"] is True and live["status"] == "published" and live["run_date"] == "2026-01-28"
    assert (live["metric"], live["value"], live["popularity_value"]) == ("ndcg@10", 0.10, 0.06)
    assert live["gate_accepted"] is True and live["gate_reason"] == (
        "no live model yet; ndcg@10 0.1000 on 7 users; >= the best baseline, popularity's 0.0600: accepted")
    assert by_version["mf_als@2026-01-29"]["gate_reason"] == (
        "ndcg@10 0.0800 vs live 0.1000: diff -0.0200 on 7 users (means only: no per-user figures) < -5% of live"
        " (-0.0050); >= the best baseline, popularity's 0.0500: rejected, live mf_als@2026-01-28 stays")
    assert live["metrics"] == {"ndcg@10": 0.10, "holdout_users": 7}
    rejected = by_version["mf_als@2026-01-29"]
    assert (rejected["live_version"], rejected["live_value"], rejected["gate_accepted"]) == \
        ("mf_als@2026-01-28", 0.10, False)
    failed = by_version["mf_bpr@2026-01-29"]
    assert failed["value"] is None and failed["gate_reason"] is None
    assert failed["failure"]["stage"] == "train" and failed["failure"]["error_type"] == "ModelFitError"
    assert cli.main(["models", "list", "--json", "--model", "nobody"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_models_list_cuts_lines_to_columns_and_leaves_a_pipe_whole(registry):
    """The entry point as a shell runs it: stdout is a pipe; COLUMNS, when set, is the width."""
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    env.update(RECSYS_DATABASE_URL=registry.database_url, PYTHONPATH=str(Path(cli.__file__).resolve().parents[1]))

    def run(**extra):
        return subprocess.run([sys.executable, "-m", "recsys.cli", "models", "list"], env={**env, **extra},
                              check=True, capture_output=True, text=True).stdout.splitlines()

    out = run(COLUMNS="60")
    assert len(out) == 9 and all(len(line) <= 60 for line in out)
    assert out[2].startswith("baseline_popular@2026-01-29") and out[3].endswith("...")
    whole = run()  # a pipe without COLUMNS: nothing to wrap, so nothing is cut (grep sees the reasons)
    assert len(whole) == 9 and whole[3].endswith("rejected, live mf_als@2026-01-28 stays")
