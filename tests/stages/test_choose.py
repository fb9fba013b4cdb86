"""The serving alias: `default` serves whichever candidate's live lists did best on the night's hold-out."""

import dataclasses
import threading
import time
from datetime import date

import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.interval import DataInterval
from recsys.pipeline import run_night
from recsys.stages.choose import Candidate, choose_alias, describe, rank_candidates

NIGHT = date(1998, 4, 23)


def _rows(settings, statement, **params):
    with db.get_engine(settings.database_url, settings.schema).begin() as conn:
        result = conn.execute(text(statement), params)
        return result.fetchall() if result.returns_rows else None


def _figure(settings, version, subject="model"):
    return _rows(settings, "SELECT value, n_users FROM eval_metrics WHERE model_version = :v AND subject = :s"
                           " AND metric = 'ndcg' AND k = :k", v=version, s=subject, k=settings.k)[0]


def test_ranking_prefers_the_higher_figure_then_a_baseline_on_a_tie():
    learned = Candidate("mf_als", "mf", "mf_als@x", 0.20, 100)
    popular = Candidate("baseline_popular", "baseline", "baseline_popular@x", 0.20, 100)
    knn = Candidate("itemknn", "item_item", "itemknn@x", 0.25, 100)
    unscored = Candidate("mf_bpr", "mf", None, None, None)
    assert [c.model for c in rank_candidates([learned, popular, knn, unscored])] == [
        "itemknn", "baseline_popular", "mf_als"]
    assert [c.model for c in rank_candidates([learned, popular])] == ["baseline_popular", "mf_als"]
    said = describe(rank_candidates([learned, popular, knn]), "ndcg@10")
    assert said == ("itemknn (itemknn@x) ndcg@10 0.2500 on 100 hold-out users; runner-up baseline_popular 0.2000 "
                    "(+0.0500); best baseline baseline_popular 0.2000 (+0.0500)")
    assert "a baseline: no learned model" in describe(rank_candidates([learned, popular]), "ndcg@10")
    assert "stays where it was" in describe([], "ndcg@10")


def test_the_alias_serves_the_nights_best_lists_with_one_index_probe(movielens_settings):
    s = dataclasses.replace(movielens_settings, holdout="user_last_day")
    report = run_night(s, DataInterval.for_date(NIGHT), models=["mf_als", "baseline_popular", "itemknn"])
    assert report.states["choose"] == "success", report.states
    live = {m for (m,) in _rows(s, "SELECT model FROM live_models")}
    # a model the gate kept out (the baseline floor) has no lists to serve: it cannot win
    figures = {m: _figure(s, f"{m}@{NIGHT}")[0] if m in live else None
               for m in ("mf_als", "baseline_popular", "itemknn")}
    assert "baseline_popular" in live
    winner = max((m for m in figures if figures[m] is not None), key=figures.get)
    choice = report.results["choose"]
    assert (choice["alias"], choice["model"], choice["moved"]) == ("default", winner, True)
    assert choice["served_before"] is None  # the alias's first choice: what it serves changed
    assert _rows(s, "SELECT model, run_date FROM serving_aliases WHERE alias = 'default'") == [(winner, NIGHT)]
    recorded = _rows(s, "SELECT model, model_version, reason, figures FROM alias_choices")
    assert len(recorded) == 1 and recorded[0][:2] == (winner, f"{winner}@{NIGHT}")
    assert {m: f["figure"] for m, f in recorded[0][3].items()} == pytest.approx(figures, nan_ok=True)
    assert f"{winner} ({winner}@{NIGHT}) ndcg@10 {figures[winner]:.4f}" in recorded[0][2]

    # the alias's lists are the winner's, row for row, under the alias's name
    lists = "SELECT user_id, rank, item_id, score, model_version FROM live_recommendations WHERE model = :m ORDER BY 1, 2"
    assert _rows(s, lists, m="default") == _rows(s, lists, m=winner) and len(_rows(s, lists, m="default")) == 9430
    # serving by the alias plans one branch: the winner's partition, through its user index
    plan = "\n".join(r[0] for r in _rows(s, "EXPLAIN SELECT rank, item_id FROM live_recommendations"
                                            " WHERE model = 'default' AND user_id = 196 ORDER BY rank"))
    partition = f"recommendations_{winner}_{NIGHT:%Y%m%d}"
    assert f"Index Scan using {partition}_user" in plan and plan.count("Index Scan") == 1, plan


def test_a_rerun_replaces_its_record_and_a_backfill_never_moves_the_alias(movielens_settings, monkeypatch, capsys):
    from recsys import cli

    s = movielens_settings
    run_night(s, DataInterval.for_date(NIGHT), models=["mf_als", "baseline_popular"])
    first = _rows(s, "SELECT model FROM serving_aliases")
    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    assert cli.main(["models", "list"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"serving alias 'default' serves {first[0][0]} (chosen by the night of {NIGHT}): ")
    again = choose_alias(s, NIGHT, ["mf_als", "baseline_popular"])
    assert again.moved and _rows(s, "SELECT count(*) FROM alias_choices") == [(1,)]
    assert again.served_before == again.model_version and not again.changed  # the same lists as before
    assert _rows(s, "SELECT model FROM serving_aliases") == first

    # an older date's night, run after: its choice is recorded, the alias stays with the newer date
    older = date(1998, 4, 16)
    report = run_night(s, DataInterval.for_date(older), models=["mf_als", "baseline_popular"])
    assert report.results["choose"]["moved"] is False
    assert "history only" in report.results["choose"]["reason"]
    assert _rows(s, "SELECT model, run_date FROM serving_aliases") == [(first[0][0], NIGHT)]
    assert _rows(s, "SELECT run_date FROM alias_choices ORDER BY 1") == [(older,), (NIGHT,)]


def test_a_model_whose_new_version_the_gate_kept_out_competes_with_its_live_lists(movielens_settings):
    """The comparison is of what each model serves: a rejected challenger's live predecessor, scored on
    tonight's hold-out as the champion, is the figure that competes."""
    s = movielens_settings
    run_night(s, DataInterval.for_date(date(1998, 4, 22)), models=["mf_als", "baseline_popular"])
    strict = dataclasses.replace(s, gate_min_users=10**6)  # the metric decides nothing: the live versions stay
    report = run_night(strict, DataInterval.for_date(NIGHT), models=["mf_als", "baseline_popular"])
    assert report.states["mf_als.gate"] == report.states["baseline_popular.gate"] == "skipped", report.states
    figures = report.results["choose"]["figures"]
    assert figures["mf_als"]["live_version"] == "mf_als@1998-04-22"
    assert figures["mf_als"]["figure"] == pytest.approx(_figure(s, f"mf_als@{NIGHT}", "champion")[0])
    # the alias now holds tonight's date, but serves yesterday's version still: nothing changed for serving
    choice = report.results["choose"]
    assert choice["moved"] and choice["model_version"] == choice["served_before"]
    assert choice["model_version"].endswith("@1998-04-22")


def test_an_empty_alias_setting_turns_the_step_into_a_no_op(movielens_settings):
    s = dataclasses.replace(movielens_settings, serving_alias="")
    report = run_night(s, DataInterval.for_date(NIGHT), models=["baseline_popular"])
    assert report.states["choose"] == "success"
    assert _rows(s, "SELECT count(*) FROM serving_aliases") == [(0,)]


def test_the_alias_name_may_not_be_a_models(settings):
    from recsys.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="already a model's name"):
        dataclasses.replace(settings, serving_alias="popular")


def test_redefining_the_live_view_waits_for_another_transaction_that_redefines_it(settings):
    """Two publishes of different models (or a publish and the alias) each read the live versions
    and redefine the view: without the view lock, the later one could point a model back at its
    old table. The lock is held to commit: a second redefinition waits for the first."""
    from recsys.db.engine import raw_connection
    from recsys.stages.publish import define_live_view

    holder = raw_connection(settings.database_url, settings.schema)
    with holder as conn, conn.cursor() as cur:
        define_live_view(cur)
        done = threading.Event()

        def second() -> None:
            with raw_connection(settings.database_url, settings.schema) as other, other.cursor() as c2:
                define_live_view(c2)
            done.set()

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(1.0)
        assert not done.is_set()  # blocked on the lock while the first transaction is open
    thread.join(timeout=30)
    assert done.is_set()
