"""Evaluate stage: the model against the popularity and trending baselines on a temporal hold-out.

The hold-out is the last day of the training window (`RECSYS_HOLDOUT=last_day`),
each user's own last active day (`user_last_day`), or each user's last N
positive events (`RECSYS_HOLDOUT_LAST_N`). A model with the version's own
configuration (the values its search chose, read from the model file) is
fitted on the events before the hold-out, then it and the popularity and trending
baselines (`recsys.models.baselines`, fitted on the same events) rank items for the users who had positive events before and a new positive
item in the hold-out. With the window's-last-day hold-out the live model (the
champion, trained on data before the hold-out day) is scored on the same
users under subject `champion`, for the gate (`recsys.stages.gate`). Item-item models
(item-kNN, EASE) are refitted on the same events with the hyper-parameters their search
chose and scored as they are served (`recsys.stages.train_item_item.item_item_top`); they
have no item factors, so their lists' diversity is not measured. The hybrid is refitted on the
same events with its own encoder version and profile weight and ranks the window's items like
the others (an item first clicked on the hold-out day is in the window, and only the hybrid can
place it from its text). Every metric of
`recsys.metrics.ranking` goes to `eval_metrics` under the version; the headline
ones to `model_runs.metrics`; each hold-out user's accuracy metrics, for every subject,
to `holdout_users.npz` beside the model file (`recsys.holdout_users`), for the gate's
paired comparison and baseline floor.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import datetime
from pathlib import Path

import numpy as np

import scipy.sparse as sp

from recsys import holdout_users
from recsys.config import ALSConfig, BPRConfig, Settings
from recsys.dataset import WindowDataset
from recsys.db.engine import load_sql, raw_connection
from recsys.db.registry import get_run, write_metrics
from recsys.interval import DataInterval
from recsys.metrics.ranking import Split, accuracy_per_user, ranking_metrics, temporal_split
from recsys.models.baselines import as_factors
from recsys.models.item_item.model import ItemItemModel
from recsys.models.mf.als import fit_als
from recsys.models.mf.bpr import fit_bpr
from recsys.models.mf.warm import align_factors
from recsys.models.saved import load_model
from recsys.models.topk import TopK, top_k_factors, top_k_popular
from recsys.stages.train import mf_strengths
from recsys.stages.train_baseline import item_scores
from recsys.stages.train_item_item import ALGORITHMS as ITEM_ITEM_ALGORITHMS
from recsys.stages.train_item_item import fit_item_item, grid, item_item_top

logger = logging.getLogger(__name__)


HOLDOUT_ALGORITHMS = ("als", "bpr", "popularity", "trending", "hybrid", *ITEM_ITEM_ALGORITHMS)


def evaluate_holdout(settings: Settings, interval: DataInterval, dataset_path: str, version: str,
                     algorithm: str = "als") -> dict[str, float]:
    """Fit `algorithm` (HOLDOUT_ALGORITHMS) on the window minus its hold-out and score the hold-out
    beside the popularity and trending baselines (and the live model); returns the headline metrics."""
    if algorithm not in HOLDOUT_ALGORITHMS:
        raise ValueError(f"evaluate_holdout: algorithm must be one of {HOLDOUT_ALGORITHMS}, got {algorithm!r}")
    started = time.perf_counter()
    dataset = WindowDataset.load(Path(dataset_path))
    split = temporal_split(dataset, settings.positive_types, interval.end, settings.holdout_last_n,
                           holdout=settings.holdout)
    run = get_run(settings, version)
    holdout_path = holdout_users.path_for(run.artifact_path)
    if len(split.users) == 0:
        holdout_path.unlink(missing_ok=True)  # an earlier run's figures would not be this night's
        logger.info("no user with history has a new positive item in the hold-out: no metrics for %s", version)
        return {}
    meta_path = Path(run.artifact_path).with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    k = settings.k
    if algorithm in ITEM_ITEM_ALGORITHMS:
        # no item factors: the lists' diversity (a cosine of factors) is not measured for these
        item_factors = None
        model_top = item_item_top(settings, _fit_item_item_on_split(settings, algorithm, meta, split), split.train,
                                  split.users)
    else:
        user_factors, item_factors = _fit_on_split(settings, algorithm, meta, dataset, split)
        model_top = top_k_factors(user_factors, item_factors, split.train, k, users=split.users,
                                  batch_users=settings.score_batch_users)
    figures = {"model": ranking_metrics(model_top, split.relevant, split.users, k, split.train, item_factors)}
    per_user = {"model": accuracy_per_user(model_top, split.relevant, split.users, k)}
    for baseline in holdout_users.BASELINE_SUBJECTS:  # what a team gets for free, beside every model
        scores = item_scores(baseline, dataset, split.train_mask, settings.trending_half_life_days)
        top = top_k_popular(scores, split.train, k, split.users)
        figures[baseline] = ranking_metrics(top, split.relevant, split.users, k, split.train, item_factors)
        per_user[baseline] = accuracy_per_user(top, split.relevant, split.users, k)
    if settings.holdout_last_n <= 0 and settings.holdout == "last_day":  # the live model never saw that day
        champion = _champion_top(settings, run.model, version, dataset, split.train, split.users, k)
        if champion is not None:
            figures["champion"] = ranking_metrics(champion[0], split.relevant, split.users, k, split.train, champion[1])
            per_user["champion"] = accuracy_per_user(champion[0], split.relevant, split.users, k)
    # before eval_metrics: the gate reads both, and a re-run replaces both
    holdout_users.save(holdout_path, holdout_users.HoldoutUsers(version, k, dataset.user_ids[split.users], per_user))
    rows = [{"subject": subject, "metric": metric, "k": k, "value": value, "n_users": len(split.users)}
            for subject, metrics in figures.items() for metric, value in metrics.items()]
    summary = {f"{metric}@{k}" if subject == "model" else f"{subject}_{metric}@{k}": value
               for subject, metrics in figures.items() for metric, value in metrics.items()
               if metric in ("recall", "ndcg", "precision", "map", "hit_rate", "coverage")}
    summary["holdout_users"] = len(split.users)
    write_metrics(settings, version, rows, summary)
    logger.info("evaluated %s on %d hold-out users in %.2fs: recall@%d %.4f (popularity %.4f)", version,
                len(split.users), time.perf_counter() - started, k, figures["model"]["recall"],
                figures["popularity"]["recall"])
    return summary


def _fit_on_split(settings: Settings, algorithm: str, meta: dict, dataset: WindowDataset,
                  split: Split) -> tuple[np.ndarray, np.ndarray]:
    """User and item factors of `algorithm` fitted on the split's training part, with the
    version's own configuration (the values its search chose, read from the model file)."""
    if algorithm == "bpr":
        config = dataclasses.replace(settings.bpr, **_known(BPRConfig, meta.get("config", {})))
        return fit_bpr(split.train, config)
    if algorithm == "hybrid":
        from recsys.stages.embed import load_vectors
        from recsys.stages.train_hybrid import hybrid_split_factors, vectors_for

        # the version's own encoder space and profile weight; ranked over the window's items, as the others
        ids, vectors = load_vectors(settings, meta["encoder_version"], item_ids=dataset.item_ids)
        window = vectors_for(dataset.item_ids, ids, vectors, vectors.shape[1] if len(ids) else 1)
        return hybrid_split_factors(settings, dataset, split, window, float(meta.get("profile_weight", 0.0)))
    if algorithm == "als":
        config = dataclasses.replace(settings.als, **_known(ALSConfig, meta.get("config", {})))
        # the nightly fit may have been a short warm-started one: the hold-out model starts cold
        config = dataclasses.replace(config, iterations=max(config.iterations, settings.als.iterations))
        return fit_als(_als_train(settings, meta, dataset, split), config)
    half_life = meta.get("params", {}).get("half_life_days", settings.trending_half_life_days)
    return as_factors(item_scores(algorithm, dataset, split.train_mask, half_life), len(dataset.user_ids))


def _als_train(settings: Settings, meta: dict, dataset: WindowDataset, split: Split) -> sp.csr_matrix:
    """The split's training part as the version's ALS saw its window: each pair's confidence (type weights,
    values, the time decay with the version's recorded half-life, ages at its data interval's end), so the
    hold-out scores the model that was trained and not a count-fed one; the counts when the confidence is
    the count and nothing decays."""
    params = meta.get("params", {})
    half_life = float(params.get("decay_half_life_days", settings.mf_decay_half_life_days))
    interval = meta.get("data_interval")
    if settings.mf_confidence == "count" and (half_life <= 0 or not interval):
        return split.train
    as_of = datetime.fromisoformat(interval[1]) if interval else None
    positives = dataset.positive_mask(settings.positive_types)
    strengths = mf_strengths(settings, dataset, positives, as_of, half_life if as_of is not None else 0.0)
    return dataset.user_item_matrix(split.train_mask, strengths)


def _fit_item_item_on_split(settings: Settings, algorithm: str, meta: dict,
                            split: Split) -> sp.csr_matrix | np.ndarray:
    """The item-item matrix of `algorithm` fitted on the split's training part with the
    version's own hyper-parameters (the point its search chose, read from the model file)."""
    chosen = meta.get("params", {})
    point = {key: chosen.get(key, value) for key, value in grid(settings, algorithm)[0].items()}
    return fit_item_item(settings, algorithm, split.train, point)


def _known(cls: type, values: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in values.items() if key in names}


def _champion_top(settings: Settings, model: str, version: str, dataset: WindowDataset, train: sp.csr_matrix,
                  users: np.ndarray, k: int) -> tuple[TopK, np.ndarray | None] | None:
    """Top-K of the live model for `users` on tonight's id maps, and its item factors (None for an
    item-item model); None without a live model.

    Items the live model never saw are excluded from its lists (masked like
    seen items); users a factor model never saw get all-zero scores (an item-item
    model scores every user from her history).
    """
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("evaluate/champion_source"), {"model": model, "model_version": version})
        row = cur.fetchone()
    if row is None or not Path(row[2]).exists():
        return None
    live = load_model(Path(row[2]), expected_sha256=row[3])
    if isinstance(live, ItemItemModel):
        similarity, known = live.aligned(dataset.item_ids)
        top = item_item_top(settings, similarity, train, users, exclude_items=np.flatnonzero(~known))
        logger.info("scored the champion %s on %d hold-out users", row[0], len(users))
        return top, None
    user_factors, _ = align_factors(live.user_ids, live.user_factors, dataset.user_ids)
    item_factors, _ = align_factors(live.item_ids, live.item_factors, dataset.item_ids)
    unknown_items = np.flatnonzero(np.isnan(item_factors[:, 0]))
    user_factors, item_factors = np.nan_to_num(user_factors), np.nan_to_num(item_factors)
    mask = train
    if len(unknown_items):
        cols = np.tile(unknown_items, len(users))
        rows = np.repeat(users, len(unknown_items))
        extra = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=train.shape)
        mask = (train + extra).tocsr()
    top = top_k_factors(user_factors, item_factors, mask, k, users=users, batch_users=settings.score_batch_users)
    logger.info("scored the champion %s on %d hold-out users", row[0], len(users))
    return top, item_factors
