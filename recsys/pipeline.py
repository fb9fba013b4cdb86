"""One night without a scheduler: the stages in order, as the DAG wires them.

`recsys run --date D` and the benchmarks call `run_night`; the DAG calls the
same stage functions one task each.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Callable

from recsys.config import Settings
from recsys.errors import EmptyWindowError
from recsys.extract import extract_window
from recsys.gate import PublishRejected, decide
from recsys.holdout import evaluate_mf
from recsys.interval import DataInterval
from recsys.publish import PublishManifest, publish_scores
from recsys.retention import refresh_retention
from recsys.scoring import score_shard
from recsys.train import train_mf

logger = logging.getLogger(__name__)

STAGES = ("extract", "train", "evaluate", "gate", "publish", "retention")


@dataclass
class NightReport:
    run_date: str
    seconds: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


def score_and_publish(settings: Settings, run_date: date, dataset_path: str, version: str) -> PublishManifest:
    """Score every user in one shard and publish the lists (the DAG maps scoring over shards)."""
    return publish_scores(settings, run_date, version, [score_shard(settings, dataset_path, version).path])


def run_night(settings: Settings, interval: DataInterval, triggered_by: str = "manual",
              on_stage: Callable[[str], None] | None = None, force_publish: bool = False) -> NightReport:
    """Run extract, train, evaluate, gate, publish and retention for one data interval.

    An empty data interval skips training and publishing, and a model the gate
    rejects is not published; either way the live tables stay and retention
    is still refreshed.
    """
    report = NightReport(interval.run_date.isoformat())

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        if on_stage:
            on_stage(name)
        started = time.perf_counter()
        result = fn()
        report.seconds[name] = time.perf_counter() - started
        report.results[name] = asdict(result) if hasattr(result, "__dataclass_fields__") else result
        logger.info("stage %s done in %.2fs", name, report.seconds[name])
        return result

    try:
        extracted = stage("extract", lambda: extract_window(settings, interval))
        trained = stage("train", lambda: train_mf(settings, interval, extracted.dataset_path, triggered_by))
        stage("evaluate", lambda: evaluate_mf(settings, interval, extracted.dataset_path, trained.model_version))
        stage("gate", lambda: decide(settings, trained.model_version, force=force_publish))
        stage("publish", lambda: score_and_publish(settings, interval.run_date, extracted.dataset_path,
                                                   trained.model_version))
    except (EmptyWindowError, PublishRejected) as exc:
        report.skipped = str(exc)
        logger.warning("skipping training and publishing: %s", exc)
    stage("retention", lambda: refresh_retention(settings, interval.run_date))
    return report
