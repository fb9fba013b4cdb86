"""Helpers shared by the hardening tests: small fast settings, small event logs, queries."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import numpy as np
from sqlalchemy import text

from recsys.db import engine as db
from recsys.config import ALSConfig, Settings

RUN_DATE = date(2026, 3, 10)  # as-of date of the small logs below
K = 5


def fast(settings: Settings, **overrides) -> Settings:
    """Settings that train in well under a second on the small logs of these tests; their gate
    lets every night's model through (40 users are below its minimum, and a fault, not the
    gate, is what these tests are about: tests/stages/test_gate.py is the gate's)."""
    values = {"k": K, "train_window_days": 14,
              "als": ALSConfig(factors=8, iterations=3, warm_iterations=2, num_threads=1),
              "search": dataclasses.replace(settings.search, enabled=False),
              "gate_min_users": 0, "gate_baseline_floor": False, "gate_relative_tolerance": 1e9, **overrides}
    return dataclasses.replace(settings, **values)


def small_log(users: int = 40, items: int = 30, days: int = 7, seed: int = 0, end: date = RUN_DATE,
              user_offset: int = 0, item_offset: int = 0) -> list[tuple]:
    """A log of impressions, clicks and consumptions over the `days` before `end`, every day busy.

    Rows: (event_time, user_id, item_id, event_type, value).
    """
    rng = np.random.default_rng(seed)
    end_dt = datetime.combine(end, datetime.min.time(), tzinfo=timezone.utc)
    rows = []
    for day in range(days, 0, -1):
        day_start = end_dt - timedelta(days=day)
        for user in range(users):
            for _ in range(int(rng.integers(1, 5))):
                item = int(rng.integers(0, items))
                at = day_start + timedelta(seconds=int(rng.integers(0, 86_400)))
                kind = ("impression", "click", "consume")[int(rng.integers(0, 3))]
                rows.append((at, user + user_offset, item + item_offset, kind,
                             float(rng.integers(1, 6)) if kind == "consume" else None))
    return rows


def query(settings: Settings, statement: str, **params) -> list[tuple]:
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return [tuple(r) for r in conn.execute(text(statement), params).fetchall()]


def execute(settings: Settings, statement: str, params: dict | tuple | None = None) -> None:
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(statement, params)


def live_state(settings: Settings) -> tuple:
    """What serving sees: live pointers and a digest of the live lists."""
    return (query(settings, "SELECT model, model_version FROM live_models ORDER BY 1"),
            query(settings, "SELECT model_version, count(*), sum(user_id * 31 + item_id * rank)"
                            " FROM live_recommendations GROUP BY 1 ORDER BY 1"))


def partitions(settings: Settings) -> list[str]:
    return sorted(r[0] for r in query(settings, """SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'recommendation_lists'::regclass"""))


MODEL = "mf_als"


def register_version(settings: Settings, run_date: date, users: int = 1) -> str:
    """Register a trained model run for `run_date` (publishing needs one) and return its version."""
    from recsys.db.registry import model_version, register_trained

    end = datetime.combine(run_date, datetime.min.time(), tzinfo=timezone.utc)
    return register_trained(settings, {
        "model": MODEL, "model_kind": "mf", "model_version": model_version(MODEL, run_date), "run_date": run_date,
        "data_interval_start": end - timedelta(days=1), "data_interval_end": end,
        "train_window_start": end - timedelta(days=90), "n_interactions": 1, "n_users": users, "n_items": 100,
        "params": {}, "triggered_by": "test", "artifact_path": "-", "artifact_sha256": "-",
    })


def synthetic_lists(users: int, k: int, seed: int) -> tuple[np.ndarray, ...]:
    """(user_ids, ranks, item_ids, scores): k distinct items per user, scores falling with rank."""
    rng = np.random.default_rng(seed)
    user_ids = np.repeat(np.arange(users, dtype=np.int64), k)
    ranks = np.tile(np.arange(1, k + 1, dtype=np.int16), users)
    items = (rng.integers(0, 1000, size=(users, 1)) + np.arange(k) * 1000).ravel().astype(np.int64)
    scores = np.tile(np.linspace(1, 0.1, k, dtype=np.float32), users)
    return user_ids, ranks, items, scores


def publish_synthetic(settings: Settings, run_date: date, seed: int, users: int, k: int = 10) -> bool:
    """Register and publish synthetic lists for `run_date`; True when they went live."""
    from recsys.stages.publish import publish_lists

    version = register_version(settings, run_date, users)
    return publish_lists(settings, MODEL, version, run_date, *synthetic_lists(users, k, seed))
