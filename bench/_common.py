"""Shared benchmark plumbing: a throwaway database and a peak-RSS sampler."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil

from recsys.db import engine as db
from recsys.dev import devdb
from recsys.db import migrations


@contextmanager
def bench_database(prefix: str, state_dir: Path) -> Iterator[str]:
    """A new, migrated database on the local server (or an embedded one); dropped afterwards."""
    admin = devdb.LOCAL_ADMIN_URL if devdb.reachable(devdb.LOCAL_ADMIN_URL) else devdb.start_embedded(
        state_dir / "pgdata", keep_running=False)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = devdb.create_database(admin, name, exist_ok=False)
    try:
        migrations.upgrade(url, "recsys")
        yield url
    finally:
        db.dispose_engines()
        devdb.drop_database(admin, name)


class PeakRss:
    """Samples this process's resident memory every 20 ms while active; with `children`, the
    sum over it and its child processes (spark-submit's JVM and its Python workers)."""

    def __init__(self, children: bool = False) -> None:
        self._proc = psutil.Process()
        self._children = children
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakRss":
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> int:
        total = self._proc.memory_info().rss
        if self._children:
            for child in self._proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:  # ended between the listing and the read
                    pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mb(self) -> float:
        return self.peak / 2**20


def score_and_publish(settings, dataset_path: str, version: str, run_date):  # noqa: ANN001, ANN201
    """Score one shard of every user and publish it, as `recsys run` does: the night's publish stage."""
    from recsys.stages.publish import publish_scores
    from recsys.stages.score import score_shard

    shard = score_shard(settings, dataset_path, version)
    return publish_scores(settings, run_date, version, [shard.path])


def timed(fn, *args, children: bool = False, **kwargs):  # noqa: ANN001, ANN201 - tiny helper
    with PeakRss(children) as rss:
        started = time.perf_counter()
        result = fn(*args, **kwargs)
    return result, time.perf_counter() - started, rss.mb
