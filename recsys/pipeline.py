"""Running the night's steps: one step (`run_step`, what every DAG task calls) or a whole
night in one process (`run_night`: `recsys run --date D`, the closed loop, the benchmarks).

Both follow `recsys.night.night_steps`, so the DAG and `recsys run` wire the night the
same way. Each step takes the manifests of the steps it reads (plain dicts, as they travel
through XCom) and returns its own manifest as a dict.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from recsys import catalogue
from recsys.catalogue import ModelSpec
from recsys.config import Settings
from recsys.errors import SKIP_ERRORS, OtherBackend
from recsys.interval import DataInterval
from recsys.night import Step, input_key, night_steps

logger = logging.getLogger(__name__)

SUCCESS, SKIPPED, FAILED, UPSTREAM_FAILED = "success", "skipped", "failed", "upstream_failed"


@dataclass(frozen=True)
class Night:
    """What every step of one night needs besides its inputs.

    `score_shards` is how many user shards the gate plans for scoring (the DAG's
    `score_shards` param; one in `run_night`). `approved`: `recsys run --approve`, a publish
    that needs a person's approval (`RECSYS_APPROVAL`) has it; the DAG asks in the UI instead.
    """

    settings: Settings
    interval: DataInterval
    triggered_by: str = "manual"
    force_publish: bool = False
    score_shards: int = 1
    approved: bool = False


@dataclass
class NightReport:
    """What `run_night` did: per step, its state, seconds and manifest; skip reasons and failures.

    `skipped` is the first skip reason of the night (None when every step ran).
    """

    run_date: str
    states: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    skips: dict[str, str] = field(default_factory=dict)
    failures: dict[str, BaseException] = field(default_factory=dict)

    @property
    def skipped(self) -> str | None:
        return next(iter(self.skips.values()), None)


def manifest(result: Any) -> Any:
    """A step's result as plain data (dataclasses through `asdict`), as XCom carries it."""
    if is_dataclass(result) and not isinstance(result, type):
        return asdict(result)
    if isinstance(result, list):
        return [manifest(item) for item in result]
    return result


def resolve(target: str) -> Callable[..., Any]:
    """The function a catalogue entry names as "module:function"."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def models_built_by(step: Step, models: Iterable[str]) -> list[str]:
    """The models whose version is left unfinished when `step` fails: extract feeds every model,
    a model's own steps build that model, retention and the OPE read-out build none."""
    if step.stage == "extract":
        return list(models)
    return [step.model] if step.model in set(models) else []


def run_step(step: Step, night: Night, inputs: Mapping[str, Any]) -> Any:
    """Run one step with the manifests of its inputs (keyed by stage: `extract`, `train`, ...,
    and `plan` for one shard of a mapped score) and return its manifest.

    Raises whatever the stage raises: `recsys.errors.SKIP_ERRORS` mean "nothing to do",
    `PERMANENT_ERRORS` that a retry cannot help.
    """
    spec = catalogue.get(step.model) if step.model else None
    run = _STAGES[step.stage]
    return manifest(run(night, spec, inputs))


def _extract(night: Night, spec: ModelSpec | None, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.extract import extract_window

    return extract_window(night.settings, night.interval)


def _spark_export(night: Night, spec: ModelSpec, inputs: Mapping[str, Any]) -> Any:
    from recsys.spark.backend import prepare_fit

    return prepare_fit(night.settings, night.interval, inputs["extract"]["dataset_path"], spec.name)


def _spark_fit(night: Night, spec: ModelSpec, inputs: Mapping[str, Any]) -> Any:
    # the DAG runs this step as a SparkSubmitOperator against its spark_default connection
    from recsys.spark.backend import submit

    return submit(night.settings, inputs["spark_export"]["job_path"])


def _train(night: Night, spec: ModelSpec, inputs: Mapping[str, Any]) -> Any:
    train = resolve(spec.train)  # torch-heavy modules load only for the models a night trains
    return train(night.settings, night.interval, inputs["extract"]["dataset_path"], night.triggered_by,
                 model=spec.name, **spec.train_kwargs)


def _evaluate(night: Night, spec: ModelSpec, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.ope import estimate_for_gate

    dataset_path, version = inputs["extract"]["dataset_path"], inputs["train"]["model_version"]
    metrics = {}
    if spec.evaluate is not None:
        metrics = resolve(spec.evaluate)(night.settings, night.interval, dataset_path, version, **spec.evaluate_kwargs)
    if spec.readout != "holdout":  # an off-policy model's own ope step estimates it, from its scored lists
        return metrics
    # under a DR gate the gate reads the candidate's off-policy estimate, so it is stored here
    estimated = estimate_for_gate(night.settings, night.interval, dataset_path, version)
    return {**metrics, "ope": asdict(estimated)} if estimated else metrics


def _ope(night: Night, spec: ModelSpec, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.ope import estimate_candidate

    return estimate_candidate(night.settings, night.interval, inputs["extract"]["dataset_path"],
                              inputs["train"]["model_version"], inputs["score"]["path"])


def _health(night: Night, spec: ModelSpec | None, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.health import check_health

    return check_health(night.settings, night.interval)


def _gate(night: Night, spec: ModelSpec, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.gate import decide
    from recsys.stages.health import health_hold

    # a night whose input data health held publishes nothing, unless forced (PublishRejected: skipped)
    overridden = health_hold(night.settings, inputs["train"]["model_version"], night.interval.run_date,
                             force=night.force_publish)
    decision = decide(night.settings, inputs["train"]["model_version"], force=night.force_publish)
    reason = f"{decision.reason}; {overridden}" if overridden else decision.reason
    # an off-policy model's lists were scored (one shard) before its gate: nothing to plan
    shards = night.score_shards if spec.readout == "holdout" else 1
    return [{"shard": i, "n_shards": shards, "reason": reason} for i in range(shards)]


def _approval(night: Night, spec: ModelSpec, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.approval import approval_of_cli_run

    # the DAG's approval task asks in the Required Actions instead (recsys.airflow_support)
    return approval_of_cli_run(night.settings, inputs["train"]["model_version"], inputs["gate"],
                               night.force_publish, night.approved)


def _score(night: Night, spec: ModelSpec, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.score import score_shard

    plan = inputs.get("plan") or {"shard": 0, "n_shards": 1}
    return score_shard(night.settings, inputs["extract"]["dataset_path"], inputs["train"]["model_version"],
                       int(plan["shard"]), int(plan["n_shards"]))


def _publish(night: Night, spec: ModelSpec, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.publish import publish_scores

    scored = inputs["score"]
    shards = [scored] if isinstance(scored, Mapping) else list(scored)
    return publish_scores(night.settings, night.interval.run_date, inputs["train"]["model_version"],
                          [shard["path"] for shard in shards])


def _choose(night: Night, spec: ModelSpec | None, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.choose import choose_alias

    if not night.settings.serving_alias:
        return {"alias": None, "reason": "RECSYS_SERVING_ALIAS is empty: no alias"}
    # every hold-out model of the catalogue: the comparison reads the versions of this date there are
    return choose_alias(night.settings, night.interval.run_date,
                        [spec.name for spec in catalogue.MODELS if spec.readout == "holdout"])


def _retention(night: Night, spec: ModelSpec | None, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.retention import refresh_retention

    return refresh_retention(night.settings, night.interval.run_date)


def _cleanup_artifacts(night: Night, spec: ModelSpec | None, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.cleanup_artifacts import cleanup_artifacts

    return cleanup_artifacts(night.settings, night.interval.run_date)


def _ope_realised(night: Night, spec: ModelSpec | None, inputs: Mapping[str, Any]) -> Any:
    from recsys.stages.ope import record_realised

    return {"realised_rows": record_realised(night.settings)}


_STAGES: dict[str, Callable[[Night, Any, Mapping[str, Any]], Any]] = {
    "extract": _extract, "health": _health, "spark_export": _spark_export, "spark_fit": _spark_fit,
    "train": _train, "evaluate": _evaluate, "ope": _ope, "gate": _gate,
    "approval": _approval, "score": _score, "publish": _publish, "choose": _choose, "retention": _retention, "ope_realised": _ope_realised,
    "cleanup_artifacts": _cleanup_artifacts,
}


def run_night(settings: Settings, interval: DataInterval, triggered_by: str = "manual",
              on_stage: Callable[[str], None] | None = None, force_publish: bool = False,
              models: Sequence[str] | None = None, extra_models: Sequence[str] = (),
              raise_on_failure: bool = True, approve: bool = False) -> NightReport:
    """Run every step of one night in order, as the DAG would: `models` (default: the
    catalogue's default models) plus `extra_models`.

    A step whose stage says there is nothing to do (an empty interval, a model the gate
    rejects) is skipped, and so are the steps that read it; a step that fails is recorded
    `failed` in the registry for the models it was building, the steps that read it do not
    run, and every other step still does: the other models, retention. The live tables
    stay wherever nothing was published. A publish that needs a person's approval
    (`RECSYS_APPROVAL`) goes ahead only with `approve`; without it the version is recorded as
    not approved and its publish skipped.

    Raises:
        the first failed step's exception, once the rest of the night has run, when
        `raise_on_failure` (else the failures are in `report.failures`).
        ConfigurationError: a model the catalogue does not have.
    """
    from recsys.db.registry import record_failure

    specs = catalogue.select(models, extra_models)
    selected = [spec.name for spec in specs]
    night = Night(settings, interval, triggered_by, force_publish, approved=approve)
    report = NightReport(interval.run_date.isoformat())
    outputs: dict[str, Any] = {}
    for step in night_steps(specs):
        state = _blocked(step, report.states)
        if state is not None:
            report.states[step.id] = state
            continue
        if on_stage:
            on_stage(step.id)
        started = time.perf_counter()
        try:
            result = _run_mapped(step, night, outputs) if step.mapped else \
                run_step(step, night, {input_key(i): outputs[i] for i in step.inputs})
        except OtherBackend as exc:  # the Spark steps of a torch run: not a skip of the night's work
            report.states[step.id] = SKIPPED
            logger.info("step %s skipped: %s", step.id, exc)
            continue
        except SKIP_ERRORS as exc:
            report.states[step.id], report.skips[step.id] = SKIPPED, str(exc)
            logger.warning("step %s skipped: %s", step.id, exc)
            continue
        except Exception as exc:  # noqa: BLE001 - recorded, the independent steps still run, then re-raised
            report.states[step.id], report.failures[step.id] = FAILED, exc
            logger.error("step %s failed: %s: %s", step.id, type(exc).__name__, exc)
            for model in models_built_by(step, selected):
                record_failure(settings, model, interval, step.id, exc, triggered_by)
            continue
        report.states[step.id], outputs[step.id] = SUCCESS, result
        report.results[step.id] = result
        report.seconds[step.id] = time.perf_counter() - started
        logger.info("step %s done in %.2fs", step.id, report.seconds[step.id])
    if report.failures:
        logger.error("night %s: %d step(s) failed: %s", report.run_date, len(report.failures),
                     ", ".join(f"{s} ({type(e).__name__}: {e})" for s, e in report.failures.items()))
        if raise_on_failure:
            raise next(iter(report.failures.values()))
    return report


def _blocked(step: Step, states: Mapping[str, str]) -> str | None:
    """The state a step takes without running, by Airflow's trigger rules; None: it runs.

    all_success: an upstream failure makes it upstream_failed, an upstream skip skips it.
    all_done (steps with `after`): it runs whatever those ended as, but is skipped when an
    input it reads is missing. none_failed (steps with `after_unless_failed`): a failure of
    any of them makes it upstream_failed, a skip of one of them does not skip it (a skipped
    input still does: the task would skip itself)."""
    inputs = [states[i] for i in step.inputs]
    if step.after:
        return None if all(s == SUCCESS for s in inputs) else SKIPPED
    upstream = inputs + [states[i] for i in step.after_unless_failed]
    if any(s in (FAILED, UPSTREAM_FAILED) for s in upstream):
        return UPSTREAM_FAILED
    return SKIPPED if any(s == SKIPPED for s in inputs) else None


def _run_mapped(step: Step, night: Night, outputs: Mapping[str, Any]) -> list[Any]:
    """A mapped step over the plans its gate returned, one after the other (the DAG fans them out)."""
    gate_id = next(i for i in step.inputs if input_key(i) == "gate")
    fixed = {input_key(i): outputs[i] for i in step.inputs if i != gate_id}
    return [run_step(step, night, {**fixed, "plan": plan}) for plan in outputs[gate_id]]
