"""Train stage: fit the MF model on the extracted window and register it."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.errors import EmptyWindowError
from recsys.interval import DataInterval
from recsys.models.als import fit_als
from recsys.models.factors import FactorModel
from recsys.registry import model_version, register_trained

logger = logging.getLogger(__name__)

MF_MODEL = "mf_als"


@dataclass(frozen=True)
class TrainManifest:
    model_version: str
    artifact_path: str
    n_users: int
    n_items: int
    n_interactions: int
    seconds: float


def train_mf(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str = "manual") -> TrainManifest:
    """Fit implicit ALS on every positive event of the window and record it in model_runs.

    Raises:
        EmptyWindowError: the window holds no positive event.
        ModelFitError: the fit produced NaN or infinite factors (nothing is saved).
    """
    started = time.perf_counter()
    dataset = WindowDataset.load(Path(dataset_path))
    positives = dataset.positive_mask(settings.positive_event_types)
    if not positives.any():
        raise EmptyWindowError(f"no {'/'.join(settings.positive_event_types)} events in the training window")
    matrix = dataset.user_item_matrix(positives)
    user_factors, item_factors = fit_als(matrix, settings.als)
    version = model_version(MF_MODEL, interval.run_date)
    meta = {
        "model": MF_MODEL, "model_version": version, "config": dataclasses.asdict(settings.als),
        "data_interval": [interval.start.isoformat(), interval.end.isoformat()],
        "train_window_days": settings.train_window_days,
        "positive_event_types": list(settings.positive_event_types),
    }
    model = FactorModel(user_factors, item_factors, dataset.user_ids, dataset.item_ids, meta)
    npz, digest = model.save(Path(settings.artifact_dir) / interval.run_date.isoformat() / MF_MODEL)
    n_users = int((np.diff(matrix.indptr) > 0).sum())
    register_trained(settings, {
        "model": MF_MODEL, "model_kind": "mf", "model_version": version, "run_date": interval.run_date,
        "data_interval_start": interval.start, "data_interval_end": interval.end,
        "train_window_start": interval.train_window_start(settings.train_window_days),
        "n_interactions": int(positives.sum()), "n_users": n_users, "n_items": len(dataset.item_ids),
        "params": {**dataclasses.asdict(settings.als), "train_window_days": settings.train_window_days},
        "triggered_by": triggered_by, "artifact_path": str(npz), "artifact_sha256": digest,
    })
    seconds = time.perf_counter() - started
    logger.info("trained %s on %d positive events of %d users in %.2fs", version, int(positives.sum()), n_users, seconds)
    return TrainManifest(version, str(npz), n_users, len(dataset.item_ids), int(positives.sum()), seconds)
