"""The baselines as catalogue models on MovieLens 100K: trained, evaluated beside the others,
gated, published and served; and scored beside every model in its evaluation."""

from datetime import date

from sqlalchemy import text

from recsys.db import engine as db
from recsys.interval import DataInterval
from recsys.pipeline import run_night

LAST_ML_DAY = date(1998, 4, 23)


def _query(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def test_baselines_are_published_like_models_and_scored_beside_every_model(movielens_settings):
    s = movielens_settings
    report = run_night(s, DataInterval.for_date(LAST_ML_DAY), models=["mf_als", "baseline_popular", "trending"])
    assert not report.failures and report.states["baseline_trending.publish"] == "success", report.states
    assert _query(s, "SELECT model_version, model_kind, status FROM model_runs ORDER BY 1") == [
        ("baseline_popular@1998-04-23", "baseline", "published"),
        ("baseline_trending@1998-04-23", "baseline", "published"),
        ("mf_als@1998-04-23", "mf", "published")]
    # the popularity model's lists are the most rated films each user has not rated
    top = _query(s, """SELECT item_id FROM live_recommendations WHERE model = 'baseline_popular' AND user_id = 1
                       ORDER BY rank""")
    expected = _query(s, """SELECT item_id FROM interactions WHERE event_time >= '1997-04-23'
                            GROUP BY item_id HAVING NOT bool_or(user_id = 1)
                            ORDER BY count(*) DESC, item_id LIMIT 30""")
    assert [r[0] for r in top][:3] == [r[0] for r in expected][:3]
    # every model's evaluation carries both baselines on its own hold-out users
    subjects = _query(s, """SELECT r.model, array_agg(DISTINCT e.subject ORDER BY e.subject)
                            FROM eval_metrics e JOIN model_runs r USING (model_version) GROUP BY 1 ORDER BY 1""")
    assert all({"model", "popularity", "trending"} <= set(subj) for _, subj in subjects), subjects
    # the popularity model scored on the hold-out is the popularity baseline itself
    figures = dict(_query(s, """SELECT subject, value FROM eval_metrics
                               WHERE model_version = 'baseline_popular@1998-04-23' AND metric = 'ndcg'"""))
    assert abs(figures["model"] - figures["popularity"]) < 1e-6
