"""Train stage: fit an MF model on the extracted window and register it.

`train_als` fits implicit ALS: it first picks factors, alpha and
regularisation by a small grid search on a validation split taken from the
end of the window *before* the hold-out (`recsys.metrics.ranking.temporal_split`
with offset 1), then fits the whole window with the winner. `train_bpr` fits
BPR. Both register the version under the model name the catalogue gives them
(`recsys.catalogue`), warm-start from the previous published model's factors
for the users and items it knew (fewer iterations), and record the chosen
values in `model_runs.params`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from recsys.config import ALSConfig, Settings
from recsys.dataset import WindowDataset
from recsys.db.engine import load_sql, raw_connection
from recsys.errors import EmptyWindowError
from recsys.metrics.ranking import ranking_metrics, temporal_split
from recsys.interval import DataInterval
from recsys.models.mf.als import fit_als
from recsys.models.mf.bpr import fit_bpr
from recsys.models.factors import FactorModel
from recsys.models.saved import SavedModel
from recsys.models.mf.warm import warm_start_factors
from recsys.db.registry import model_version, register_trained
from recsys.models.topk import top_k_factors, top_k_popular

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class TrainManifest:
    model_version: str
    artifact_path: str
    n_users: int
    n_items: int
    n_interactions: int
    seconds: float


def train_als(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str = "manual", *,
              model: str) -> TrainManifest:
    """Fit implicit ALS on every positive event of the window and record it in model_runs as `model`.

    Raises:
        EmptyWindowError: the window holds no positive event.
        ModelFitError: the fit produced NaN or infinite factors (nothing is saved).
    """
    dataset = WindowDataset.load(Path(dataset_path))
    config, search = settings.als, {}
    if settings.search.enabled:
        config, search = search_als(settings, dataset, interval)
    return _train(settings, interval, dataset, triggered_by, model, config, search,
                  lambda m, c, init: fit_als(m, c, init), n_columns=lambda c: c.factors)


def train_bpr(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str = "manual", *,
              model: str) -> TrainManifest:
    """Fit BPR on every positive event of the window and record it in model_runs as `model`."""
    dataset = WindowDataset.load(Path(dataset_path))
    return _train(settings, interval, dataset, triggered_by, model, settings.bpr, {},
                  lambda m, c, init: fit_bpr(m, c, init), n_columns=lambda c: c.factors + 1)


def _train(settings: Settings, interval: DataInterval, dataset: WindowDataset, triggered_by: str, model: str,
           config: Any, search: dict[str, Any], fit: Callable, n_columns: Callable[[Any], int]) -> TrainManifest:
    started = time.perf_counter()
    positives = dataset.positive_mask(settings.positive_types)
    if not positives.any():
        raise EmptyWindowError(f"no {'/'.join(settings.positive_types)} events in the training window")
    matrix = dataset.user_item_matrix(positives, mf_strengths(settings, dataset, positives))
    factors_used = min(config.factors, *matrix.shape)
    initial, warm = None, {}
    if settings.warm_start:
        initial, warm = _warm_start(settings, model, interval.run_date, dataset,
                                    n_columns(dataclasses.replace(config, factors=factors_used)))
        if initial is not None:
            config = dataclasses.replace(config, iterations=min(config.iterations, config.warm_iterations))
    user_factors, item_factors = fit(matrix, config, initial)
    version = model_version(model, interval.run_date)
    params = {**dataclasses.asdict(config), "factors_used": factors_used,
              "train_window_days": settings.train_window_days, "search": search, "warm_start": warm,
              **feedback_params(settings)}
    meta = {
        "model": model, "model_version": version, "config": dataclasses.asdict(config), "params": params,
        "data_interval": [interval.start.isoformat(), interval.end.isoformat()],
        "train_window_days": settings.train_window_days,
        "positive_event_types": list(settings.positive_types),
    }
    fitted = FactorModel(user_factors, item_factors, dataset.user_ids, dataset.item_ids, meta)
    n_users = int((np.diff(matrix.indptr) > 0).sum())
    npz = save_and_register(settings, interval, fitted, "mf", int(positives.sum()), n_users, params, triggered_by)
    seconds = time.perf_counter() - started
    logger.info("trained %s on %d positive events of %d users in %.2fs (warm start: %s)", version,
                int(positives.sum()), n_users, seconds, warm or "no")
    return TrainManifest(version, str(npz), n_users, len(dataset.item_ids), int(positives.sum()), seconds)


def mf_strengths(settings: Settings, dataset: WindowDataset, positives: np.ndarray) -> np.ndarray | None:
    """(n_events,) each event's share of its pair's MF input under `settings.mf_confidence`; None = counts.

    Raises:
        DataValidationError: `value` mode and a positive event with a negative value.
    """
    return dataset.strengths(settings.mf_confidence, settings.type_weights, settings.source_table, positives)


def feedback_params(settings: Settings) -> dict[str, Any]:
    """What the MF input was made of, for `model_runs.params`: the positive types, their weights and the
    confidence mode (the weights count only in the `weight` and `value` modes)."""
    weights = settings.type_weights
    return {"positive_event_types": list(settings.positive_types), "confidence": settings.mf_confidence,
            "event_weights": {name: weights[name] for name in settings.positive_types}}


def save_and_register(settings: Settings, interval: DataInterval, fitted: SavedModel, kind: str,
                      n_interactions: int, n_users: int, params: dict[str, Any], triggered_by: str) -> Path:
    """Save a fitted model (factors or item-item) under `<artifact_dir>/<as-of date>/<model>/` (its name from
    `fitted.meta["model"]`) and register its version in model_runs; returns the npz path."""
    model, version = fitted.meta["model"], fitted.meta["model_version"]
    npz, digest = fitted.save(Path(settings.artifact_dir) / interval.run_date.isoformat() / model)
    register_trained(settings, {
        "model": model, "model_kind": kind, "model_version": version, "run_date": interval.run_date,
        "data_interval_start": interval.start, "data_interval_end": interval.end,
        "train_window_start": interval.train_window_start(settings.train_window_days),
        "n_interactions": n_interactions, "n_users": n_users, "n_items": len(fitted.item_ids),
        "params": params, "triggered_by": triggered_by, "artifact_path": str(npz), "artifact_sha256": digest,
    })
    return npz


def _warm_start(settings: Settings, model: str, run_date: date, dataset: WindowDataset,
                n_columns: int) -> tuple[tuple[np.ndarray, np.ndarray] | None, dict[str, Any]]:
    """Initial factors from the newest published `model` before `run_date`, if any and compatible."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("train/mf_warm_start_source"), {"model": model, "run_date": run_date})
        row = cur.fetchone()
    if row is None:
        return None, {}
    version, path, digest = row
    if not Path(path).exists():
        logger.warning("warm start skipped: artifact %s of %s is gone", path, version)
        return None, {}
    previous = FactorModel.load(Path(path), expected_sha256=digest)  # a changed file raises: never start from it
    aligned = warm_start_factors(previous, dataset.user_ids, dataset.item_ids, n_columns)
    if aligned is None:
        logger.info("warm start skipped: %s has %d factor columns, tonight's model %d", version,
                    previous.user_factors.shape[1], n_columns)
        return None, {}
    initial, counts = aligned
    return initial, {"from": version, **counts}


def search_als(settings: Settings, dataset: WindowDataset, interval: DataInterval) -> tuple[ALSConfig, dict[str, Any]]:
    """Grid search of ALS factors x alpha x regularisation on the validation split.

    The validation split is the day (or the last N events per user) before the
    hold-out, trained on everything before it, so the hold-out figures of the
    evaluate stage stay untouched by the choice. Ranks by recall@K, then NDCG@K;
    returns the winning config (with the configured iterations) and a record of
    the search. With no validation user, the configured values stand.
    """
    grid = settings.search
    positives = dataset.positive_mask(settings.positive_types)
    split = temporal_split(dataset, settings.positive_types, interval.end, settings.holdout_last_n, offset=1,
                           holdout=settings.holdout, strengths=mf_strengths(settings, dataset, positives))
    if len(split.users) == 0 or split.train.nnz == 0:
        logger.info("hyper-parameter search skipped: no validation user")
        return settings.als, {"skipped": "no validation user"}
    started = time.perf_counter()
    k = settings.k
    results = []
    for factors in grid.factors:
        for alpha in grid.alphas:
            for reg in grid.regularizations:
                candidate = dataclasses.replace(settings.als, factors=factors, alpha=alpha, regularization=reg,
                                                iterations=grid.iterations)
                users, items = fit_als(split.train, candidate)
                m = _validation_metrics(users, items, split.train, split, k)
                results.append({"factors": factors, "alpha": alpha, "regularization": reg, **m})
    best = max(results, key=lambda r: (r["recall"], r["ndcg"]))
    popularity = np.asarray(split.train.sum(axis=0)).ravel()
    pop = ranking_metrics(top_k_popular(popularity, split.train, k, split.users), split.relevant, split.users, k)
    chosen = dataclasses.replace(settings.als, factors=best["factors"], alpha=best["alpha"],
                                 regularization=best["regularization"])
    record = {"chosen": {key: best[key] for key in ("factors", "alpha", "regularization")},
              f"validation_recall@{k}": best["recall"], f"validation_ndcg@{k}": best["ndcg"],
              f"validation_popularity_recall@{k}": pop["recall"], "validation_users": len(split.users),
              "grid_points": len(results), "seconds": round(time.perf_counter() - started, 2)}
    logger.info("ALS search over %d points on %d validation users: %s", len(results), len(split.users), record)
    return chosen, record


def _validation_metrics(users: np.ndarray, items: np.ndarray, train: sp.csr_matrix, split: Any, k: int) -> dict[str, float]:
    top = top_k_factors(users, items, train, k, users=split.users)
    figures = ranking_metrics(top, split.relevant, split.users, k)
    return {"recall": figures["recall"], "ndcg": figures["ndcg"]}
