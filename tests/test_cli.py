"""The command line against a real database: run, recommend, models, sql."""

import json

import pytest

from recsys import cli


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
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["version", "status", "metric", "model", "live", "popularity"]
    als = next(line for line in lines if line.startswith("mf_als@1998-04-23"))
    assert als.split()[1:3] == ["published", "ndcg@10"] and "no live model yet" in als
    assert len(lines) == 3 and all(len(line) <= 120 for line in lines)
    assert cli.main(["models", "list", "--json", "--model", "mf_bpr"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["version"] for r in listed] == ["mf_bpr@1998-04-23"]
    assert listed[0]["metric"] == "ndcg@10" and 0 < listed[0]["model"] < 1 and 0 < listed[0]["popularity"] < 1
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
    assert "host=127.0.0.1 port=1" in caplog.text and "failed step(s) extract, retention" in caplog.text
    assert cli.main(["models", "list"]) == 2  # the other commands: one clear line, exit 2
    assert caplog.text.count("DatabaseUnreachableError") >= 2


def test_retention_rebuild_writes_the_whole_history(env, movielens_100k, capsys):
    from sqlalchemy import text

    from recsys.db import engine as db
    from eventdata import movielens_frame
    first_days = movielens_frame(movielens_100k).groupby("user_id")["event_time"].min().dt.date
    assert cli.main(["retention", "rebuild", "--as-of", "1998-04-23"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("retention rebuilt as of 1998-04-23 in ") and "classic rows" in out
    with db.get_engine(env.database_url, env.schema).connect() as conn:
        cohorts, mature = conn.execute(text(
            "SELECT count(DISTINCT cohort_date), count(*) FILTER (WHERE is_mature) FROM retention")).one()
    # every day with a first rating is a cohort (the night never ran: this is all the rebuild's work)
    assert cohorts == first_days.nunique() and mature > 0
