"""The closed loop against a real database: logs, ground truth, and the nightly pipeline."""


import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.sim.closed_loop import DEFAULT_ARMS, run_closed_loop


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def test_days_are_logged_with_versions_and_propensities_and_reruns_replace(settings):
    summary = run_closed_loop(settings, days=2, users=200, items=60, seed=3)
    assert summary.events > 0 and set(summary.served) == set(DEFAULT_ARMS)
    versions = {r[0] for r in _rows(settings, "SELECT DISTINCT model_version FROM interactions"
                                              " WHERE event_type = 'impression'")}
    assert versions == {"random@sim", "popularity@sim", "mf_als@bootstrap", "rl_reinforce@bootstrap"}
    assert _rows(settings, "SELECT count(*) FROM interactions WHERE event_type = 'impression'"
                           " AND (propensity IS NULL OR model_version IS NULL)") == [(0,)]
    before = _rows(settings, "SELECT count(*), count(DISTINCT source) FROM interactions")
    assert before[0][1] == 2
    truth = _rows(settings, "SELECT count(*), bool_and(return_prob BETWEEN 0 AND 1) FROM sim_user_days")
    assert truth[0][0] > 0 and truth[0][1]
    run_closed_loop(settings, days=2, users=200, items=60, seed=3)
    assert _rows(settings, "SELECT count(*), count(DISTINCT source) FROM interactions") == before
    # ground truth never reaches the log the models read
    cols = {r[0] for r in _rows(settings, "SELECT column_name FROM information_schema.columns"
                                          " WHERE table_name = 'interactions'")}
    assert not cols & {"satisfaction", "return_prob", "quality"}


@pytest.mark.slow
def test_cli_closed_loop_runs_the_nights_and_every_arm_serves(settings, monkeypatch, capsys):
    from recsys import cli

    monkeypatch.setenv("RECSYS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECSYS_ARTIFACT_DIR", str(settings.artifact_dir))
    monkeypatch.setenv("RECSYS_RL_EPOCHS", "2")
    monkeypatch.setenv("RECSYS_ALS_SEARCH", "0")
    assert cli.main(["simulate", "--closed-loop", "--days", "4", "--users", "300", "--items", "80",
                     "--seed", "5"]) == 0
    assert '"events"' in capsys.readouterr().out
    live = dict(_rows(settings, "SELECT model, model_version FROM live_models"))
    assert live == {"mf_als": "mf_als@2026-01-05", "rl_reinforce": "rl_reinforce@2026-01-05"}
    served = {r[0] for r in _rows(settings, "SELECT DISTINCT model_version FROM interactions"
                                             " WHERE event_time >= '2026-01-03'")}
    # day 3 is served by the models published after day 2's night
    assert {"mf_als@2026-01-03", "rl_reinforce@2026-01-03", "random@sim", "popularity@sim"} <= served
    cells = {r[0] for r in _rows(settings, "SELECT DISTINCT model_version FROM model_retention WHERE day_n = 1"
                                           " AND is_mature")}
    assert {"mf_als@2026-01-02", "rl_reinforce@2026-01-02", "random@sim", "popularity@sim"} <= cells
    # the estimate of night 01-03 meets its realised outcome (the rl arm's D1 on 01-03) at night 01-05
    ope_rows = _rows(settings, "SELECT run_date::text, predicted, realised FROM ope_estimates ORDER BY run_date")
    assert [r[0] for r in ope_rows] == ["2026-01-03", "2026-01-04", "2026-01-05"]
    assert ope_rows[0][2] is not None and ope_rows[-1][2] is None
