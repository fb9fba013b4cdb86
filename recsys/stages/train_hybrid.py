"""Train stage of the `hybrid` model (`recsys.models.hybrid`): ALS, a content -> factor map and
content profiles, so that items nobody has touched yet are ranked from their text.

The night first brings the catalogue's content vectors up to date (`recsys.stages.embed`,
RECSYS_CONTENT_ENCODER). Then, on the window:

1. the profile weight w is searched on the validation day before the hold-out (as the
   other models' searches: recall@K, then NDCG@K), each value of
   RECSYS_HYBRID_PROFILE_WEIGHTS scored on one ALS fit;
2. ALS is fitted on the whole window with the configured values (the ALS settings, no search);
3. the ridge map W (RECSYS_HYBRID_RIDGE) is fitted on the window's items that have both
   factors and a vector, and every user's profile from her positive events
   (RECSYS_HYBRID_HALF_LIFE_DAYS);
4. the model's items are the window's items plus every catalogue item with a vector that
   was published by the as-of time (NULL published_at counts as published): a cold item
   is positioned at c W. The score stage excludes unavailable items as for every model.

The saved `HybridModel` carries the user factors [u, w p], the map W and the encoder
version, which is what the hourly job needs to score new items without refitting.
`hybrid_split_factors` is the same fit on a split's training part, for the evaluation.
"""

from __future__ import annotations

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
from recsys.metrics.ranking import Split, ranking_metrics, temporal_split
from recsys.models.hybrid import HybridModel, content_profiles, hybrid_factors, ridge_map
from recsys.models.mf.als import fit_als
from recsys.models.topk import top_k_factors
from recsys.stages.embed import embed_catalogue, load_vectors
from recsys.stages.train import TrainManifest, feedback_params, mf_strengths, save_and_register

logger = logging.getLogger(__name__)


def train_hybrid(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str = "manual", *,
                 model: str) -> TrainManifest:
    """Embed the catalogue, fit the hybrid model on the window and register it as `model`.

    Raises:
        EmptyWindowError: the window holds no positive event.
        ModelFitError, ConfigurationError: from the encoder (`recsys.stages.embed.embed_catalogue`).
    """
    started = time.perf_counter()
    dataset = WindowDataset.load(Path(dataset_path))
    positives = dataset.positive_mask(settings.positive_types)
    if not positives.any():
        raise EmptyWindowError(f"no {'/'.join(settings.positive_types)} events in the training window")
    embedded = embed_catalogue(settings)
    catalogue_ids, catalogue_vectors = load_vectors(settings, embedded.encoder_version, as_of=interval.end)
    window_vectors = vectors_for(dataset.item_ids, catalogue_ids, catalogue_vectors, embedded.dim)
    weight, search = search_weight(settings, dataset, interval, window_vectors)

    matrix = dataset.user_item_matrix(positives, mf_strengths(settings, dataset, positives, interval.end))
    users, items, profiles, content_map, warm = _fit(settings, dataset, matrix, positives, window_vectors)
    # the model's items: the window's and the catalogue's (items no event touched yet)
    item_ids = np.union1d(dataset.item_ids, catalogue_ids).astype(np.int64)
    in_window = np.isin(item_ids, dataset.item_ids)
    vectors = vectors_for(item_ids, catalogue_ids, catalogue_vectors, embedded.dim)
    item_mf = np.zeros((len(item_ids), items.shape[1]), np.float32)
    item_mf[in_window] = items
    warm_all = np.zeros(len(item_ids), bool)
    warm_all[in_window] = warm
    user_factors, item_factors = hybrid_factors(users, item_mf, warm_all, vectors, content_map, profiles, weight)

    version = model_version(model, interval.run_date)
    n_cold_text = int((~warm_all & (np.abs(vectors).sum(axis=1) > 0)).sum())
    params = {"algorithm": "hybrid", "encoder": embedded.encoder, "encoder_version": embedded.encoder_version,
              "content_dim": embedded.dim, "mf_factors": int(users.shape[1]), "profile_weight": weight,
              "ridge": settings.content.ridge, "half_life_days": settings.content.half_life_days,
              "als": {"factors": settings.als.factors, "alpha": settings.als.alpha,
                      "regularization": settings.als.regularization, "iterations": settings.als.iterations},
              "items_outside_window": int((~in_window).sum()), "cold_items_with_text": n_cold_text,
              "map_fitted_on": int((warm & (np.abs(window_vectors).sum(axis=1) > 0)).sum()),
              "train_window_days": settings.train_window_days, "search": search, **feedback_params(settings)}
    meta = {"model": model, "model_version": version, "params": params,
            "encoder_version": embedded.encoder_version, "profile_weight": weight,
            "mf_factors": int(users.shape[1]),
            "data_interval": [interval.start.isoformat(), interval.end.isoformat()],
            "train_window_days": settings.train_window_days,
            "positive_event_types": list(settings.positive_types)}
    fitted = HybridModel(user_factors, item_factors, dataset.user_ids, item_ids, meta, content_map)
    n_users = int((np.diff(matrix.indptr) > 0).sum())
    npz = save_and_register(settings, interval, fitted, "hybrid", int(positives.sum()), n_users, params,
                            triggered_by)
    seconds = time.perf_counter() - started
    logger.info("trained %s on %d positive events of %d users, %d items (%d outside the window, %d cold with text), "
                "profile weight %s, in %.2fs", version, int(positives.sum()), n_users, len(item_ids),
                params["items_outside_window"], n_cold_text, weight, seconds)
    return TrainManifest(version, str(npz), n_users, len(item_ids), int(positives.sum()), seconds)


def vectors_for(item_ids: np.ndarray, vector_ids: np.ndarray, vectors: np.ndarray, dim: int) -> np.ndarray:
    """(len(item_ids), dim) content vectors of `item_ids`; zero rows for items without one."""
    out = np.zeros((len(item_ids), dim), np.float32)
    if len(vector_ids):
        pos = np.minimum(np.searchsorted(vector_ids, item_ids), len(vector_ids) - 1)
        found = vector_ids[pos] == item_ids
        out[found] = vectors[pos[found]]
    return out


def _fit(settings: Settings, dataset: WindowDataset, matrix, mask: np.ndarray,
         vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ALS on `matrix`, the ridge map on its warm items with text, the profiles of the events of
    `mask`: (user MF (n_users, f), item MF (n_items, f), profiles, W, warm (n_items,))."""
    users, items = fit_als(matrix, settings.als)
    warm = np.asarray((matrix > 0).sum(axis=0)).ravel() > 0
    with_text = warm & (np.abs(vectors).sum(axis=1) > 0)
    content_map = ridge_map(vectors[with_text], items[with_text], settings.content.ridge)
    idx = np.flatnonzero(mask)
    profiles = content_profiles(dataset.user_index[idx], dataset.item_index[idx], dataset.ts[idx],
                                len(dataset.user_ids), vectors, settings.content.half_life_days)
    return users, items, profiles, content_map, warm


def hybrid_split_factors(settings: Settings, dataset: WindowDataset, split: Split, vectors: np.ndarray,
                         weight: float, matrix: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(user factors, item factors) of the hybrid fitted on `split`'s training part, over the window's
    items (`vectors`: their content vectors), with profile weight `weight`; `matrix` is that part's
    confidence matrix for the MF fit (default: `split.train`)."""
    train = split.train if matrix is None else matrix
    users, items, profiles, content_map, warm = _fit(settings, dataset, train, split.train_mask, vectors)
    return hybrid_factors(users, items, warm, vectors, content_map, profiles, weight)


def search_weight(settings: Settings, dataset: WindowDataset, interval: DataInterval,
                  vectors: np.ndarray) -> tuple[float, dict[str, Any]]:
    """The profile weight with the best recall@K (then NDCG@K) on the validation split, and a record."""
    weights = settings.content.profile_weights
    if len(weights) == 1:
        return float(weights[0]), {}
    positives = dataset.positive_mask(settings.positive_types)
    split = temporal_split(dataset, settings.positive_types, interval.end, settings.holdout_last_n, offset=1,
                           holdout=settings.holdout, strengths=mf_strengths(settings, dataset, positives, interval.end))
    if len(split.users) == 0 or split.train.nnz == 0:
        logger.info("hybrid search skipped: no validation user")
        return float(weights[0]), {"skipped": "no validation user"}
    started = time.perf_counter()
    users, items, profiles, content_map, warm = _fit(settings, dataset, split.train, split.train_mask, vectors)
    k, results = settings.k, []
    for weight in weights:
        x, y = hybrid_factors(users, items, warm, vectors, content_map, profiles, weight)
        figures = ranking_metrics(top_k_factors(x, y, split.train, k, users=split.users), split.relevant,
                                  split.users, k)
        results.append({"profile_weight": float(weight), f"recall@{k}": round(figures["recall"], 5),
                        f"ndcg@{k}": round(figures["ndcg"], 5)})
    best = max(results, key=lambda r: (r[f"recall@{k}"], r[f"ndcg@{k}"]))
    record = {"chosen": {"profile_weight": best["profile_weight"]}, "grid": results,
              "validation_users": len(split.users), "seconds": round(time.perf_counter() - started, 2)}
    logger.info("hybrid search over %d profile weights on %d validation users: %s", len(weights),
                len(split.users), record)
    return best["profile_weight"], record
