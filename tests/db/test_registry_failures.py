"""The registry's `failed` status: a stage that fails for good leaves a row that says so.

A failed night never touches what serves: a failed re-run of the live date keeps
'published' (its earlier lists still serve) and only records `last_failure`.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "hardening"))

from hardening_support import (RUN_DATE, fast, live_state, publish_synthetic, query,  # noqa: E402
                               register_version, small_log)
from eventdata import copy_events  # noqa: E402
from recsys import pipeline  # noqa: E402
from recsys.db import migrations
from recsys.interval import DataInterval  # noqa: E402
from recsys.db.registry import record_failure  # noqa: E402
from recsys import catalogue  # noqa: E402
from recsys.night import night_steps  # noqa: E402
from recsys.pipeline import models_built_by  # noqa: E402


@pytest.fixture
def registry(settings):
    migrations.upgrade(settings.database_url, settings.schema)
    return settings


def _row(settings, version):
    return query(settings, "SELECT status, metrics->'last_failure'->>'stage', metrics->'last_failure'->>'error',"
                           " metrics->'last_failure'->>'error_type' FROM model_runs WHERE model_version = :v",
                 v=version)


def test_models_built_by_maps_each_step_to_the_model_it_builds():
    steps = {step.id: step for step in night_steps(catalogue.MODELS)}
    models = ["mf_als", "rl_reinforce"]
    assert models_built_by(steps["extract"], models) == models  # extract feeds every model of the run
    assert models_built_by(steps["mf_als.train"], models) == ["mf_als"]
    assert models_built_by(steps["mf_als.publish"], models) == ["mf_als"]
    assert models_built_by(steps["rl_reinforce.score"], models) == ["rl_reinforce"]
    assert models_built_by(steps["rl_cql.train"], models) == []  # rl_cql is not in this run
    assert models_built_by(steps["rl_cql.train"], ["mf_als", "rl_cql"]) == ["rl_cql"]
    assert models_built_by(steps["mf_bpr.score"], ["mf_als", "mf_bpr"]) == ["mf_bpr"]
    assert models_built_by(steps["retention"], models) == []
    assert models_built_by(steps["ope_realised"], models) == []


def test_a_failure_before_registration_inserts_a_failed_row(registry):
    interval = DataInterval.for_date(RUN_DATE)
    status = record_failure(registry, "mf_als", interval, "train", ValueError("factors hold NaN"), "scheduled")
    assert status == "failed"
    assert _row(registry, f"mf_als@{RUN_DATE}") == [("failed", "train", "factors hold NaN", "ValueError")]
    assert query(registry, "SELECT model_kind, triggered_by, data_interval_end = :end FROM model_runs",
                 end=interval.end) == [("mf", "scheduled", True)]


def test_a_trained_version_that_fails_to_publish_becomes_failed_and_a_retry_publishes_it(registry):
    version = register_version(registry, RUN_DATE)
    assert record_failure(registry, "mf_als", DataInterval.for_date(RUN_DATE), "publish", "disk full") == "failed"
    assert _row(registry, version)[0][:3] == ("failed", "publish", "disk full")
    assert publish_synthetic(registry, RUN_DATE, seed=1, users=5)
    assert _row(registry, version)[0][0] == "published"


def test_a_failed_rerun_of_the_live_date_keeps_published_and_records_the_failure(registry):
    assert publish_synthetic(registry, RUN_DATE, seed=1, users=5)
    before = live_state(registry)
    version = register_version(registry, RUN_DATE)  # the re-run registers again
    record_failure(registry, "mf_als", DataInterval.for_date(RUN_DATE), "score", RuntimeError("worker lost"))
    assert _row(registry, version) == [("published", "score", "worker lost", "RuntimeError")]
    assert live_state(registry) == before


def test_an_unreachable_registry_is_logged_not_raised(registry, caplog):
    dead = dataclasses.replace(registry, database_url="postgresql+psycopg2://nobody@127.0.0.1:1/none")
    assert record_failure(dead, "mf_als", DataInterval.for_date(RUN_DATE), "extract", "boom") is None
    assert "could not record the failure" in caplog.text


def test_run_night_records_the_failed_stage_and_reraises(registry, monkeypatch):
    s = fast(registry)
    copy_events(s, small_log())
    assert pipeline.run_night(s, DataInterval.for_date(RUN_DATE - timedelta(days=1))).skipped is None
    before = live_state(s)

    def broken_publish(*args, **kwargs):
        raise OSError("could not write the scores artifact")

    from recsys.stages import publish

    monkeypatch.setattr(publish, "publish_scores", broken_publish)
    with pytest.raises(OSError, match="scores artifact"):
        pipeline.run_night(s, DataInterval.for_date(RUN_DATE))
    assert _row(s, f"mf_als@{RUN_DATE}") == [
        ("failed", "mf_als.publish", "could not write the scores artifact", "OSError")]
    assert live_state(s) == before
    assert query(s, "SELECT status FROM model_runs WHERE model_version = :v",
                 v=f"mf_als@{RUN_DATE - timedelta(days=1)}") == [("published",)]
