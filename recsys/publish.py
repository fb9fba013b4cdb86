"""Publish stage: top-K per active user, written with COPY, made live atomically.

Each model version gets its own partition of `recommendations`. The publish
transaction builds the new partition under a staging name (COPY, then the
serving index), drops the partition of an earlier attempt at the same version,
attaches the new one, moves the live pointer and marks the registry — all in
one transaction, so a reader of `live_recommendations` sees the old version or
the new one, never a mix or an empty list, and a failure leaves the old tables
live. An advisory lock per model serialises concurrent publishes.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from psycopg2 import sql

from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.db import copy_in, load_sql, raw_connection, require_tables
from recsys.models.factors import FactorModel
from recsys.registry import get_run
from recsys.score import TopK, top_k_factors, top_k_popular

logger = logging.getLogger(__name__)

_COLUMNS = ["model", "model_version", "run_date", "user_id", "rank", "item_id", "score"]


@dataclass(frozen=True)
class PublishManifest:
    model_version: str
    rows: int
    users: int
    cold_users: int
    live: bool
    seconds: float


def recommend_all(settings: Settings, dataset_path: str, version: str) -> tuple[np.ndarray, np.ndarray, TopK, int]:
    """Top-K for every user of the window, excluding items each already interacted with positively.

    Users with positive history get the model's lists; the others (only
    impressions so far) get the most popular items. Returns (user_ids, item_ids,
    TopK indexing into those arrays, number of cold users).
    """
    run = get_run(settings, version)
    model = FactorModel.load(Path(run.artifact_path), expected_sha256=run.artifact_sha256)
    model.check_finite()
    dataset = WindowDataset.load(Path(dataset_path))
    if not (np.array_equal(model.user_ids, dataset.user_ids) and np.array_equal(model.item_ids, dataset.item_ids)):
        raise ValueError(f"model {version} was not trained on dataset {dataset_path}")
    seen = dataset.user_item_matrix(dataset.positive_mask(settings.positive_event_types))
    has_history = np.diff(seen.indptr) > 0
    warm, cold = np.flatnonzero(has_history), np.flatnonzero(~has_history)
    warm_top = top_k_factors(model.user_factors, model.item_factors, seen, settings.k,
                             batch_users=settings.score_batch_users, users=warm)
    popularity = np.asarray(seen.sum(axis=0)).ravel()
    cold_top = top_k_popular(popularity, seen, settings.k, cold)
    cold_scores = cold_top.score / max(float(popularity.max()), 1.0)  # popularity share, comparable across nights
    merged = TopK(*(np.concatenate([getattr(warm_top, f), getattr(cold_top, f)]) for f in ("user_index", "item_index", "rank"))
                  , np.concatenate([warm_top.score, cold_scores]))
    return dataset.user_ids, dataset.item_ids, merged, len(cold)


def publish_mf(settings: Settings, run_date: date, dataset_path: str, version: str) -> PublishManifest:
    """Score every user of the window with `version` and publish the lists."""
    started = time.perf_counter()
    user_ids, item_ids, top, n_cold = recommend_all(settings, dataset_path, version)
    if not np.isfinite(top.score).all():
        raise ValueError(f"scores of {version} contain NaN/inf: not published")
    run = get_run(settings, version)
    live = publish_lists(settings, run.model, version, run_date, user_ids[top.user_index], top.rank,
                         item_ids[top.item_index], top.score)
    n_users = len(np.unique(top.user_index))
    manifest = PublishManifest(version, len(top.rank), n_users, n_cold, live, time.perf_counter() - started)
    logger.info("published %s: %d rows for %d users in %.2fs (%s)", version, manifest.rows, n_users,
                manifest.seconds, "live" if live else "history only: a newer date is live")
    return manifest


def publish_lists(settings: Settings, model: str, version: str, run_date: date, user_ids: np.ndarray,
                  ranks: np.ndarray, item_ids: np.ndarray, scores: np.ndarray) -> bool:
    """Write one version's lists as a partition and make it live; True when it went live."""
    partition = f"recommendations_{model}_{run_date:%Y%m%d}"
    staging = f"{partition}_staging"
    payload = _csv(model, version, run_date, user_ids, ranks, item_ids, scores)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "recommendations", "live_models", "model_runs")
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('recsys.publish'), hashtext(%s))", (model,))
        ident = sql.Identifier
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(staging)))
        cur.execute(sql.SQL("CREATE TABLE {} (LIKE recommendations INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
                    .format(ident(staging)))
        t0 = time.perf_counter()
        copy_in(cur, staging, _COLUMNS, payload)
        copy_s = time.perf_counter() - t0
        cur.execute(sql.SQL("CREATE INDEX ON {} (user_id, rank)").format(ident(staging)))
        # the CHECK lets ATTACH skip its validation scan of the new partition
        cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (model_version IS NOT NULL AND model_version = {})")
                    .format(ident(staging), ident(f"{staging}_version"), sql.Literal(version)))
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(partition)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(staging), ident(partition)))
        cur.execute(sql.SQL("ALTER TABLE recommendations ATTACH PARTITION {} FOR VALUES IN ({})")
                    .format(ident(partition), sql.Literal(version)))
        cur.execute(load_sql("publish_make_live"), {"model": model, "model_version": version, "run_date": run_date})
        went_live = cur.fetchone() is not None
        cur.execute(load_sql("publish_mark_status"), {"model": model, "model_version": version})
        cur.execute(load_sql("publish_expired_versions"), {"model": model, "keep": settings.keep_versions})
        for (expired,) in cur.fetchall():
            expired_date = expired.split("@", 1)[1].replace("-", "")
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(f"recommendations_{model}_{expired_date}")))
            logger.info("dropped the partition of %s (keeping %d versions)", expired, settings.keep_versions)
    logger.info("COPY of %d rows took %.2fs", len(ranks), copy_s)
    return went_live


def _csv(model: str, version: str, run_date: date, user_ids: np.ndarray, ranks: np.ndarray,
         item_ids: np.ndarray, scores: np.ndarray) -> io.BytesIO:
    order = np.lexsort((ranks, user_ids))  # rows clustered by user, as the serving index reads them
    prefix = f"{model},{version},{run_date.isoformat()},"
    lines = [
        f"{prefix}{u},{r},{i},{s:.6g}\n"
        for u, r, i, s in zip(user_ids[order].tolist(), ranks[order].tolist(), item_ids[order].tolist(),
                              scores[order].tolist())
    ]
    return io.BytesIO("".join(lines).encode())
