"""Evaluate stage: the model against a popularity baseline on a temporal hold-out.

The hold-out is the last day of the training window. A model with the
published model's configuration is fitted on the days before it, then both it
and the popularity baseline rank items for the users who had positive events
before and a new positive item on the hold-out day. Figures go to
`eval_metrics` under the published model's version.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.evaluate import ranking_metrics
from recsys.interval import DataInterval
from recsys.models.als import fit_als
from recsys.registry import write_metrics
from recsys.score import top_k_factors, top_k_popular

logger = logging.getLogger(__name__)


def evaluate_mf(settings: Settings, interval: DataInterval, dataset_path: str, version: str) -> dict[str, float]:
    """Fit on the window minus its last day, score that day; returns the headline metrics."""
    started = time.perf_counter()
    dataset = WindowDataset.load(Path(dataset_path))
    cutoff = (interval.end - timedelta(days=1)).timestamp()
    train = dataset.user_item_matrix(dataset.positive_mask(settings.positive_event_types, before_ts=cutoff))
    later = dataset.user_item_matrix(dataset.positive_mask(settings.positive_event_types, from_ts=cutoff))
    relevant = later - later.multiply(train > 0)  # only items new to the user count
    relevant.eliminate_zeros()
    relevant.data[:] = 1.0
    has_history = np.diff(train.indptr) > 0
    users = np.flatnonzero(has_history & (np.diff(relevant.indptr) > 0))
    if len(users) == 0:
        logger.info("no user with history has a new positive item on the hold-out day: no metrics for %s", version)
        return {}
    k = settings.k
    user_factors, item_factors = fit_als(train, settings.als)
    model_top = top_k_factors(user_factors, item_factors, train, k, users=users)
    popularity = np.asarray(train.sum(axis=0)).ravel()
    popular_top = top_k_popular(popularity, train, k, users)
    figures = {"model": ranking_metrics(model_top, relevant, users, k),
               "popularity": ranking_metrics(popular_top, relevant, users, k)}
    rows = [{"subject": subject, "metric": metric, "k": k, "value": value, "n_users": len(users)}
            for subject, metrics in figures.items() for metric, value in metrics.items()]
    summary = {f"{metric}@{k}" if subject == "model" else f"{subject}_{metric}@{k}": value
               for subject, metrics in figures.items() for metric, value in metrics.items()}
    summary["holdout_users"] = len(users)
    write_metrics(settings, version, rows, summary)
    logger.info("evaluated %s on %d hold-out users in %.2fs", version, len(users), time.perf_counter() - started)
    return summary
