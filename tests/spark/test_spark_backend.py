"""The Spark backend's guards, against a real PostgreSQL: refused with a clear message where
no Spark can be submitted to, ids pyspark.ml cannot key, nothing to do on torch, and the
extract's bot cap carried over to the job."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from eventdata import copy_events
from spark_local import use_local_spark
from recsys.dataset import EVENT_TYPES, WindowDataset
from recsys.db import engine as db
from recsys.errors import DataValidationError, OtherBackend
from recsys.interval import DataInterval
from recsys.pipeline import run_night
from recsys.spark.backend import capped_users, prepare_fit
from recsys.stages.extract import extract_window

AS_OF = date(2026, 3, 10)


def _events(user_offset: int = 0) -> list[tuple]:
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    return [(start + timedelta(hours=h), user_offset + 1 + h % 7, 10 + (h * 5) % 13, "click", None)
            for h in range(200)]


def _rows(settings, statement):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement)).fetchall()


def test_without_spark_the_backend_is_refused_naming_the_setting_and_nothing_is_published(settings, monkeypatch):
    copy_events(settings, _events())
    monkeypatch.setenv("PATH", "/nonexistent")  # no spark-submit, no java
    monkeypatch.delenv("JAVA_HOME", raising=False)
    spark = dataclasses.replace(settings, mf_backend="spark")

    report = run_night(spark, DataInterval.for_date(AS_OF), models=["mf_als"], raise_on_failure=False)

    failure = str(report.failures["mf_als.spark_export"])
    assert "RECSYS_MF_BACKEND=spark" in failure and "spark-submit" in failure and "Java" in failure
    assert "RECSYS_MF_BACKEND=torch" in failure  # and says how to go on without Spark
    assert report.states["mf_als.spark_fit"] == report.states["mf_als.train"] == "upstream_failed"
    assert report.states["retention"] == "success"  # the rest of the night still runs
    assert _rows(settings, "SELECT count(*) FROM live_recommendations") == [(0,)]
    assert _rows(settings, "SELECT status FROM model_runs WHERE model = 'mf_als'") == [("failed",)]
    assert not (Path(settings.artifact_dir) / "spark").exists()  # refused before anything was exported


def test_on_torch_the_spark_steps_have_nothing_to_do(settings):
    copy_events(settings, _events())
    interval = DataInterval.for_date(AS_OF)
    manifest = extract_window(settings, interval)
    with pytest.raises(OtherBackend, match="torch"):
        prepare_fit(settings, interval, manifest.dataset_path, "mf_als")


def test_ids_beyond_32_bits_are_refused_naming_table_and_column(settings, monkeypatch):
    use_local_spark(monkeypatch)
    copy_events(settings, _events(user_offset=2**31))
    spark = dataclasses.replace(settings, mf_backend="spark")
    interval = DataInterval.for_date(AS_OF)
    manifest = extract_window(spark, interval)
    with pytest.raises(DataValidationError) as raised:
        prepare_fit(spark, interval, manifest.dataset_path, "mf_als")
    assert settings.source_table in str(raised.value) and "user_id" in str(raised.value)
    assert "2**31" in str(raised.value)


def test_the_job_file_carries_the_window_the_values_and_the_capped_users(settings, monkeypatch):
    use_local_spark(monkeypatch)
    copy_events(settings, _events())
    spark = dataclasses.replace(settings, mf_backend="spark", max_events_per_user=20, k=7,
                                als=dataclasses.replace(settings.als, factors=8, regularization=0.5))
    interval = DataInterval.for_date(AS_OF)
    manifest = extract_window(spark, interval)

    prepared = prepare_fit(spark, interval, manifest.dataset_path, "mf_als")

    job = json.loads(Path(prepared["job_path"]).read_text())
    assert prepared["n_events"] == 200 and prepared["days_written"] == len(job["day_paths"]) == 9
    # rank: the 8 factors asked for, at most the window's 7 users (as the torch fit caps them)
    assert job["k"] == 7 and job["als"]["rank"] == 7 and job["als"]["max_iter"] == spark.als.iterations
    # 7 users with ~29 events each, of 13 items: the mean user has ~13 pairs, so regParam = 0.5 / that
    dataset = WindowDataset.load(Path(manifest.dataset_path))
    pairs = dataset.user_item_matrix(dataset.positive_mask(spark.positive_types))
    assert job["als"]["reg_param"] == pytest.approx(0.5 / (pairs.nnz / 7))
    assert job["window_end_ts"] == interval.end.timestamp()
    assert job["holdout_before_ts"] == (interval.end - timedelta(days=1)).timestamp()
    # every user is over the cap of 20: the job keeps each one's events from the extract's cut-off on
    assert sorted(map(int, job["user_min_ts"])) == list(range(1, 8))
    kept = {int(u): dataset.ts[dataset.user_index == np.searchsorted(dataset.user_ids, int(u))].min()
            for u in job["user_min_ts"]}
    assert {int(u): t for u, t in job["user_min_ts"].items()} == kept


def test_capped_users_are_those_at_the_cap():
    ts = np.arange(10, dtype=np.float64)
    dataset = WindowDataset(np.array([5, 9]), np.array([1]), np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1]),
                            np.zeros(10, np.int64), np.full(10, EVENT_TYPES.index("click")), ts, np.full(10, np.nan))
    assert capped_users(dataset, 6) == {"5": 0.0}
    assert capped_users(dataset, 4) == {"5": 0.0, "9": 6.0}
    assert capped_users(dataset, 0) == {}


def test_a_failed_jobs_message_names_the_exception_not_only_stack_frames():
    from recsys.spark.backend import failure_summary

    output = "\n".join(["26/12/04 INFO SparkContext: Running Spark version 4.3.0",
                        "Exception in thread \"main\" java.lang.StackOverflowError",
                        *(["\tat java.base/java.io.ObjectInputStream.readObject0(ObjectInputStream.java:1733)"] * 40),
                        "26/12/04 INFO SparkContext: Successfully stopped SparkContext"])
    summary = failure_summary(output)
    assert summary.splitlines()[0] == "Exception in thread \"main\" java.lang.StackOverflowError"
    assert summary.splitlines()[-1].endswith("Successfully stopped SparkContext") and len(summary.splitlines()) == 17
