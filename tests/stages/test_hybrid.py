"""The `hybrid` model on the MIND sample (shared/datasets), news.tsv as the catalogue.

One night of `hybrid` beside `baseline_popular`, through the real pipeline (extract,
embed, train, evaluate, gate, score, publish) on a real PostgreSQL: its lists hold
catalogue items that no event of the training window touched, never an unavailable one,
and an article published tonight whose text is that of a user's recent click ranks near
the top of her list although nobody has clicked it.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from recsys.dataset import WindowDataset
from recsys.db.engine import raw_connection
from recsys.interval import DataInterval
from recsys.loaders.catalogue import write_catalogue
from recsys.loaders.mind import load_mind
from recsys.models.hybrid import HybridModel, cold_item_factors
from recsys.models.saved import load_model
from recsys.pipeline import run_night
from recsys.source import assign_listed_keys
from recsys.stages.embed import load_encoder

SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"  # beside the checkout

MIND = SHARED_DATASETS / "mind-small-sample"
NIGHT = date(2019, 11, 15)


def query(settings, statement: str, **params):
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def add_item(settings, key: str, title: str, topic: str, body: str | None, **bounds) -> int:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        ids = assign_listed_keys(cur, settings.schema, "item", np.array([key], dtype=object))
        columns = {"title": [title], "topic": [topic], "body": [body]}
        columns.update({name: [value] for name, value in bounds.items()})
        write_catalogue(cur, "test", ids, [key], columns)
    return int(ids[0])


def test_a_hybrid_night_on_mind_lists_items_the_window_never_saw(settings):
    if not (MIND / "news.tsv").exists():
        pytest.skip(f"shared dataset missing: {MIND}")
    load_mind(settings, MIND)
    s = dataclasses.replace(settings, source_table="mind_events", train_window_days=7,
                            als=dataclasses.replace(settings.als, iterations=3))
    # the user with the most clicks on articles that have a text, and her latest such click
    user, clicked_key = query(s, """
        WITH clicks AS (SELECT m.user_key, m.news_key, m.event_time FROM mind_impressions AS m
                        JOIN items AS i ON i.item_key = m.news_key
                        WHERE m.clicked AND i.body IS NOT NULL AND m.event_time < '2019-11-14')
        SELECT user_key, (array_agg(news_key ORDER BY event_time DESC))[1] FROM clicks
        GROUP BY user_key ORDER BY count(*) DESC, user_key LIMIT 1""")[0]
    title, topic, body = query(s, "SELECT title, topic, body FROM items WHERE item_key = %(k)s", k=clicked_key)[0]
    # tonight's article on the same story, which no one has clicked or been shown
    twin = add_item(s, "NTWIN1", f"Update: {title}", topic, body)
    # catalogue items that may not be listed at the as-of time: not yet released, and expired
    as_of = datetime(2019, 11, 15, tzinfo=timezone.utc)
    later = add_item(s, "NLATER", f"Later: {title}", topic, body, available_from=datetime(2019, 11, 20, tzinfo=timezone.utc))
    gone = add_item(s, "NGONE", f"Gone: {title}", topic, body, available_until=datetime(2019, 11, 14, tzinfo=timezone.utc))

    report = run_night(s, DataInterval.for_date(NIGHT), models=["hybrid", "baseline_popular"])
    assert report.states["hybrid.publish"] == "success", (report.states, report.failures, report.skips)
    assert report.results["hybrid.publish"]["live"]
    # evaluated on the same hold-out as the others, beside the baselines
    subjects = {row[0] for row in query(s, "SELECT subject FROM eval_metrics WHERE model_version = 'hybrid@2019-11-15'"
                                           " AND metric = 'ndcg'")}
    assert {"model", "popularity", "trending"} <= subjects

    dataset = WindowDataset.load(Path(report.results["extract"]["dataset_path"]))
    listed = query(s, "SELECT DISTINCT item_id FROM live_recommendations WHERE model = 'hybrid'")
    outside = {item for (item,) in listed} - set(dataset.item_ids.tolist())
    assert len(outside) >= 10  # catalogue articles the window never showed nor clicked
    # each of them a catalogue item the hybrid placed from its text (a vector of the night's encoder)
    assert query(s, "SELECT count(DISTINCT item_id) FROM item_vectors WHERE item_id = ANY(%(ids)s)",
                 ids=sorted(outside)) == [(len(outside),)]
    assert not {later, gone} & {item for (item,) in listed}

    # the cold twin of her latest click ranks near the top of her list
    ranks = query(s, "SELECT rank FROM live_recommendations WHERE model = 'hybrid' AND user_key = %(u)s"
                     " AND item_id = %(i)s", u=user, i=twin)
    assert ranks and ranks[0][0] <= 3, (user, ranks)

    # what the hourly job needs is stored with the model: the user factors, the map, the encoder version
    run = query(s, "SELECT artifact_path, params FROM model_runs WHERE model_version = 'hybrid@2019-11-15'")[0]
    model = load_model(Path(run[0]))
    assert isinstance(model, HybridModel) and run[1]["encoder_version"] == model.meta["encoder_version"]
    encoder = load_encoder(s, model.meta["encoder_version"])
    fresh = cold_item_factors(model.content_map, encoder.encode([f"Update: {title}\n{topic}\n{body}"]))
    position = int(np.searchsorted(model.item_ids, twin))
    assert np.allclose(fresh[0], model.item_factors[position], atol=1e-4)
    assert as_of.date() == NIGHT


def test_the_hybrids_holdout_refit_sees_the_nightly_fits_decayed_confidence(settings, monkeypatch):
    """With a decay half-life, the hybrid's MF part is fitted on decayed confidences at night, and the
    evaluate stage's hold-out refit of it is fitted on the same decayed values (not on counts), so the
    hold-out measures the model that was trained."""
    if not (MIND / "news.tsv").exists():
        pytest.skip(f"shared dataset missing: {MIND}")
    from recsys.stages import evaluate, train_hybrid

    load_mind(settings, MIND)
    s = dataclasses.replace(settings, source_table="mind_events", train_window_days=7, mf_decay_half_life_days=2.0,
                            als=dataclasses.replace(settings.als, iterations=2))
    fitted, refit_inputs = [], []
    real_fit, real_als_train = train_hybrid.fit_als, evaluate._als_train
    monkeypatch.setattr(train_hybrid, "fit_als", lambda m, *a, **k: fitted.append(m.copy()) or real_fit(m, *a, **k))
    monkeypatch.setattr(evaluate, "_als_train",
                        lambda *a, **k: refit_inputs.append(real_als_train(*a, **k)) or refit_inputs[-1])
    report = run_night(s, DataInterval.for_date(NIGHT), models=["hybrid"])
    assert report.states["hybrid.evaluate"] == "success", (report.states, report.failures)
    assert len(refit_inputs) == 1 and len(fitted) >= 2
    nightly, refit = fitted[-2].tocsr(), fitted[-1]
    assert (refit != refit_inputs[0]).nnz == 0  # the refit's MF part was fitted on _als_train's matrix
    values = refit.tocoo()
    assert not np.allclose(values.data, np.round(values.data))  # decayed, not counts
    # each kept pair's confidence is at most the nightly one: a subset of its events, aged alike
    assert np.all(values.data <= np.asarray(nightly[values.row, values.col]).ravel() + 1e-5)
