"""live_lists_snapshot: refreshed from live_recommendations, checked against the events that asked for it."""

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.db.registry import model_version, register_trained
from recsys.errors import ConfigurationError
from recsys.stages import publish
from recsys.stages.live_snapshot import refresh_live_snapshot

MODEL, USERS, K = "mf_als", 30, 4
NIGHT = date(2026, 1, 20)
SNAPSHOT = ("SELECT model, model_version, run_date, user_id, rank, item_id, score, user_key, item_key"
            " FROM {} ORDER BY 1, 4, 5")


def _publish(settings, run_date: date, seed: int) -> str:
    end = datetime.combine(run_date, datetime.min.time(), tzinfo=timezone.utc)
    version = register_trained(settings, {
        "model": MODEL, "model_kind": "mf", "model_version": model_version(MODEL, run_date), "run_date": run_date,
        "data_interval_start": end - timedelta(days=1), "data_interval_end": end,
        "train_window_start": end - timedelta(days=90), "n_interactions": 1, "n_users": USERS, "n_items": 100,
        "params": {}, "triggered_by": "test", "artifact_path": "-", "artifact_sha256": "-"})
    rng = np.random.default_rng(seed)
    publish.publish_lists(settings, MODEL, version, run_date, np.repeat(np.arange(USERS, dtype=np.int64), K),
                          np.tile(np.arange(1, K + 1, dtype=np.int16), USERS),
                          rng.permuted(np.tile(np.arange(100), (USERS, 1)), axis=1)[:, :K].ravel(),
                          np.tile(np.linspace(1, 0, K, dtype=np.float32), USERS))
    return version


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def test_the_snapshot_copies_the_live_lists_as_of_its_refresh(settings):
    assert refresh_live_snapshot(settings).rows == 0  # an empty schema: an empty snapshot
    _publish(settings, NIGHT - timedelta(days=1), seed=1)
    manifest = refresh_live_snapshot(settings)
    assert manifest.rows == USERS * K and manifest.lists == {
        MODEL: {"model_version": "mf_als@2026-01-19", "run_date": "2026-01-19", "users": USERS, "rows": USERS * K}}
    version = _publish(settings, NIGHT, seed=2)
    # until the next refresh, the snapshot keeps the lists it copied
    assert _rows(settings, "SELECT DISTINCT model_version FROM live_lists_snapshot") == [("mf_als@2026-01-19",)]
    event = {"model": MODEL, "model_version": version, "run_date": NIGHT.isoformat(), "live": True}
    manifest = refresh_live_snapshot(settings, [event])
    assert manifest.checked == [MODEL] and manifest.lists[MODEL]["model_version"] == version
    assert _rows(settings, SNAPSHOT.format("live_lists_snapshot")) == _rows(settings,
                                                                              SNAPSHOT.format("live_recommendations"))


def test_an_event_newer_than_what_the_snapshot_holds_is_refused(settings, caplog):
    _publish(settings, NIGHT, seed=1)
    newer = {"model": MODEL, "model_version": "mf_als@2026-01-21", "run_date": "2026-01-21", "live": True}
    with pytest.raises(ConfigurationError, match="holds mf_als's lists of 2026-01-20.*mf_als@2026-01-21 went live"):
        refresh_live_snapshot(settings, [newer])
    alias = {"alias": "default", "model": MODEL, "model_version": "mf_als@2026-01-20", "run_date": "2026-01-20"}
    assert refresh_live_snapshot(settings, [alias]).checked == []  # no alias in this schema: said, not refused
    assert "no rows of default" in caplog.text
