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

from recsys.config import DR_GATE_METRICS, Settings
from recsys.errors import EmptyWindowError
from recsys.stages.extract import extract_window
from recsys.stages.gate import PublishRejected, decide
from recsys.stages.evaluate import evaluate_mf
from recsys.interval import DataInterval
from recsys.stages.publish import PublishManifest, publish_scores
from recsys.db.registry import models_built_by, record_failure
from recsys.stages.retention import refresh_retention
from recsys.stages.score import score_shard
from recsys.stages.train import train_bpr, train_mf

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
              on_stage: Callable[[str], None] | None = None, force_publish: bool = False,
              extra_models: tuple[str, ...] = ()) -> NightReport:
    """Run extract, train, evaluate, gate, publish and retention for one data interval.

    An empty data interval skips training and publishing, and a model the gate
    rejects is not published; either way the live tables stay and retention
    is still refreshed. `extra_models` may hold "mf_bpr": BPR runs ALS's stages under
    `_bpr` names and is published under its own live pointer. It may hold "rl_reinforce": it trains after MF
    (its item embeddings start from MF's factors), is scored, its off-policy estimate
    stored (`ope_estimates`), gated and published, and an MF rejection does not stop
    it; the default ranking gate lets RL through (its read-out is the A/B arm and the
    OPE estimate). "rl_cql" (conservative Q-learning) runs the same way. With the DR
    gate (`gate_metric="dr_return_lcb"`) the evaluate stage also stores MF's estimate,
    so every gate finds its challenger's estimate, and a rejected RL model is not
    published. Estimates whose outcome has matured get their realised rate after the
    retention refresh.
    """
    report = NightReport(interval.run_date.isoformat())

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        if on_stage:
            on_stage(name)
        started = time.perf_counter()
        try:
            result = fn()
        except (EmptyWindowError, PublishRejected):
            raise
        except Exception as exc:
            # the registry says which models this night left unfinished, and why
            for model in models_built_by(name, ("mf_als", *extra_models)):
                record_failure(settings, model, interval, name, exc, triggered_by)
            raise
        report.seconds[name] = time.perf_counter() - started
        report.results[name] = asdict(result) if hasattr(result, "__dataclass_fields__") else result
        logger.info("stage %s done in %.2fs", name, report.seconds[name])
        return result

    extracted = None
    try:
        extracted = stage("extract", lambda: extract_window(settings, interval))
        trained = stage("train", lambda: train_mf(settings, interval, extracted.dataset_path, triggered_by))
        stage("evaluate", lambda: _evaluate(settings, interval, extracted.dataset_path, trained.model_version))
        stage("gate", lambda: decide(settings, trained.model_version, force=force_publish))
        stage("publish", lambda: score_and_publish(settings, interval.run_date, extracted.dataset_path,
                                                   trained.model_version))
    except (EmptyWindowError, PublishRejected) as exc:
        report.skipped = str(exc)
        logger.warning("skipping training and publishing: %s", exc)
    if "mf_bpr" in extra_models and extracted is not None:
        _run_bpr(settings, interval, extracted.dataset_path, triggered_by, stage, report, force_publish)
    for rl_model in (m for m in ("rl_reinforce", "rl_cql") if m in extra_models):
        if extracted is not None:
            _run_rl(settings, interval, extracted.dataset_path, triggered_by, stage, report, rl_model,
                    force_publish)
    stage("retention", lambda: refresh_retention(settings, interval.run_date))
    if set(extra_models) & {"rl_reinforce", "rl_cql"} or settings.gate_metric in DR_GATE_METRICS:
        from recsys.stages.ope import record_realised

        stage("ope_realised", lambda: record_realised(settings))
    return report


def _run_rl(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str,
            stage: Callable[[str, Callable[[], Any]], Any], report: NightReport, model: str,
            force_publish: bool = False) -> None:
    from recsys.stages.ope import estimate_candidate
    from recsys.stages.train_rl import score_rl, train_rl  # torch-heavy; only nights that train RL pay for it

    suffix = "rl" if model == "rl_reinforce" else "cql"
    try:
        trained = stage(f"train_{suffix}", lambda: train_rl(settings, interval, dataset_path, triggered_by, model))
    except EmptyWindowError as exc:
        report.results[f"{suffix}_skipped"] = str(exc)
        logger.warning("skipping %s: %s", model, exc)
        return
    score_path = score_rl(settings, dataset_path, trained.model_version).path
    # the DR gate reads the candidate's estimate, so the estimate comes before the gate
    stage(f"ope_{suffix}", lambda: estimate_candidate(settings, interval, dataset_path, trained.model_version,
                                                      score_path))
    try:
        stage(f"gate_{suffix}", lambda: decide(settings, trained.model_version, force=force_publish))
    except PublishRejected as exc:
        report.results[f"{suffix}_skipped"] = str(exc)
        logger.warning("not publishing %s: %s", model, exc)
        return
    stage(f"publish_{suffix}", lambda: publish_scores(settings, interval.run_date, trained.model_version, [score_path]))


def _run_bpr(settings: Settings, interval: DataInterval, dataset_path: str, triggered_by: str,
             stage: Callable[[str, Callable[[], Any]], Any], report: NightReport, force_publish: bool = False) -> None:
    """BPR (`mf_bpr`), the second MF model: ALS's stages under `_bpr` names and its own live pointer."""
    try:
        trained = stage("train_bpr", lambda: train_bpr(settings, interval, dataset_path, triggered_by))
        stage("evaluate_bpr", lambda: _evaluate(settings, interval, dataset_path, trained.model_version))
        stage("gate_bpr", lambda: decide(settings, trained.model_version, force=force_publish))
    except (EmptyWindowError, PublishRejected) as exc:
        report.results["bpr_skipped"] = str(exc)
        logger.warning("not publishing mf_bpr: %s", exc)
        return
    stage("publish_bpr", lambda: score_and_publish(settings, interval.run_date, dataset_path, trained.model_version))


def _evaluate(settings: Settings, interval: DataInterval, dataset_path: str, version: str) -> dict[str, Any]:
    """The hold-out metrics, plus the off-policy estimate when the gate compares DR lower bounds."""
    from recsys.stages.ope import estimate_for_gate

    metrics = evaluate_mf(settings, interval, dataset_path, version)
    estimated = estimate_for_gate(settings, interval, dataset_path, version)
    return {**metrics, "ope": asdict(estimated)} if estimated else metrics
