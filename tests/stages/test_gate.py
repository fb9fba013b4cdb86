"""Champion/challenger gate decisions, recorded in model_runs."""

from datetime import date

import numpy as np
import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.stages import publish
from recsys.stages.gate import PublishRejected, decide
from test_publish import _register

from recsys.stages.score import shard_of


def _metric(settings, version, subject, value):
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO eval_metrics (model_version, subject, metric, k, value, n_users)"
                    " VALUES (%s, %s, 'ndcg', %s, %s, 50)", (version, subject, settings.k, value))


def _go_live(settings, run_date):
    version = _register(settings, run_date)
    publish.publish_lists(settings, "mf_als", version, run_date, np.array([1, 1]), np.array([1, 2], dtype=np.int16),
                          np.array([5, 6]), np.array([0.9, 0.8], dtype=np.float32))
    return version


def _status(settings, version):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text("SELECT status, metrics->'gate'->>'reason' FROM model_runs WHERE model_version = :v"),
                            {"v": version}).one()


def test_first_model_is_accepted(settings):
    version = _register(settings, date(2026, 1, 2))
    assert decide(settings, version).reason == "no live model yet"


def test_better_or_within_tolerance_is_accepted_worse_is_rejected(settings):
    _go_live(settings, date(2026, 1, 1))
    better = _register(settings, date(2026, 1, 2))
    _metric(settings, better, "model", 0.200), _metric(settings, better, "champion", 0.203)
    assert decide(settings, better).accepted  # 0.003 worse, tolerance 0.005

    worse = _register(settings, date(2026, 1, 3))
    _metric(settings, worse, "model", 0.150), _metric(settings, worse, "champion", 0.203)
    with pytest.raises(PublishRejected, match="worse than live mf_als@2026-01-01"):
        decide(settings, worse)
    status, reason = _status(settings, worse)
    assert status == "rejected" and "0.1500" in reason and "0.2030" in reason


def test_force_publishes_a_worse_model(settings):
    _go_live(settings, date(2026, 1, 1))
    worse = _register(settings, date(2026, 1, 3))
    _metric(settings, worse, "model", 0.1), _metric(settings, worse, "champion", 0.3)
    decision = decide(settings, worse, force=True)
    assert decision.accepted and "forced" in decision.reason
    assert _status(settings, worse)[0] == "trained"


def test_backfill_of_an_older_date_fills_history_without_comparison(settings):
    _go_live(settings, date(2026, 1, 5))
    older = _register(settings, date(2026, 1, 3))
    _metric(settings, older, "model", 0.0), _metric(settings, older, "champion", 0.9)
    assert decide(settings, older).reason.startswith("history only")


def test_shards_partition_the_users_stably():
    users = np.arange(10_000, dtype=np.int64) * 13
    for n in (1, 2, 3, 8):
        shards = shard_of(users, n)
        assert shards.min() >= 0 and shards.max() == n - 1
        assert np.array_equal(shards, shard_of(users.copy(), n))
        counts = np.bincount(shards, minlength=n)
        assert counts.min() > 0.8 * len(users) / n
