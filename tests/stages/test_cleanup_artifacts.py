"""Artifact retention on a real registry: versions no longer kept and old datasets go, a live
version's files stay however old, nothing recent or newer than the night is touched."""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import date, timedelta

from recsys.db import engine as db
from recsys.stages.cleanup_artifacts import cleanup_artifacts

RUN_DATE = date(2026, 3, 1)
OLD = time.time() - 3 * 86_400  # older than the grace period


def _night(root, day: date, models=("mf_als",), size=1000):
    folder = root / day.isoformat()
    (folder).mkdir(parents=True)
    (folder / "dataset.npz").write_bytes(b"d" * size)
    for model in models:
        (folder / model).mkdir()
        (folder / model / "model.npz").write_bytes(b"m" * size)
        (folder / model / "scores-000-of-001.npz").write_bytes(b"s" * size)
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (OLD, OLD))


def _register(settings, model, day, live=False):
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO model_runs (model, model_kind, model_version, run_date, data_interval_start,"
                    " data_interval_end, train_window_start, n_interactions, n_users, n_items, params, metrics,"
                    " status, triggered_by, code_version, artifact_path, artifact_sha256)"
                    " VALUES (%(m)s, 'mf', %(v)s, %(d)s, %(d)s, %(d)s, %(d)s, 1, 1, 1, '{}', '{}', %(s)s, 'test',"
                    " 'test', 'x', 'x')", {"m": model, "v": f"{model}@{day}", "d": day,
                                           "s": "published" if live else "superseded"})
        if live:
            cur.execute("INSERT INTO live_models (model, model_version, run_date) VALUES (%s, %s, %s)",
                        (model, f"{model}@{day}", day))


def test_retention_keeps_the_newest_versions_and_a_live_one_older_than_the_rest(settings):
    s = dataclasses.replace(settings, keep_versions=2, dataset_keep_days=3)
    root = s.artifact_dir
    days = [RUN_DATE - timedelta(days=n) for n in range(1, 7)]  # 02-28 ... 02-23
    for day in days:
        _night(root, day)
    # the live version is the oldest night's: the gate rejected everything since
    _register(s, "mf_als", days[-1], live=True)
    for day in days[:-1]:
        _register(s, "mf_als", day)
    _night(root, RUN_DATE)  # tonight's own files: never touched
    (root / "closed_loop").mkdir()  # not a dated folder: left alone

    result = cleanup_artifacts(s, RUN_DATE)

    left = sorted(str(p.relative_to(root)) for p in root.rglob("*.npz"))
    assert left == sorted(
        [f"{RUN_DATE}/dataset.npz", f"{RUN_DATE}/mf_als/model.npz", f"{RUN_DATE}/mf_als/scores-000-of-001.npz"]
        # the two newest versions, and the datasets of the last 3 days
        + [f"{d}/{f}" for d in days[:2] for f in ("mf_als/model.npz", "mf_als/scores-000-of-001.npz")]
        + [f"{d}/dataset.npz" for d in days[:3]]
        # the live version, six nights old: its model and the dataset it was trained on
        + [f"{days[-1]}/{f}" for f in ("dataset.npz", "mf_als/model.npz", "mf_als/scores-000-of-001.npz")])
    assert days[3].isoformat() not in {p.name for p in root.iterdir()}  # an emptied night folder goes too
    assert (root / "closed_loop").is_dir()
    assert result.kept_live == [f"{days[-1]}/mf_als"]
    # the model folders of 02-26, 02-25 and 02-24 (model and scores each) and two datasets
    assert result.bytes_freed == 3 * 2 * 1000 + 2 * 1000
    assert f"{days[2]}/mf_als" in result.deleted and f"{days[3]}/dataset.npz" in result.deleted
    assert cleanup_artifacts(s, RUN_DATE).deleted == []  # idempotent


def test_recent_files_and_newer_nights_are_never_deleted(settings):
    s = dataclasses.replace(settings, keep_versions=1, dataset_keep_days=1)
    root = s.artifact_dir
    old, recent = RUN_DATE - timedelta(days=10), RUN_DATE - timedelta(days=9)
    _night(root, old)
    _night(root, recent)
    os.utime(root / recent.isoformat() / "mf_als" / "model.npz")  # a backfill of that date is writing now
    _night(root, RUN_DATE + timedelta(days=3))  # a newer night than this (backfilled) one
    _register(s, "mf_als", RUN_DATE + timedelta(days=3))
    result = cleanup_artifacts(s, RUN_DATE)
    assert sorted(result.deleted) == [f"{old}/dataset.npz", f"{old}/mf_als", f"{recent}/dataset.npz"]
    assert (root / recent.isoformat() / "mf_als" / "model.npz").exists()
    assert (root / (RUN_DATE + timedelta(days=3)).isoformat() / "mf_als" / "model.npz").exists()
    # with dataset_keep_days 0 datasets stay whatever their age
    _night(root, RUN_DATE - timedelta(days=20))
    kept = cleanup_artifacts(dataclasses.replace(s, dataset_keep_days=0), RUN_DATE)
    assert f"{RUN_DATE - timedelta(days=20)}/dataset.npz" not in kept.deleted


def test_spark_export_days_go_once_they_are_before_every_kept_window(settings):
    s = dataclasses.replace(settings, train_window_days=30, dataset_keep_days=5)
    days = s.artifact_dir / "spark" / "events"
    for back in (36, 35, 34, 1):  # 35 days back is the oldest a kept night (5 days ago) still reads
        folder = days / f"day={RUN_DATE - timedelta(days=back)}"
        folder.mkdir(parents=True)
        (folder / "events.parquet").write_bytes(b"p" * 100)
        for path in (folder, folder / "events.parquet"):
            os.utime(path, (OLD, OLD))
    (days / "_days.json").write_text("{}")
    result = cleanup_artifacts(s, RUN_DATE)
    assert result.deleted == [f"spark/events/day={RUN_DATE - timedelta(days=36)}"]
    assert result.bytes_freed == 100
    assert sorted(p.name for p in days.iterdir()) == [
        "_days.json", *(f"day={RUN_DATE - timedelta(days=b)}" for b in (35, 34, 1))]
    # with dataset_keep_days 0 every day stays
    assert cleanup_artifacts(dataclasses.replace(s, dataset_keep_days=0), RUN_DATE + timedelta(days=30)).deleted == []
