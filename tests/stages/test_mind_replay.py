"""The MIND replay (recsys.stages.replay) on the shared MIND sample: two days, four models.

Checked against the log itself: the cold shares equal a count in SQL over mind_impressions,
every model has its figures on every day, the figures are in range, the hybrid has cold
figures while the models that cannot place a cold item score them at chance or below.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from recsys.db.engine import raw_connection
from recsys.loaders.mind import load_mind
from recsys.stages.replay import PARTS, REPLAY_MODELS, as_rows, log_days, replay

MIND = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "mind-small-sample"  # beside the checkout
DAYS = [date(2019, 11, 13), date(2019, 11, 14)]


def query(settings, statement: str, **params):
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


def _cold_counts(settings, day: date, window_days: int) -> tuple[int, int, int, int, int]:
    """(distinct clicked items of the day, of them cold, clicks of the day, of them on a cold item,
    cold clicked items with a text in the catalogue), cold = no click in the window's days before the day."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return query(settings, """
        WITH day AS (SELECT news_key FROM mind_impressions WHERE clicked AND event_time >= %(start)s
                     AND event_time < %(end)s),
             warm AS (SELECT DISTINCT news_key FROM mind_impressions WHERE clicked
                      AND event_time >= %(window)s AND event_time < %(start)s)
        SELECT count(DISTINCT news_key), count(DISTINCT news_key) FILTER (WHERE news_key NOT IN (SELECT * FROM warm)),
               count(*), count(*) FILTER (WHERE news_key NOT IN (SELECT * FROM warm)),
               count(DISTINCT news_key) FILTER (WHERE news_key NOT IN (SELECT * FROM warm)
                                                AND news_key IN (SELECT item_key FROM items WHERE title <> ''))
        FROM day""",
                 start=start, end=start + timedelta(days=1), window=start - timedelta(days=window_days - 1))[0]


def test_replay_two_mind_days(settings):
    if not (MIND / "behaviors.tsv").exists():
        pytest.skip(f"shared dataset missing: {MIND}")
    load_mind(settings, MIND)
    s = dataclasses.replace(settings, source_table="mind_events", train_window_days=7,
                            als=dataclasses.replace(settings.als, iterations=3))
    assert log_days(s)[0] == date(2019, 11, 9) and len(log_days(s)) == 6
    with pytest.raises(ValueError, match="a day of log before it"):
        replay(s, days=[date(2019, 11, 9)])

    result = replay(s, days=DAYS)
    assert [d.day for d in result.days] == DAYS
    for d in result.days:
        counts = _cold_counts(s, d.day, s.train_window_days)
        assert (d.clicked_items, d.cold_items, d.clicks, d.cold_clicks, d.cold_items_with_text) == counts
        assert 0.0 < d.cold_item_share < 1.0 and 0.0 < d.cold_click_share < 1.0
        assert set(d.models) == set(REPLAY_MODELS)
        for model, parts in d.models.items():
            assert set(parts) == set(PARTS)
            everything = parts["all"]
            assert everything.impressions > 50 and everything.users > 10, (d.day, model)
            for part, f in parts.items():
                for value in (f.auc, f.mrr, f.ndcg5, f.ndcg10, f.recall, f.ndcg):
                    assert math.isnan(value) or 0.0 <= value <= 1.0, (d.day, model, part, f)
            # cold and warm impressions are each at most the whole, together at least the whole
            assert parts["cold"].impressions <= everything.impressions >= parts["warm"].impressions
            assert parts["cold"].impressions + parts["warm"].impressions >= everything.impressions
        hybrid = d.models["hybrid"]
        assert hybrid["cold"].impressions > 0 and not math.isnan(hybrid["cold"].auc)
        assert hybrid["cold_text"].impressions > 0 and not math.isnan(hybrid["cold_text"].auc)
        # a model that cannot place a cold item ranks every cold click below every known non-click or ties
        for model in ("mf_als", "baseline_popular", "baseline_trending"):
            for part in ("cold", "cold_text"):
                assert d.models[model][part].auc <= 0.5 + 1e-9, (d.day, model, part)
        # what the hybrid adds: a cold click with a text is placed from it, above chance
        assert hybrid["cold_text"].auc > 0.5, (d.day, hybrid["cold_text"])
    rows = as_rows(result)
    assert len(rows) == len(DAYS) * len(REPLAY_MODELS) * len(PARTS)
    assert not math.isnan(result.mean("hybrid", "all", "auc"))

    # the same replay from the command line, as a newcomer runs it after `recsys load mind`
    import os
    from unittest import mock

    from recsys import cli
    env = {"RECSYS_DATABASE_URL": s.database_url, "RECSYS_SCHEMA": s.schema, "RECSYS_SOURCE_TABLE": "mind_events",
           "RECSYS_TRAIN_WINDOW_DAYS": "7", "RECSYS_ARTIFACT_DIR": str(s.artifact_dir), "RECSYS_ALS_ITERATIONS": "3"}
    with mock.patch.dict(os.environ, env):
        assert cli.main(["replay", "--day", "2019-11-14", "--models", "hybrid,nonsense"]) == 2
        assert cli.main(["replay", "--day", "2019-11-14", "--models", "baseline_popular"]) == 0
