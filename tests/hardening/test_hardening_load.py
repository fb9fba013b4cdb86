"""Hardening, load: eight readers query the live view as fast as they can while a nightly
publish and a backfill of an older date run; no error, no mixed or empty answer.

The in-suite version is short (a quiet phase, then 15 s under load); `bench/readers_under_load.py`
runs the same for 60 s behind real nights and prints the p99 figures the README quotes.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import date, timedelta

import numpy as np
import psycopg2

from hardening_support import publish_synthetic
from recsys.dev import devdb

READERS, USERS, K = 8, 5000, 10
QUIET_S, LOAD_S = 4.0, 15.0
SERVING = ("SELECT model_version, rank, item_id, score FROM live_recommendations"
           " WHERE model = 'mf_als' AND user_id = %s ORDER BY rank LIMIT %s")


class Readers:
    """READERS threads, each with its own connection, checking every answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.phase = "quiet"
        self.latencies: dict[str, list[float]] = {"quiet": [], "load": []}
        self.errors: list[str] = []
        self.bad: list[tuple] = []
        self.versions: set[str] = set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(READERS)]

    def __enter__(self) -> "Readers":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        try:
            conn = psycopg2.connect(devdb._dsn(self.url))
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SET search_path TO recsys")
                while not self._stop.is_set():
                    user, phase = rng.randrange(USERS), self.phase
                    started = time.perf_counter()
                    cur.execute(SERVING, (user, K))
                    rows = cur.fetchall()
                    self.latencies[phase].append(time.perf_counter() - started)
                    versions = {r[0] for r in rows}
                    scores = [r[3] for r in rows]
                    if (len(versions) != 1 or [r[1] for r in rows] != list(range(1, K + 1))
                            or len({r[2] for r in rows}) != K or scores != sorted(scores, reverse=True)):
                        self.bad.append((user, rows))
                    self.versions |= versions
            conn.close()
        except Exception as exc:  # noqa: BLE001 - every reader error is reported by the test
            self.errors.append(repr(exc))


def _p99_us(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values), 99) * 1e6)


def test_eight_readers_see_whole_lists_while_a_publish_and_a_backfill_run(settings, capsys):
    newest = date(2026, 3, 10)
    publish_synthetic(settings, newest, seed=0, users=USERS, k=K)
    nights = backfills = 0
    with Readers(settings.database_url) as readers:
        time.sleep(QUIET_S)
        readers.phase = "load"
        deadline = time.time() + LOAD_S
        day = 0
        while time.time() < deadline:
            day += 1
            assert publish_synthetic(settings, newest + timedelta(days=day), seed=day, users=USERS, k=K)
            nights += 1
            assert not publish_synthetic(settings, newest - timedelta(days=day), seed=100 + day, users=USERS, k=K)
            backfills += 1
    assert not readers.errors, readers.errors[:3]
    assert not readers.bad, readers.bad[:3]
    assert nights >= 1 and backfills >= 1
    assert len(readers.versions) >= 2  # the readers did see the swaps
    assert not any(v < f"mf_als@{newest}" for v in readers.versions)  # a backfill never went live
    quiet, load = readers.latencies["quiet"], readers.latencies["load"]
    assert len(quiet) > 100 and len(load) > 100
    with capsys.disabled():
        print(f"\nreaders: quiet p99 {_p99_us(quiet):.0f} us ({len(quiet)} queries), under load p99 "
              f"{_p99_us(load):.0f} us ({len(load)} queries), {nights} publishes + {backfills} backfills")
