"""recsys.ui.data on a real, migrated database with a few rows."""

from __future__ import annotations

from datetime import date

import pytest

from recsys.db import engine as db
from recsys.errors import SchemaMissingError
from recsys.ui import data

from uidata import COHORTS, NDCG, RECALL, RUN_DATES, has_table


def _execute(settings, statement: str) -> None:
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(statement)


def test_model_runs_newest_first_with_status_and_metrics(ui_settings):
    runs = data.model_runs(ui_settings)
    assert [r.run_date for r in runs] == [RUN_DATES[-1], *reversed(RUN_DATES)]
    assert [(r.model, r.status) for r in runs[:2]] == [("mf_als", "published"), ("mf_bpr", "rejected")]
    assert {r.status for r in runs[2:]} == {"superseded"}
    assert runs[0].metrics["ndcg@10"] == pytest.approx(NDCG[-1])


def test_eval_series_per_model_metric_and_subject(ui_settings):
    series = data.eval_series(ui_settings, k=10)
    assert set(series) == {"mf_als"}  # the rejected mf_bpr run has no eval rows
    ndcg = series["mf_als"]["ndcg"]
    assert [s.label for s in ndcg] == ["model", "popularity"]
    assert [d for d, _ in ndcg[0].points] == RUN_DATES
    assert [v for _, v in ndcg[0].points] == pytest.approx(NDCG)
    assert [v for _, v in ndcg[1].points] == pytest.approx([v / 2 for v in NDCG])
    assert ndcg[1].dashed and not ndcg[0].dashed
    assert [v for _, v in series["mf_als"]["recall"][0].points] == pytest.approx(RECALL)
    assert data.eval_series(ui_settings, k=20) == {}


def test_eval_series_window_counts_back_from_the_newest_run(ui_settings):
    series = data.eval_series(ui_settings, k=10, days=1)  # counted back from the newest run_date
    assert [d for d, _ in series["mf_als"]["ndcg"][0].points] == RUN_DATES[-2:]


def test_retention_heatmap_keeps_immature_cells_null(ui_settings):
    cells = data.retention_heatmap(ui_settings)
    assert len(cells) == 2 * len(COHORTS)
    immature = [c for c in cells if not c.is_mature]
    assert immature and all(c.rate is None and c.retained_users is None for c in immature)
    d1 = {c.cohort_date: c for c in cells if c.day_n == 1}
    assert d1[COHORTS[0]].rate == pytest.approx(30 / 100) and d1[COHORTS[0]].is_mature
    d7 = {c.cohort_date: c for c in cells if c.day_n == 7}
    assert not d7[COHORTS[-1]].is_mature and d7[COHORTS[-1]].rate is None
    newest = data.retention_heatmap(ui_settings, cohorts=3)
    assert sorted({c.cohort_date for c in newest}) == COHORTS[-3:]


def test_model_retention_pools_models_with_wilson_bands(ui_settings):
    if not has_table(ui_settings, "model_retention"):
        pytest.skip("migration 0002 (model_retention) not in this checkout")
    by_n = data.model_retention(ui_settings)
    assert set(by_n) == {1, 7}
    d1 = {s.label: s for s in by_n[1]}
    assert set(d1) == {"mf_als", "rl_reinforce"}  # versions not in model_runs: the part before '@'
    first_day, rate = d1["mf_als"].points[0]
    assert first_day == COHORTS[0] and rate == pytest.approx(30 / 200)
    for s in by_n[1] + by_n[7]:
        assert len(s.band) == len(s.points) == 12
        for (_, r), (_, lo, hi) in zip(s.points, s.band):
            assert 0 <= lo < r < hi <= 1


def test_model_retention_is_none_without_its_table(ui_settings):
    _execute(ui_settings, "DROP TABLE IF EXISTS model_retention")
    assert data.model_retention(ui_settings) is None


def test_live_models(ui_settings):
    (live,) = data.live_models(ui_settings)
    assert live.model == "mf_als" and live.model_version == f"mf_als@{RUN_DATES[-1].isoformat()}"
    assert live.run_date == RUN_DATES[-1] and live.model_kind == "mf"
    assert live.published_at.hour == 1


def test_ope_series_predicted_with_its_band_and_realised_once_matured(ui_settings):
    assert data.ope_series(ui_settings) == []  # migration 0004 creates the table, empty
    _execute(ui_settings, "INSERT INTO ope_estimates (run_date, policy, estimator, target, predicted, ci_low,"
                          " ci_high, realised, n_units) VALUES"
                          " ('2026-03-01', 'rl', 'dr', 'return_d1', 0.30, 0.25, 0.35, 0.31, 500),"
                          " ('2026-03-02', 'rl', 'dr', 'return_d1', 0.32, 0.27, 0.37, NULL, 500)")
    predicted, realised = data.ope_series(ui_settings)
    assert predicted.label == "rl predicted" and len(predicted.points) == len(predicted.band) == 2
    assert realised.label == "rl realised" and realised.points == [(date(2026, 3, 1), pytest.approx(0.31))]


def test_missing_schema_is_named(ui_settings):
    _execute(ui_settings, "DROP TABLE eval_metrics")
    with pytest.raises(SchemaMissingError, match="eval_metrics"):
        data.eval_series(ui_settings)


def test_empty_database_gives_empty_panels(settings):
    assert data.model_runs(settings) == []
    assert data.eval_series(settings) == {}
    assert data.retention_heatmap(settings) == []
    assert data.live_models(settings) == []
    assert data.ope_series(settings) == []
    if has_table(settings, "model_retention"):
        assert data.model_retention(settings) == {1: [], 7: []}
