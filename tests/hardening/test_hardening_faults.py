"""Hardening, injected faults: after each, the old lists are live, nothing is half
written, and a retry (Airflow retries every task 3 times) recovers with nothing lost
or duplicated."""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Iterator

import numpy as np
import psycopg2
import pytest
import sqlalchemy.exc

from eventdata import copy_events
from hardening_support import (MODEL, RUN_DATE, execute, fast, live_state, partitions, publish_synthetic, query,
                               register_version, small_log, synthetic_lists)
from recsys.db import engine as db
from recsys.dev import devdb
from recsys.db import migrations
from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.errors import DatabaseUnreachableError, ModelFitError
from recsys.stages.extract import extract_window
from recsys.interval import DataInterval
from recsys.pipeline import run_night
from recsys.stages.publish import publish_lists
from recsys.stages.score import score_shard
from recsys.stages.train import train_als

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
INTERVAL = DataInterval.for_date(RUN_DATE)
USERS, K = 3000, 10

_PAUSED_PUBLISH = """
import sys, time
sys.path[:0] = [{here!r}]
from datetime import date
from hardening_support import MODEL, synthetic_lists
from recsys.stages import publish
from recsys.config import Settings

original = publish.load_sql
def pause_after_copy(name):
    if name == "publish/make_live":  # the new lists are copied and indexed, not yet live
        print("IN_TRANSACTION", flush=True)
        time.sleep(600)
    return original(name)
publish.load_sql = pause_after_copy
publish.publish_lists(Settings(database_url=sys.argv[1]), MODEL, sys.argv[2], date.fromisoformat(sys.argv[3]),
                      *synthetic_lists({users}, {k}, seed=2))
"""


def test_publish_killed_with_sigkill_midway_leaves_the_old_lists_and_a_retry_publishes_once(settings):
    old_date, new_date = date(2026, 3, 1), date(2026, 3, 2)
    publish_synthetic(settings, old_date, seed=1, users=USERS)
    before = live_state(settings)
    version = register_version(settings, new_date, USERS)
    child = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_PUBLISH.format(here=str(HERE), users=USERS, k=K),
         settings.database_url, version, new_date.isoformat()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = child.stdout.readline()
        assert line.strip() == "IN_TRANSACTION", child.stderr.read()[-3000:]
        # inside the publish transaction: the COPY is done, readers still see only the old version
        assert query(settings, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                               " AND state = 'idle in transaction'") == [(1,)]
        assert live_state(settings) == before
        assert query(settings, "SELECT to_regclass('recommendations_mf_als_20260302_staging')") == [(None,)]
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.stderr.close()
    deadline = time.time() + 30  # the server notices the dead client and rolls its transaction back
    while query(settings, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                          " AND state = 'idle in transaction'") != [(0,)]:
        assert time.time() < deadline, "the killed publish's transaction is still open"
        time.sleep(0.2)
    assert live_state(settings) == before
    assert partitions(settings) == ["recommendations_mf_als_20260301"]
    assert query(settings, "SELECT to_regclass('recommendations_mf_als_20260302_staging')") == [(None,)]
    assert query(settings, "SELECT status FROM model_runs WHERE model_version = :v", v=version) == [("trained",)]
    # the retry (Airflow's next attempt of the task) publishes exactly once
    assert publish_lists(settings, MODEL, version, new_date, *synthetic_lists(USERS, K, seed=2))
    assert partitions(settings) == ["recommendations_mf_als_20260301", "recommendations_mf_als_20260302"]
    assert query(settings, "SELECT model_version, count(*), count(DISTINCT (user_id, rank)) FROM live_recommendations"
                           " GROUP BY 1") == [(version, USERS * K, USERS * K)]
    assert query(settings, "SELECT model_version, status FROM model_runs ORDER BY 1") == [
        ("mf_als@2026-03-01", "superseded"), (version, "published")]


@pytest.fixture
def throwaway_server(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """A PostgreSQL of this test alone (pgserver), which the test may restart: never the shared one."""
    import pgserver

    server = pgserver.get_server(str(tmp_path / "pgdata"), cleanup_mode="stop")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1), server
    finally:
        db.dispose_engines()
        server.cleanup()
        # pgserver stops the postmaster it started; one that `_restart` started is stopped here
        if (Path(server.pgdata) / "postmaster.pid").exists():
            _pg_ctl(server, "stop")


def _restart(server) -> None:  # noqa: ANN001 - pgserver.PostgresServer
    _pg_ctl(server, "restart")


def _pg_ctl(server, action: str) -> None:  # noqa: ANN001 - pgserver.PostgresServer
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", action], pgdata=server.pgdata, user=server.system_user, timeout=60)


def test_database_restarted_during_extract_then_the_retry_succeeds(throwaway_server, tmp_path):
    admin, server = throwaway_server
    url = devdb.create_database(admin, "recsys_restart")
    s = fast(Settings(database_url=url, artifact_dir=tmp_path / "artifacts"))
    migrations.upgrade(url, s.schema)
    copy_events(s, small_log(users=12, items=10, days=3, seed=5))
    reference = WindowDataset.load(Path(extract_window(dataclasses.replace(s, artifact_dir=tmp_path / "ref"),
                                                       INTERVAL).dataset_path))
    # a source that reads slowly, so the restart lands in the middle of the COPY
    execute(s, "CREATE VIEW slow_log AS SELECT event_time, user_id, item_id, event_type, value"
               " FROM interactions WHERE pg_sleep(0.01) IS NOT NULL")
    slow = dataclasses.replace(s, source_table="slow_log")
    failure: list[BaseException] = []

    def first_attempt() -> None:
        try:
            extract_window(slow, INTERVAL)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            failure.append(exc)

    attempt = threading.Thread(target=first_attempt)
    attempt.start()
    watcher = psycopg2.connect(devdb._dsn(admin))
    watcher.autocommit = True
    try:
        deadline = time.time() + 60
        with watcher.cursor() as cur:
            while True:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'COPY (%%'")
                if cur.fetchone()[0]:
                    break
                assert time.time() < deadline and attempt.is_alive(), "the extract never reached its COPY"
                time.sleep(0.05)
    finally:
        watcher.close()
    _restart(server)
    attempt.join(timeout=60)
    assert len(failure) == 1, "the first attempt should have lost its connection"
    # a connection error, which Airflow retries (not a validation error, which would fail again)
    assert isinstance(failure[0], (psycopg2.OperationalError, sqlalchemy.exc.OperationalError,
                                   DatabaseUnreachableError)), repr(failure[0])
    assert not (s.artifact_dir / RUN_DATE.isoformat() / "dataset.npz").exists()
    # the task's next attempt, on the restarted server
    manifest = extract_window(slow, INTERVAL)
    again = WindowDataset.load(Path(manifest.dataset_path))
    for field in WindowDataset.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(again, field), getattr(reference, field), err_msg=field)
    assert run_night(s, INTERVAL).skipped is None


@contextmanager
def _mounted(target: Path, *options: str) -> Iterator[Path]:
    """Mount a tmpfs or a read-only bind on `target` (the test runs as root), unmount after."""
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a full or read-only directory needs root")
    out = subprocess.run(["mount", *options, str(target)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount here ({out.stderr.strip()}): the artifact-directory faults need mount rights")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


@pytest.fixture
def live_night(settings: Settings) -> Settings:
    s = fast(settings)
    copy_events(s, small_log(users=60, items=40, days=5))
    assert run_night(s, DataInterval.for_date(RUN_DATE - timedelta(days=1))).skipped is None
    return s


def test_unwritable_artifact_directory_fails_with_that_reason_and_publishes_nothing(live_night, tmp_path):
    s = live_night
    before = live_state(s), query(s, "SELECT model_version, status FROM model_runs WHERE status <> 'failed'")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    (readonly / "keep").write_text("")
    with _mounted(readonly, "--bind", str(readonly)):
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(readonly)]).returncode != 0:
            pytest.skip("cannot remount read-only")
        with pytest.raises(OSError) as err:
            run_night(dataclasses.replace(s, artifact_dir=readonly), INTERVAL)
    assert err.value.errno == errno.EROFS and str(readonly) in str(err.value), err.value
    assert (live_state(s), query(s, "SELECT model_version, status FROM model_runs WHERE status <> 'failed'")) == before
    assert query(s, "SELECT metrics->'last_failure'->>'stage' FROM model_runs WHERE status = 'failed'") == [("extract",)]


def test_full_artifact_directory_fails_with_that_reason_and_a_retry_after_cleanup_succeeds(live_night, tmp_path):
    s = live_night
    before = live_state(s), query(s, "SELECT model_version, status FROM model_runs WHERE status <> 'failed'")
    full = tmp_path / "full"
    with _mounted(full, "-t", "tmpfs", "-o", "size=64k", "tmpfs"):
        filler = full / "filler"
        with pytest.raises(OSError):  # fill the disk
            with open(filler, "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        target = dataclasses.replace(s, artifact_dir=full)
        # extract: the dataset does not fit
        with pytest.raises(OSError) as err:
            run_night(target, INTERVAL)
        assert err.value.errno == errno.ENOSPC, err.value
        assert not (full / RUN_DATE.isoformat() / "dataset.npz").exists()
        # train: the dataset was written elsewhere, the model does not fit
        dataset_path = extract_window(s, INTERVAL).dataset_path
        with pytest.raises(OSError) as err:
            train_als(target, INTERVAL, dataset_path, model="mf_als")
        assert err.value.errno == errno.ENOSPC, err.value
        assert (live_state(s), query(s, "SELECT model_version, status FROM model_runs WHERE status <> 'failed'")) == before
        assert query(s, "SELECT metrics->'last_failure'->>'stage' FROM model_runs WHERE status = 'failed'") == [
            ("extract",)]
        # space freed: the retry publishes the night once
        filler.unlink()
        for leftover in full.rglob("*.tmp.npz"):  # half-written temporary files of the failed attempts
            leftover.unlink()
        assert run_night(target, INTERVAL).skipped is None
    assert query(s, "SELECT model_version FROM live_models") == [(f"mf_als@{RUN_DATE}",)]
    assert query(s, "SELECT status FROM model_runs WHERE model_version = :v", v=f"mf_als@{RUN_DATE}") == [("published",)]
    assert query(s, "SELECT count(*), count(DISTINCT (user_id, rank)) FROM live_recommendations"
                    " WHERE model = 'mf_als'")[0][0] == 60 * s.k


def test_model_artifact_whose_checksum_does_not_match_is_refused(live_night):
    s = live_night
    before = live_state(s)
    dataset_path = extract_window(s, INTERVAL).dataset_path
    trained = train_als(s, INTERVAL, dataset_path, model="mf_als")
    # the file changes after training (a bad copy, a tampered volume): still a valid model file
    with np.load(trained.artifact_path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["item_factors"] = arrays["item_factors"] * 2
    with open(trained.artifact_path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ModelFitError, match=r"checksum mismatch for .*model\.npz"):
        score_shard(s, dataset_path, trained.model_version)
    assert live_state(s) == before
    # the live model's file changed too: the next night refuses to compare with or warm-start from it
    live_path = query(s, "SELECT artifact_path FROM model_runs r JOIN live_models USING (model_version)")[0][0]
    with open(live_path, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelFitError, match="checksum mismatch"):
        run_night(s, INTERVAL)
    assert live_state(s) == before


_RACER = """
import sys, time
sys.path[:0] = [{here!r}]
from pathlib import Path
from hardening_support import fast, RUN_DATE
from recsys.config import Settings
from recsys.interval import DataInterval
from recsys.pipeline import run_night
s = fast(Settings(database_url=sys.argv[1], artifact_dir=Path(sys.argv[2])))
while time.time() < float(sys.argv[3]):
    time.sleep(0.005)
report = run_night(s, DataInterval.for_date(RUN_DATE), triggered_by="manual")
print("RESULT", report.skipped, report.results["mf_als.publish"]["model_version"] if "mf_als.publish" in report.results else None)
"""


def test_two_manual_triggers_racing_for_one_date_leave_one_result_live(settings, tmp_path):
    s = fast(settings)
    copy_events(s, small_log(users=150, items=80, days=5, seed=9))
    artifacts = tmp_path / "shared-artifacts"  # the workers share one artifact directory
    start_at = str(time.time() + 8)
    racers = [subprocess.Popen([sys.executable, "-c", _RACER.format(here=str(HERE)), s.database_url,
                                str(artifacts), start_at], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=REPO) for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in racers]
    codes = [r.returncode for r in racers]
    assert 0 in codes, [o[1][-2000:] for o in outputs]
    for code, (out, err) in zip(codes, outputs):
        if code != 0:  # a loser may fail, as a retryable error; its retry then succeeds
            assert "Traceback" in err
            assert run_night(s, DataInterval.for_date(RUN_DATE)).skipped is None
    version = f"mf_als@{RUN_DATE}"
    assert query(s, "SELECT model_version, status FROM model_runs") == [(version, "published")]
    assert query(s, "SELECT model_version FROM live_models") == [(version,)]
    assert partitions(s) == ["recommendations_mf_als_20260310"]
    rows = query(s, "SELECT user_id, rank, item_id FROM live_recommendations WHERE model = 'mf_als' ORDER BY 1, 2")
    assert len(rows) == len({(u, r) for u, r, _ in rows}) == 150 * s.k
    lists: dict[int, list[tuple[int, int]]] = {}
    for user, rank, item in rows:
        lists.setdefault(user, []).append((rank, item))
    for user, entries in lists.items():
        assert [r for r, _ in entries] == list(range(1, s.k + 1)), user
        assert len({i for _, i in entries}) == s.k, user
