"""Per-impression metrics of the evaluate stage (AUC, MRR, nDCG@5/10 per impression, MIND's):
a hand-made log computed by hand, and the MIND sample against scikit-learn."""

import dataclasses
import logging
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sklearn.metrics import ndcg_score, roc_auc_score

from recsys import cli
from recsys.dataset import WindowDataset
from recsys.db import engine as db
from recsys.interval import DataInterval
from recsys.loaders.mind import load_mind
from recsys.pipeline import run_night
from recsys.ui import page
from tests.eventdata import copy_events

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "mind-small-sample"
AS_OF = date(2026, 3, 10)  # the hold-out day is 03-09


def query(settings, statement: str, **params):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement), params).all()


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=timezone.utc)


def _frame(rows: list[tuple]):
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["event_time", "user_id", "item_id", "event_type", "value", "session_id"])
    return frame.astype({"session_id": "Int64"})  # integers in the CSV, not 100.0


def _hand_log() -> list[tuple]:
    """Clicks on 03-07 give item 10 three, 11 two, 12 one (13 none); the hold-out day 03-09 shows:
    u1 session 100 {10, 11, 12, 13}, clicks 12 (rank 3: AUC 1/3, MRR 1/3, nDCG 1/log2(4) = 0.5);
    u2 session 200 {10, 11}, clicks 10 (rank 1: all 1); u2 session 201 {11, 12}, both clicked (no
    non-click: left out); u3 session 300, no history (left out)."""
    rows = [(_at(7), u, i, "click", None, None) for u, i in ((1, 10), (2, 10), (4, 10), (1, 11), (4, 11), (4, 12))]
    for user, session, shown, clicked in ((1, 100, (10, 11, 12, 13), (12,)), (2, 200, (10, 11), (10,)),
                                          (2, 201, (11, 12), (11, 12)), (3, 300, (10, 11), (11,))):
        rows += [(_at(9), user, item, "impression", None, session) for item in shown]
        rows += [(_at(9, 13), user, item, "click", None, session) for item in clicked]
    return rows


def test_hand_made_impressions_give_the_hand_computed_figures(settings, caplog):
    copy_events(settings, _frame(_hand_log()))
    with caplog.at_level(logging.INFO, logger="recsys.stages.extract"):
        report = run_night(settings, DataInterval.for_date(AS_OF), models=["baseline_popular"])
    assert report.results["baseline_popular.evaluate"], report.states
    rows = query(settings, "SELECT subject, metric, k, value, n_users, n_impressions FROM eval_metrics"
                           " WHERE metric LIKE 'impression%' ORDER BY subject, metric, k")
    expected = {("impression_auc", 0): 2 / 3, ("impression_mrr", 0): 2 / 3, ("impression_ndcg", 5): 0.75,
                ("impression_ndcg", 10): 0.75}
    # the model is the popularity baseline itself: every subject ranks alike
    assert {subject for subject, *_ in rows} == {"model", "popularity", "trending"}
    for subject, metric, k, value, n_users, n_impressions in rows:
        assert value == pytest.approx(expected[(metric, k)]), (subject, metric, k)
        assert (n_users, n_impressions) == (2, 2)
    # the top-K figures keep their shape: no impression count
    assert query(settings, "SELECT count(*) FROM eval_metrics WHERE metric = 'ndcg' AND n_impressions IS NOT NULL"
                 ) == [(0,)]
    summary = query(settings, "SELECT metrics FROM model_runs WHERE model = 'baseline_popular'")[0][0]
    assert summary["impression_auc"] == pytest.approx(2 / 3) and summary["popularity_impression_mrr"] == pytest.approx(2 / 3)
    assert summary["impressions"] == 2
    assert "hold-out day: 10 shown slots with a session, 5 clicked" in caplog.text
    # the propensity-weighted recall and NDCG (Yang et al. 2018) beside the plain ones, for every subject
    weighted = query(settings, "SELECT subject, metric, value FROM eval_metrics WHERE metric LIKE 'pw_%' AND k = 10")
    assert {(subject, metric) for subject, metric, _ in weighted} == {
        (subject, metric) for subject in ("model", "popularity", "trending") for metric in ("pw_recall", "pw_ndcg")}
    assert all(0.0 <= value <= 1.0 for *_, value in weighted) and "pw_ndcg@10" in summary


def test_without_sessions_the_metrics_are_skipped_and_the_log_says_so_once(settings, caplog):
    rows = [row[:5] + (None,) for row in _hand_log()]  # the same log, no session_id
    copy_events(settings, _frame(rows))
    with caplog.at_level(logging.INFO):
        run_night(settings, DataInterval.for_date(AS_OF), models=["baseline_popular", "baseline_trending"])
    assert query(settings, "SELECT count(*) FROM eval_metrics WHERE metric LIKE 'impression%'") == [(0,)]
    assert query(settings, "SELECT count(*) FROM eval_metrics WHERE metric = 'ndcg'")[0][0] > 0
    said = [r.getMessage() for r in caplog.records if "per-impression metrics skipped" in r.getMessage()]
    assert len(said) == 1 and "no impression with a session_id on the hold-out day 2026-03-09" in said[0], said


def test_shown_slots_mark_clicks_of_the_same_user_item_and_session():
    ds = WindowDataset(user_ids=np.array([5, 6]), item_ids=np.array([1, 2, 3]),
                       user_index=np.array([0, 0, 0, 1, 1, 0], np.int32),
                       item_index=np.array([0, 1, 1, 1, 2, 2], np.int32),
                       event_code=np.array([0, 0, 1, 0, 1, 1], np.int8),
                       ts=np.array([10.0, 10, 11, 10, 11, 11]), value=np.full(6, np.nan),
                       session_id=np.array([-7, -7, -7, 9, 9, 8], np.int64))  # negative ids are ids too
    slots = ds.shown_slots(("impression",), ("click",), 0.0, 100.0)
    assert slots.user_index.tolist() == [0, 0, 1] and slots.item_index.tolist() == [0, 1, 1]
    assert slots.clicked.tolist() == [False, True, False]  # user 6 clicked item 3, not the shown 2
    assert len(set(slots.impression_codes().tolist())) == 2
    assert len(ds.shown_slots(("impression",), ("click",), 10.5, 100.0)) == 0


@pytest.fixture
def mind_settings(settings):
    if not (SAMPLE / "behaviors.tsv").exists():
        pytest.skip(f"shared dataset missing: {SAMPLE}")
    load_mind(settings, SAMPLE)
    return dataclasses.replace(settings, source_table="mind_events", train_window_days=7,
                               als=dataclasses.replace(settings.als, iterations=3),
                               search=dataclasses.replace(settings.search, enabled=False))


def _independent(settings, day: date) -> tuple[dict[int, tuple[list[float], list[bool]]], int]:
    """Popularity-scored impressions of the hold-out day, read from the log with SQL: per impression
    (MIND's impression id), each shown item's click count before the day and whether it was clicked;
    only users with a click before the day."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    window = start - timedelta(days=6)
    rows = query(settings, """
        WITH before AS (SELECT user_key, news_key FROM mind_impressions
                        WHERE clicked AND event_time >= :window AND event_time < :start),
             pop AS (SELECT news_key, count(*) AS n FROM before GROUP BY news_key)
        SELECT m.impression_id, coalesce(pop.n, 0), m.clicked
        FROM mind_impressions AS m LEFT JOIN pop USING (news_key)
        WHERE m.event_time >= :start AND m.event_time < :end
          AND m.user_key IN (SELECT user_key FROM before)
        ORDER BY m.impression_id, m.position""", window=window, start=start, end=start + timedelta(days=1))
    out: dict[int, tuple[list[float], list[bool]]] = {}
    for impression, n, clicked in rows:
        out.setdefault(impression, ([], []))
        out[impression][0].append(float(n))
        out[impression][1].append(bool(clicked))
    valid = {i: v for i, v in out.items() if 0 < sum(v[1]) < len(v[1])}
    return valid, len(out) - len(valid)


def _mrr(scores: list[float], clicked: list[bool]) -> float:
    """The expected reciprocal rank of the clicks under a uniformly random order of ties."""
    total = 0.0
    for s, c in zip(scores, clicked):
        if c:
            above = sum(x > s for x in scores)
            tied = sum(x == s for x in scores)
            total += np.mean([1 / r for r in range(above + 1, above + tied + 1)])
    return total / sum(clicked)


def test_mind_sample_figures_match_scikit_learn(mind_settings, monkeypatch, capsys):
    s = mind_settings
    run_night(s, DataInterval.for_date(date(2019, 11, 14)), models=["mf_als"])
    report = run_night(s, DataInterval.for_date(date(2019, 11, 15)), models=["mf_als"])
    assert report.results["mf_als.evaluate"], report.states
    figures = {(subject, metric, k): (value, n_users, n_impressions) for subject, metric, k, value, n_users, n_impressions
               in query(s, "SELECT subject, metric, k, value, n_users, n_impressions FROM eval_metrics"
                           " WHERE model_version = 'mf_als@2019-11-15' AND metric LIKE 'impression%'")}
    # the new model, the live one (yesterday's) and both baselines, each with four figures
    assert {key[0] for key in figures} == {"model", "champion", "popularity", "trending"} and len(figures) == 16
    impressions, _ = _independent(s, date(2019, 11, 14))
    assert len(impressions) > 50
    auc = np.mean([roc_auc_score(c, sc) for sc, c in impressions.values()])
    ndcg5 = np.mean([ndcg_score([c], [sc], k=5) for sc, c in impressions.values()])
    ndcg10 = np.mean([ndcg_score([c], [sc], k=10) for sc, c in impressions.values()])
    mrr = np.mean([_mrr(sc, c) for sc, c in impressions.values()])
    assert figures[("popularity", "impression_auc", 0)][0] == pytest.approx(auc, abs=1e-9)
    assert figures[("popularity", "impression_mrr", 0)][0] == pytest.approx(mrr, abs=1e-9)
    assert figures[("popularity", "impression_ndcg", 5)][0] == pytest.approx(ndcg5, abs=1e-9)
    assert figures[("popularity", "impression_ndcg", 10)][0] == pytest.approx(ndcg10, abs=1e-9)
    assert {v[2] for v in figures.values()} == {len(impressions)}
    for (subject, metric, k), (value, _, _) in figures.items():
        assert 0.0 <= value <= 1.0, (subject, metric, k)

    # where eval metrics are shown: `recsys models show` and the Recsys page's live models
    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    monkeypatch.setenv("RECSYS_SOURCE_TABLE", "mind_events")
    capsys.readouterr()
    assert cli.main(["models", "show", "mf_als@2019-11-15"]) == 0
    auc = figures[("popularity", "impression_auc", 0)]
    assert (f"popularity   impression_auc     {auc[0]:.4f}  ({auc[2]} impressions of {auc[1]} users)"
            in capsys.readouterr().out)
    live = page.render_panel("live", s)
    assert "per impression: AUC, MRR (vs pop)" in live
    assert re.search(r"<td class=\"num\">AUC 0\.\d{4} \([+-]\d\.\d{4}\), MRR 0\.\d{4} \([+-]\d\.\d{4}\)"
                     r"; \d+ impressions</td>", live), live
