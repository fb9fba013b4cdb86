"""A small model declared in the catalogue by the tests only: everyone gets the most
consumed items of the window (one factor per user and item). It shows that adding a
model is one catalogue entry plus its module: nothing else in recsys/ or dags/ names it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from recsys.catalogue import ModelSpec
from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.db.registry import model_version, register_trained
from recsys.errors import EmptyWindowError
from recsys.interval import DataInterval
from recsys.models.factors import FactorModel
from recsys.stages.train import TrainManifest

TOY = ModelSpec(name="toy_popular", kind="mf", summary="the window's most consumed items, for everyone",
                train="toy_model:train_toy")


def train_toy(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str = "manual", *,
              model: str) -> TrainManifest:
    started = time.perf_counter()
    dataset = WindowDataset.load(Path(dataset_path))
    positives = dataset.positive_mask(settings.positive_event_types)
    if not positives.any():
        raise EmptyWindowError("no positive events in the training window")
    matrix = dataset.user_item_matrix(positives)
    counts = np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()
    users = np.ones((len(dataset.user_ids), 1), np.float32)
    items = (counts / counts.max())[:, None].astype(np.float32)
    version = model_version(model, interval.run_date)
    fitted = FactorModel(users, items, dataset.user_ids, dataset.item_ids, {"model": model, "model_version": version})
    npz, digest = fitted.save(Path(settings.artifact_dir) / interval.run_date.isoformat() / model)
    register_trained(settings, {
        "model": model, "model_kind": "mf", "model_version": version, "run_date": interval.run_date,
        "data_interval_start": interval.start, "data_interval_end": interval.end,
        "train_window_start": interval.train_window_start(settings.train_window_days),
        "n_interactions": int(positives.sum()), "n_users": len(dataset.user_ids), "n_items": len(dataset.item_ids),
        "params": {}, "triggered_by": triggered_by, "artifact_path": str(npz), "artifact_sha256": digest,
    })
    return TrainManifest(version, str(npz), len(dataset.user_ids), len(dataset.item_ids), int(positives.sum()),
                         time.perf_counter() - started)
