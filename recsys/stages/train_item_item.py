"""Train stage of the item-item models: item-kNN (`recsys.models.item_item.knn`) and EASE
(`recsys.models.item_item.ease`).

Each first picks its hyper-parameters on the validation split, the day before the
hold-out (`temporal_split` with offset 1, as `recsys.stages.train.search_als`), so the
evaluate stage's hold-out figures stay untouched by the choice: item-kNN every pair of
`RECSYS_ITEMKNN_NEIGHBOURS` x `RECSYS_ITEMKNN_WEIGHTINGS`, EASE every value of
`RECSYS_EASE_LAMBDAS`, ranked by recall@K, then NDCG@K. Then it fits the whole window with
the winner, saves an `ItemItemModel` (kind `item_item`) and records the chosen values and
the search in `model_runs.params`. Evaluate, gate, score and publish follow as for every model.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.db.registry import model_version
from recsys.errors import EmptyWindowError
from recsys.interval import DataInterval
from recsys.metrics.ranking import ranking_metrics, temporal_split
from recsys.models.item_item.ease import check_memory, fit_ease
from recsys.models.item_item.knn import KNNParams, item_knn
from recsys.models.item_item.model import ItemItemModel, binary_history
from recsys.models.topk import TopK, top_k_item_item, top_k_popular
from recsys.stages.train import TrainManifest, save_and_register

logger = logging.getLogger(__name__)

ALGORITHMS = ("itemknn", "ease")


def train_itemknn(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str = "manual", *,
                  model: str) -> TrainManifest:
    """Fit item-kNN on every positive event of the window and register it as `model`.

    Raises:
        EmptyWindowError: the window holds no positive event.
    """
    return _train(settings, interval, dataset_path, triggered_by, model, "itemknn")


def train_ease(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str = "manual", *,
               model: str) -> TrainManifest:
    """Fit EASE on every positive event of the window and register it as `model`.

    Raises:
        EmptyWindowError: the window holds no positive event.
        ConfigurationError: the window's items do not fit RECSYS_EASE_MAX_MEMORY_MB (before any fit).
    """
    return _train(settings, interval, dataset_path, triggered_by, model, "ease")


def grid(settings: Settings, algorithm: str) -> list[dict[str, Any]]:
    """The hyper-parameter points of `algorithm` the search tries, the default first."""
    if algorithm == "itemknn":
        c = settings.itemknn
        return [dataclasses.asdict(KNNParams(n, w, c.shrinkage, c.bm25_k1, c.bm25_b))
                for w, n in itertools.product(c.weightings, c.neighbours)]
    if algorithm == "ease":
        return [{"l2": float(value)} for value in settings.ease.lambdas]
    raise ValueError(f"unknown item-item algorithm {algorithm!r}; expected one of {ALGORITHMS}")


def fit_item_item(settings: Settings, algorithm: str, user_items: sp.spmatrix,
                  params: dict[str, Any]) -> sp.csr_matrix | np.ndarray:
    """The (n_items, n_items) item-item matrix of `algorithm` with `params` (a point of `grid`)."""
    if algorithm == "itemknn":
        return item_knn(user_items, KNNParams(**params))
    if algorithm == "ease":
        return fit_ease(user_items, params["l2"], settings.ease.max_memory_mb)
    raise ValueError(f"unknown item-item algorithm {algorithm!r}; expected one of {ALGORITHMS}")


def item_item_top(settings: Settings, similarity: sp.csr_matrix | np.ndarray, seen: sp.csr_matrix,
                  users: np.ndarray, exclude_items: np.ndarray | None = None) -> TopK:
    """Top-K of an item-item model for `users` of `seen` (their positive events), as served: items
    that no neighbour reaches come after the others in popularity order."""
    popularity = np.asarray(seen.sum(axis=0), dtype=np.float64).ravel()
    fill = popularity / (popularity.max(initial=0.0) + 1.0)
    return top_k_item_item(similarity, binary_history(seen), seen, settings.k, settings.score_batch_users,
                           users=users, exclude_items=exclude_items, fill=fill)


def _train(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str, model: str,
           algorithm: str) -> TrainManifest:
    started = time.perf_counter()
    dataset = WindowDataset.load(Path(dataset_path))
    positives = dataset.positive_mask(settings.positive_types)
    if not positives.any():
        raise EmptyWindowError(f"no {'/'.join(settings.positive_types)} events in the training window")
    if algorithm == "ease":  # refuse at once, not after a search
        check_memory(len(dataset.item_ids), settings.ease.max_memory_mb)
    chosen, search = search_item_item(settings, dataset, interval, algorithm)
    matrix = dataset.user_item_matrix(positives)
    similarity = fit_item_item(settings, algorithm, matrix, chosen)
    version = model_version(model, interval.run_date)
    params = {"algorithm": algorithm, **chosen, "train_window_days": settings.train_window_days, "search": search}
    meta = {"model": model, "model_version": version, "params": params,
            "data_interval": [interval.start.isoformat(), interval.end.isoformat()],
            "train_window_days": settings.train_window_days,
            "positive_event_types": list(settings.positive_types)}
    fitted = ItemItemModel(similarity, dataset.user_ids, dataset.item_ids, meta)
    n_users = int((np.diff(matrix.indptr) > 0).sum())
    npz = save_and_register(settings, interval, fitted, "item_item", int(positives.sum()), n_users, params,
                            triggered_by)
    seconds = time.perf_counter() - started
    logger.info("trained %s (%s %s) on %d positive events of %d users in %.2fs", version, algorithm, chosen,
                int(positives.sum()), n_users, seconds)
    return TrainManifest(version, str(npz), n_users, len(dataset.item_ids), int(positives.sum()), seconds)


def search_item_item(settings: Settings, dataset: WindowDataset, interval: DataInterval,
                     algorithm: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The grid point of `algorithm` with the best recall@K (then NDCG@K) on the validation split,
    and a record of the search; the first point with a one-point grid or no validation user."""
    points = grid(settings, algorithm)
    if len(points) == 1:
        return points[0], {}
    split = temporal_split(dataset, settings.positive_types, interval.end, settings.holdout_last_n, offset=1,
                           holdout=settings.holdout)
    if len(split.users) == 0 or split.train.nnz == 0:
        logger.info("%s search skipped: no validation user", algorithm)
        return points[0], {"skipped": "no validation user"}
    started = time.perf_counter()
    k = settings.k
    results = []
    for point in points:
        similarity = fit_item_item(settings, algorithm, split.train, point)
        figures = ranking_metrics(item_item_top(settings, similarity, split.train, split.users), split.relevant,
                                  split.users, k)
        results.append({**point, "recall": figures["recall"], "ndcg": figures["ndcg"]})
    best = max(results, key=lambda r: (r["recall"], r["ndcg"]))
    chosen = points[results.index(best)]
    popularity = np.asarray(split.train.sum(axis=0)).ravel()
    pop = ranking_metrics(top_k_popular(popularity, split.train, k, split.users), split.relevant, split.users, k)
    varied = [key for key in points[0] if len({str(p[key]) for p in points}) > 1]
    record = {"chosen": {key: chosen[key] for key in varied},
              f"validation_recall@{k}": best["recall"], f"validation_ndcg@{k}": best["ndcg"],
              f"validation_popularity_recall@{k}": pop["recall"], "validation_users": len(split.users),
              "grid": [{**{key: r[key] for key in varied}, f"recall@{k}": round(r["recall"], 5),
                        f"ndcg@{k}": round(r["ndcg"], 5)} for r in results],
              "grid_points": len(results), "seconds": round(time.perf_counter() - started, 2)}
    logger.info("%s search over %d points on %d validation users: %s", algorithm, len(results), len(split.users),
                record)
    return chosen, record
