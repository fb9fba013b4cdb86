"""Train stage: fit an MF model on the extracted window and register it.

`train_als` fits implicit ALS: it first picks factors, alpha, regularisation,
its frequency exponent and the unobserved weight by a coarse-to-fine search
(`search_als`) on a validation split taken from the end of the window *before*
the hold-out (`recsys.metrics.ranking.temporal_split` with offset 1), then fits
the whole window with the winner. Its input is each pair's confidence
(`mf_strengths`: counts, type weights or values, optionally time-decayed). `train_bpr` fits
BPR. Both register the version under the model name the catalogue gives them
(`recsys.catalogue`), warm-start from the previous published model's factors
for the users and items it knew (fewer iterations), and record the chosen
values in `model_runs.params`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime
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
    if settings.mf_backend == "spark":
        return _train_on_spark(settings, interval, dataset, triggered_by, model)
    config, search = settings.als, {}
    if settings.search.enabled:
        config, search = search_als(settings, dataset, interval)
    return _train(settings, interval, dataset, triggered_by, model, config, search,
                  lambda m, c, init: fit_als(m, c, init), n_columns=lambda c: c.factors)


def _train_on_spark(settings: Settings, interval: DataInterval, dataset: WindowDataset, triggered_by: str,
                    model: str) -> TrainManifest:
    """Register the factors the night's Spark job fitted (recsys.spark): the configured ALS values, no
    search and no warm start (the job fits from its seed on the cluster)."""
    from recsys.spark.backend import job_result, load_factors, output_dir

    started = time.perf_counter()
    output = output_dir(settings, interval, model)
    job = job_result(output)
    positives = dataset.positive_mask(settings.positive_types)
    if not positives.any():
        raise EmptyWindowError(f"no {'/'.join(settings.positive_types)} events in the training window")
    user_factors, item_factors = load_factors(output, dataset)
    spark_job = json.loads((output.parent / "job.json").read_text())
    config = dataclasses.replace(settings.als, factors=user_factors.shape[1])
    version = model_version(model, interval.run_date)
    n_users = int((np.diff(dataset.user_item_matrix(positives).indptr) > 0).sum())
    params = {**dataclasses.asdict(config), "factors_used": user_factors.shape[1], "backend": "spark",
              "spark": {"reg_param": spark_job["als"]["reg_param"], "seconds": job["seconds"],
                        "master": job["master"], "spark_version": job["spark_version"], "n_pairs": job["n_pairs"]},
              "train_window_days": settings.train_window_days, "search": {}, "warm_start": {},
              **feedback_params(settings)}
    meta = {
        "model": model, "model_version": version, "config": dataclasses.asdict(config), "params": params,
        "data_interval": [interval.start.isoformat(), interval.end.isoformat()],
        "train_window_days": settings.train_window_days,
        "positive_event_types": list(settings.positive_types), "spark_output": str(output),
    }
    fitted = FactorModel(user_factors, item_factors, dataset.user_ids, dataset.item_ids, meta)
    npz = save_and_register(settings, interval, fitted, "mf", int(positives.sum()), n_users, params, triggered_by)
    logger.info("registered %s from the Spark job (%s, fit %.1fs, top-K %.1fs)", version, job["master"],
                job["seconds"].get("fit", 0.0), job["seconds"].get("top_k", 0.0))
    return TrainManifest(version, str(npz), n_users, len(dataset.item_ids), int(positives.sum()),
                         time.perf_counter() - started + sum(job["seconds"].values()))


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
    matrix = dataset.user_item_matrix(positives, mf_strengths(settings, dataset, positives, interval.end))
    factors_used = min(config.factors, *matrix.shape)
    initial, warm = None, {}
    if settings.warm_start:
        initial, warm = _warm_start(settings, model, interval.run_date, dataset,
                                    n_columns(dataclasses.replace(config, factors=factors_used)))
        if initial is not None:
            config = dataclasses.replace(config, iterations=min(config.iterations, config.warm_iterations))
    user_factors, item_factors = fit(matrix, config, initial)
    version = model_version(model, interval.run_date)
    params = {**dataclasses.asdict(config), "factors_used": factors_used, "backend": "torch",
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


def mf_strengths(settings: Settings, dataset: WindowDataset, positives: np.ndarray, as_of: datetime,
                 half_life_days: float | None = None) -> np.ndarray | None:
    """(n_events,) each event's share of its pair's MF input; None = counts.

    The share is 1, the type's weight or the event's value (`settings.mf_confidence`),
    times 2 ** (-age / half-life) when the half-life (`half_life_days`, by default
    `settings.mf_decay_half_life_days`) is > 0, the age in days at `as_of`, the window's
    end: measured from the as-of date and not from the clock, a backfill of a night
    gives the same model whenever it runs. An event after `as_of` (none is in a
    window) would count as age 0.

    Raises:
        DataValidationError: `value` mode and a positive event with a negative value.
    """
    strengths = dataset.strengths(settings.mf_confidence, settings.type_weights, settings.source_table, positives)
    half_life = settings.mf_decay_half_life_days if half_life_days is None else half_life_days
    if half_life <= 0:
        return strengths
    age_days = np.maximum(as_of.timestamp() - dataset.ts.astype(np.float64), 0.0) / 86_400.0
    decay = np.exp2(-age_days / half_life)
    return decay if strengths is None else strengths * decay


def feedback_params(settings: Settings) -> dict[str, Any]:
    """What the MF input was made of, for `model_runs.params`: the positive types, their weights, the
    confidence mode (the weights count only in the `weight` and `value` modes) and the decay's
    half-life in days (0: none; the ages are taken at the data interval's end)."""
    weights = settings.type_weights
    return {"positive_event_types": list(settings.positive_types), "confidence": settings.mf_confidence,
            "event_weights": {name: weights[name] for name in settings.positive_types},
            "decay_half_life_days": settings.mf_decay_half_life_days}


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


SEARCHED = ("factors", "alpha", "regularization", "reg_exponent", "unobserved_weight")


def search_als(settings: Settings, dataset: WindowDataset, interval: DataInterval) -> tuple[ALSConfig, dict[str, Any]]:
    """Coarse-to-fine search of ALS's hyper-parameters on the validation split (`SearchConfig`).

    The validation split is the day (or the last N events per user) before the
    hold-out, trained on everything before it, so the hold-out figures of the
    evaluate stage stay untouched by the choice. Every point of alphas x
    regularisations x exponents x unobserved weights is fitted with the first factor
    count, then the `refine_top` best with each other factor count (all of them with
    `refine_top` 0). A grid regularisation is a typical row's L2 weight: with an
    exponent nu > 0 the fitted one is it / s ** nu (`regularization_scale`). Ranks
    by NDCG@K, then recall@K (`_rank`); returns the winning config (with the configured
    iterations) and a record of the search. With no validation user, the configured
    values stand.
    """
    grid = settings.search
    positives = dataset.positive_mask(settings.positive_types)
    split = temporal_split(dataset, settings.positive_types, interval.end, settings.holdout_last_n, offset=1,
                           holdout=settings.holdout, strengths=mf_strengths(settings, dataset, positives, interval.end))
    if len(split.users) == 0 or split.train.nnz == 0:
        logger.info("hyper-parameter search skipped: no validation user")
        return settings.als, {"skipped": "no validation user"}
    started = time.perf_counter()
    k = settings.k
    results: list[dict[str, Any]] = []

    def fit_point(point: dict[str, Any]) -> dict[str, Any]:
        candidate = dataclasses.replace(settings.als, **{key: point[key] for key in SEARCHED},
                                        iterations=grid.iterations)
        users, items = fit_als(split.train, candidate)
        result = {**point, **_validation_metrics(users, items, split.train, split, k)}
        results.append(result)
        return result

    coarse = []
    for a0 in grid.unobserved_weights:
        scale = regularization_scale(split.train, a0)
        for nu in grid.reg_exponents:
            for alpha in grid.alphas:
                for reg in grid.regularizations:
                    coarse.append({"factors": grid.factors[0], "alpha": alpha, "regularization": reg / scale ** nu,
                                   "reg_exponent": nu, "unobserved_weight": a0, "grid_regularization": reg})
    coarse_results = [fit_point(point) for point in coarse]
    ranked = sorted(coarse_results, key=_rank, reverse=True)
    finalists = ranked if grid.refine_top == 0 else ranked[:grid.refine_top]
    for factors in grid.factors[1:]:
        for finalist in finalists:
            fit_point({**{key: finalist[key] for key in SEARCHED}, "factors": factors,
                       "grid_regularization": finalist["grid_regularization"]})
    best = max(results, key=_rank)
    popularity = np.asarray(split.train.sum(axis=0)).ravel()
    pop = ranking_metrics(top_k_popular(popularity, split.train, k, split.users), split.relevant, split.users, k)
    chosen = dataclasses.replace(settings.als, **{key: best[key] for key in SEARCHED})
    record = {"chosen": {key: best[key] for key in (*SEARCHED, "grid_regularization")},
              f"validation_recall@{k}": best["recall"], f"validation_ndcg@{k}": best["ndcg"],
              f"validation_popularity_recall@{k}": pop["recall"], "validation_users": len(split.users),
              "grid_points": len(results), "coarse_points": len(coarse),
              "seconds": round(time.perf_counter() - started, 2)}
    logger.info("ALS search over %d points on %d validation users: %s", len(results), len(split.users), record)
    return chosen, record


def _rank(result: dict[str, Any]) -> tuple[float, float]:
    # NDCG first: it is what the gate and the serving alias compare. By recall first, the 211 validation
    # users of MovieLens 100K chose points whose hold-out NDCG@10 was lower (docs/ials.md)
    return result["ndcg"], result["recall"]


def regularization_scale(matrix: sp.csr_matrix, unobserved_weight: float) -> float:
    """s, the typical base of the frequency-scaled L2 weight: the geometric mean of the users' mean
    (n_u + alpha_0 n_items) and the items' mean (n_i + alpha_0 n_users), at least 1. A grid
    regularisation r with exponent nu is fitted as r / s ** nu, so that its rows' weights
    are about r whatever nu."""
    n_users, n_items = matrix.shape
    user_mean = matrix.nnz / n_users + unobserved_weight * n_items
    item_mean = matrix.nnz / n_items + unobserved_weight * n_users
    return max(1.0, float(np.sqrt(user_mean * item_mean)))


def _validation_metrics(users: np.ndarray, items: np.ndarray, train: sp.csr_matrix, split: Any, k: int) -> dict[str, float]:
    top = top_k_factors(users, items, train, k, users=split.users)
    figures = ranking_metrics(top, split.relevant, split.users, k)
    return {"recall": figures["recall"], "ndcg": figures["ndcg"]}
