"""Train stage of the baselines (`recsys.models.baselines`): the window's most popular
items, or the most popular with recent events weighing more. Saved and registered like a
factor model (kind `baseline`), so they are evaluated, gated, scored and published like
any model of the catalogue, and serve when chosen."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.db.registry import model_version
from recsys.errors import EmptyWindowError
from recsys.interval import DataInterval
from recsys.models.baselines import as_factors, baseline_scores
from recsys.models.factors import FactorModel
from recsys.stages.train import TrainManifest, save_and_register

logger = logging.getLogger(__name__)

def item_scores(method: str, dataset: WindowDataset, mask: np.ndarray, half_life_days: float) -> np.ndarray:
    """(n_items,) the baseline's score of each item over the events of `mask`."""
    return baseline_scores(method, dataset.item_index[mask], dataset.ts[mask], len(dataset.item_ids), half_life_days)


def train_baseline(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str = "manual", *,
                   model: str, method: str) -> TrainManifest:
    """Score every item of the window by `method` ("popularity" or "trending") and register it as `model`.

    Raises:
        EmptyWindowError: the window holds no positive event.
    """
    started = time.perf_counter()
    dataset = WindowDataset.load(Path(dataset_path))
    positives = dataset.positive_mask(settings.positive_types)
    if not positives.any():
        raise EmptyWindowError(f"no {'/'.join(settings.positive_types)} events in the training window")
    half_life = settings.trending_half_life_days
    users, items = as_factors(item_scores(method, dataset, positives, half_life), len(dataset.user_ids))
    version = model_version(model, interval.run_date)
    params = {"method": method, "train_window_days": settings.train_window_days,
              "positive_event_types": list(settings.positive_types),
              **({"half_life_days": half_life} if method == "trending" else {})}
    meta = {"model": model, "model_version": version, "params": params,
            "data_interval": [interval.start.isoformat(), interval.end.isoformat()],
            "positive_event_types": list(settings.positive_types)}
    fitted = FactorModel(users, items, dataset.user_ids, dataset.item_ids, meta)
    n_users = len(np.unique(dataset.user_index[positives]))
    npz = save_and_register(settings, interval, fitted, "baseline", int(positives.sum()), n_users, params,
                            triggered_by)
    seconds = time.perf_counter() - started
    logger.info("trained %s (%s) on %d positive events in %.2fs", version, method, int(positives.sum()), seconds)
    return TrainManifest(version, str(npz), n_users, len(dataset.item_ids), int(positives.sum()), seconds)
