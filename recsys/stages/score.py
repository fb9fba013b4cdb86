"""Score stage: top-K lists of one user shard, written as a scores artifact.

Users are split into shards by a stable hash of their id, so each shard can run
on its own worker (the DAG maps this over shards) and the union of the shards
is the same for any shard count. Users with positive history get the model's
lists; users with none (only impressions so far) get the most popular items.
Items a user already clicked or consumed are excluded.

A factor model (MF, the popularity baselines, RL's projection) scores by user x item
dot products (`top_k_factors`); an item-item model (item-kNN, EASE) by the user's
history times its item-item matrix (`top_k_item_item`), the items her neighbours do
not reach coming after the others in popularity order. A hybrid model (`recsys.models.hybrid`)
is a factor model whose items also include catalogue items no event of the window touched:
its lists rank those too, under the same availability rule. Both run a batch of users at a
time, so memory is bounded by batch x items (plus the model itself).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from datetime import date, datetime, time as dtime, timezone

import numpy as np
import scipy.sparse as sp

from recsys.artifacts import save_npz_atomic
from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.db.engine import load_sql, raw_connection
from recsys.db.registry import get_run
from recsys.models.coverage_floor import distinct_items, spread_over_items
from recsys.models.factors import FactorModel
from recsys.models.hybrid import HybridModel
from recsys.models.item_item.model import ItemItemModel
from recsys.models.saved import load_model
from recsys.models.topk import TopK, top_k_factors, top_k_popular
from recsys.spark.backend import load_top_k
from recsys.stages.train_item_item import item_item_top

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredShard:
    path: str
    shard: int
    n_shards: int
    rows: int
    users: int
    cold_users: int


def shard_of(user_ids: np.ndarray, n_shards: int) -> np.ndarray:
    """Stable shard number of each user id (Knuth multiplicative hash, independent of the run)."""
    return ((user_ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32) % np.uint64(n_shards)).astype(np.int64)


def unavailable_items(settings: Settings, run_date: date, item_ids: np.ndarray) -> np.ndarray:
    """Indices into `item_ids` of the items the catalogue says may not be served at the as-of time.

    The as-of time is `run_date` 00:00 UTC, the night's interval end, so a backfill
    gives the same lists whenever it runs; an item that expires after it is
    dropped by the live view once it does (publish/live_recommendations_branch.sql).
    """
    as_of = datetime.combine(run_date, dtime(0), tzinfo=timezone.utc)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("score/unavailable_items"), {"as_of": as_of})
        ids = np.array([row[0] for row in cur.fetchall()], dtype=np.int64)
    position = np.searchsorted(item_ids, ids)
    inside = position < len(item_ids)
    found = position[inside][item_ids[position[inside]] == ids[inside]]
    if len(found):
        logger.info("%d items of the window are unavailable at %s (expired or not yet released): never in a list",
                    len(found), as_of.isoformat())
    return found


def _same_items(model: object, item_ids: np.ndarray) -> bool:
    """The model's items are the window's, or (a hybrid model) include every one of them."""
    if isinstance(model, HybridModel):
        return bool(np.isin(item_ids, model.item_ids).all())
    return np.array_equal(model.item_ids, item_ids)


def _widen(seen: sp.csr_matrix, item_ids: np.ndarray, wider_ids: np.ndarray) -> sp.csr_matrix:
    """`seen` (users x `item_ids`) re-indexed to the columns of `wider_ids` (sorted, a superset)."""
    columns = np.searchsorted(wider_ids, item_ids)
    return sp.csr_matrix((seen.data, columns[seen.indices], seen.indptr), shape=(seen.shape[0], len(wider_ids)))


def _with_coverage_floor(settings: Settings, model: FactorModel, seen: sp.csr_matrix, warm: np.ndarray,
                         unavailable: np.ndarray, top: TopK, version: str) -> TopK:
    """An RL policy's lists, spread over at least `settings.rl.min_distinct_items` items when
    they collapse onto fewer (recsys.models.coverage_floor); unchanged otherwise. Each shard
    keeps the floor on its own users' lists, so their union keeps it too."""
    floor = settings.rl.min_distinct_items
    before = distinct_items(top)
    if floor <= 0 or before >= floor or not len(warm):
        return top
    candidates = top_k_factors(model.user_factors, model.item_factors, seen, settings.k + 2 * floor,
                               batch_users=settings.score_batch_users, users=warm, exclude_items=unavailable)
    spread = spread_over_items(candidates, settings.k, floor)
    logger.warning("%s's lists collapsed onto %d distinct items over %d users: spread over %d "
                   "(coverage floor RECSYS_RL_MIN_DISTINCT_ITEMS=%d, each item in at most 1/%d of the list slots)",
                   version, before, len(warm), distinct_items(spread), floor, floor)
    return spread


def _spark_lists(model: object) -> Path | None:
    """The Spark job's output of a version it trained, when it holds top-K lists."""
    meta = getattr(model, "meta", {}) or {}
    if meta.get("params", {}).get("backend") != "spark":
        return None
    output = Path(meta.get("spark_output", ""))
    return output if (output / "top_k").exists() else None


def score_shard(settings: Settings, dataset_path: str, version: str, shard: int = 0, n_shards: int = 1) -> ScoredShard:
    """Top-K of the users in `shard` of `n_shards`; saves (user_id, rank, item_id, score) arrays."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0..{n_shards - 1}")
    started = time.perf_counter()
    run = get_run(settings, version)
    model = load_model(Path(run.artifact_path), expected_sha256=run.artifact_sha256)
    model.check_finite()
    dataset = WindowDataset.load(Path(dataset_path))
    if not (np.array_equal(model.user_ids, dataset.user_ids) and _same_items(model, dataset.item_ids)):
        raise ValueError(f"model {version} was not trained on dataset {dataset_path}")
    seen = dataset.user_item_matrix(dataset.positive_mask(settings.positive_types))
    item_ids = dataset.item_ids
    if len(model.item_ids) != len(item_ids):  # a hybrid model also ranks catalogue items the window lacks
        seen, item_ids = _widen(seen, item_ids, model.item_ids), model.item_ids
    in_shard = shard_of(dataset.user_ids, n_shards) == shard
    has_history = np.diff(seen.indptr) > 0
    warm, cold = np.flatnonzero(in_shard & has_history), np.flatnonzero(in_shard & ~has_history)
    unavailable = unavailable_items(settings, run.run_date, item_ids)
    spark_output = _spark_lists(model)
    if isinstance(model, ItemItemModel):
        warm_top = item_item_top(settings, model.similarity, seen, warm, exclude_items=unavailable)
    elif spark_output is not None:  # the Spark job ranked them on the cluster (recsys.spark)
        warm_top = load_top_k(spark_output, dataset.user_ids, item_ids, warm)
    else:
        warm_top = top_k_factors(model.user_factors, model.item_factors, seen, settings.k,
                                 batch_users=settings.score_batch_users, users=warm, exclude_items=unavailable)
        if run.model_kind == "rl":
            warm_top = _with_coverage_floor(settings, model, seen, warm, unavailable, warm_top, version)
    popularity = np.asarray(seen.sum(axis=0)).ravel()
    cold_top = top_k_popular(popularity, seen, settings.k, cold, exclude_items=unavailable)
    cold_scores = cold_top.score / max(float(popularity.max()), 1.0)  # a share in [0, 1], comparable across nights

    user_index = np.concatenate([warm_top.user_index, cold_top.user_index])
    item_index = np.concatenate([warm_top.item_index, cold_top.item_index])
    scores = np.concatenate([warm_top.score, cold_scores]).astype(np.float32)
    if not np.isfinite(scores).all():
        raise ValueError(f"scores of {version} contain NaN/inf: refusing to write them")
    path = Path(run.artifact_path).parent / f"scores-{shard:03d}-of-{n_shards:03d}.npz"
    save_npz_atomic(path, user_id=dataset.user_ids[user_index], rank=np.concatenate([warm_top.rank, cold_top.rank]),
                    item_id=item_ids[item_index], score=scores)
    result = ScoredShard(str(path), shard, n_shards, len(scores), len(warm) + len(cold), len(cold))
    logger.info("scored shard %d/%d of %s: %d users (%d cold), %d rows in %.2fs", shard, n_shards, version,
                result.users, result.cold_users, result.rows, time.perf_counter() - started)
    return result
