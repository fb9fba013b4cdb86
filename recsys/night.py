"""The one description of a night: its steps and what each waits for.

`dags/recsys_nightly.py` turns these steps into tasks (a task group per model) and
`recsys.pipeline.run_night` (`recsys run`, the closed loop, the benchmarks) runs them in
order in one process; both execute a step with `recsys.pipeline.run_step`. So the DAG's
graph and `recsys run`'s order cannot drift apart (tests/dags/test_night_graph.py and
tests/test_night.py check both).

For each model of the catalogue (`recsys.catalogue`), by its readout:

* "holdout": train -> evaluate -> gate -> score (mapped over user shards) and approval
  -> publish;
* "off_policy": train -> score -> ope -> gate -> approval -> publish (the off-policy
  estimate reads the candidate's lists, and the DR gate reads the estimate), with train ->
  evaluate -> gate beside it when the model has a ranking hold-out (the RL policies: the
  gate's evidence where there is no estimate; it then waits for the baselines' evaluate
  steps too).

`approval` (`recsys.stages.approval`) passes at once unless `RECSYS_APPROVAL` asks a person
to approve this publish (a model's first, or a forced one); then it waits for the answer (in
Airflow a human-in-the-loop task; `recsys run` needs `--approve`). It succeeds when the
publish may go ahead, rather than being skipped when no approval is needed, so publish
keeps its all_success rule: a rejected (or unanswered) approval is skipped, and its
publish with it, exactly as a gate's rejection skips the steps after it.

Shared: `extract` feeds every model; `health` checks the interval's input and every
gate waits for it (a held check puts the night's publishes on hold, `recsys.stages.health`); `retention` (and `ope_realised` after it) do not
depend on training, so they run on a night whose training is skipped or fails;
`choose` points the serving alias at the hold-out model whose live lists did best, once
those models' publishes have ended; `cleanup_artifacts` runs last, once every model's
publish has ended, whatever its outcome. A model
with `after` waits for those models' train steps whatever their outcome
(`trigger_rule="all_done"`), since it only reads their output when it is there. The gate
of a learned hold-out model waits for the evaluate steps of the night's models of kind
"baseline" (`trigger_rule="none_failed"`): its baseline floor reads their figures
(`recsys.stages.gate`), so it must see all of them, on the first run and on a re-run. A
baseline not in the run (skipped) holds nothing back; one whose evaluation failed makes
the learned models' gates upstream_failed, since their floor is unknown.

Standard library only: the DAG file imports this module when it is parsed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from recsys.catalogue import ModelSpec
from recsys.spark import SPARK_MODELS

ALL_SUCCESS = "all_success"
ALL_DONE = "all_done"
NONE_FAILED = "none_failed"

# One line per stage: the task's doc in the Airflow UI and the CLI's progress.
STAGE_DOCS = {
    "extract": "Read the training window from the source table with COPY into a dataset artifact; "
               "skipped when the data interval holds no events.",
    "health": "Data health of the interval's day (volume against the trailing median, click-through, new users "
              "and items, impressions with a propensity and a model version, serving compliance) into data_health; "
              "a check out of bounds puts every model's publish on hold at its gate (unless force_publish).",
    "spark_export": "Spark backend only (RECSYS_MF_BACKEND=spark or the mf_backend param; skipped on torch): "
                    "export the window's new or changed days from the log to Parquet in the artifact store and "
                    "write the Spark job's file.",
    "spark_fit": "Spark backend only: spark-submit the ALS job (pyspark.ml ALS, implicit; each user's top-K "
                 "without seen items; the hold-out fit) to the spark_default connection's master.",
    "train": "Fit the model on the window and register its version in model_runs (on the Spark backend: "
             "register the factors the Spark job fitted).",
    "evaluate": "Score the new model, the live model and popularity on the window's temporal hold-out "
                "(eval_metrics); under a DR gate also store the off-policy estimate the gate reads.",
    "ope": "Off-policy (IPS, SNIPS, DR) estimate of the candidate's click and D1 return rates on the "
           "logged day D-2 (ope_estimates, eval_metrics), before its gate.",
    "gate": "Keep the live model when the hold-out has too few users to judge, when the new model is "
            "credibly worse beyond the relative tolerance (paired bootstrap over users) or below the best "
            "baseline (the task is then skipped, with the reason); else plan the score shards.",
    "approval": "Ask a person to approve the publish when RECSYS_APPROVAL calls for it (a model's first publish, "
                "or a forced one), in the Required Actions with the gate's reason and figures; passes at once "
                "otherwise. Reject or no answer in RECSYS_APPROVAL_TIMEOUT_MINUTES: skipped, nothing published.",
    "score": "Top-K lists of one user shard (a stable hash of the user id), saved as a scores artifact.",
    "publish": "Write every shard's lists into a new partition and make them live in one transaction; when "
               "they went live (not history only), emit an event on the asset recsys://<schema>/live/<model>.",
    "choose": "Point the serving alias (RECSYS_SERVING_ALIAS, `default`) at the model whose live lists did best "
              "on tonight's hold-out, baselines included; after every hold-out model's publish, whatever its "
              "outcome (alias_choices); when the alias serves a new version, emit an event on "
              "recsys://<schema>/live/<alias>.",
    "retention": "Refresh the cohort, engagement and per-model retention cells that the interval's day "
                 "completes; independent of training.",
    "cleanup_artifacts": "Delete the artifacts of versions no longer kept (RECSYS_KEEP_VERSIONS) and datasets "
                         "older than RECSYS_DATASET_KEEP_DAYS, never those of a live version; after every "
                         "publish, whatever its outcome.",
    "ope_realised": "Fill in the realised D1 return rate of earlier off-policy estimates whose outcome "
                    "has matured (after the night's retention refresh).",
}
# Steps that use every core they are given: the DAG puts them in the training pool.
HEAVY_STAGES = frozenset({"train", "evaluate", "spark_fit"})


@dataclass(frozen=True)
class Step:
    """One task of the night.

    Attributes:
        id: the task id, `<model>.<stage>` inside a model's task group, else the stage.
        stage: what runs (`recsys.pipeline.run_step` dispatches on it).
        model: the model whose version the step builds; None for shared steps.
        inputs: ids of the steps whose manifests it reads (it waits for them to succeed).
        after: ids of steps it waits for without needing their success (`trigger_rule` all_done).
        after_unless_failed: ids of steps it waits for that may be skipped (a model not in the
            run) but not fail (`trigger_rule` none_failed): the gate's baseline floor reads
            their figures, and without them it cannot tell the floor. Not with `after`.
        mapped: mapped over the shard plans its gate returns (the DAG; `run_night` loops).
    """

    id: str
    stage: str
    model: str | None = None
    inputs: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    mapped: bool = False
    after_unless_failed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.after and self.after_unless_failed:
            raise ValueError(f"step {self.id}: one trigger rule per task, so `after` or `after_unless_failed`")

    @property
    def trigger_rule(self) -> str:
        if self.after:
            return ALL_DONE
        return NONE_FAILED if self.after_unless_failed else ALL_SUCCESS

    @property
    def upstream(self) -> tuple[str, ...]:
        return self.inputs + self.after + self.after_unless_failed

    @property
    def name(self) -> str:
        """The task id inside its model's task group."""
        return self.stage

    @property
    def doc(self) -> str:
        return STAGE_DOCS[self.stage]

    @property
    def heavy(self) -> bool:
        return self.stage in HEAVY_STAGES


def model_steps(spec: ModelSpec, selected: Iterable[str], baselines: Iterable[str] = ()) -> list[Step]:
    """The steps of one model; `after` keeps only models that are in `selected`. `baselines`:
    the selected models of kind "baseline" with a hold-out evaluation, whose figures a learned
    model's gate holds it to (the baseline floor), so it waits for their evaluate steps."""
    m = spec.name
    after = tuple(f"{other}.train" for other in spec.after if other in set(selected))
    spark: list[Step] = []
    if m in SPARK_MODELS:  # a run may fit it on Spark: export -> spark-submit -> train registers the output
        spark = [Step(f"{m}.spark_export", "spark_export", m, ("extract",)),
                 Step(f"{m}.spark_fit", "spark_fit", m, (f"{m}.spark_export",))]
        # skipped on the torch backend, which must not skip train; failed on Spark, which must fail it
        train = Step(f"{m}.train", "train", m, ("extract",), after, after_unless_failed=(f"{m}.spark_fit",))
    else:
        train = Step(f"{m}.train", "train", m, ("extract",), after)
    if spec.readout == "holdout":
        floor = tuple(f"{b}.evaluate" for b in baselines if b != m) if spec.kind != "baseline" and spec.ranking_gate \
            else ()
        return [*spark, train,
                Step(f"{m}.evaluate", "evaluate", m, ("extract", f"{m}.train")),
                Step(f"{m}.gate", "gate", m, (f"{m}.train", f"{m}.evaluate", "health"), after_unless_failed=floor),
                Step(f"{m}.score", "score", m, ("extract", f"{m}.train", f"{m}.gate"), mapped=True),
                # beside the score shards: the lists are scored while the approver reads
                Step(f"{m}.approval", "approval", m, (f"{m}.train", f"{m}.gate")),
                Step(f"{m}.publish", "publish", m, (f"{m}.train", f"{m}.score", f"{m}.approval"))]
    # an off-policy model with a ranking hold-out: its gate reads it where there is no estimate,
    # and holds it to the baselines like any learned model
    evaluate = [Step(f"{m}.evaluate", "evaluate", m, ("extract", f"{m}.train"))] if spec.evaluate is not None else []
    floor = tuple(f"{b}.evaluate" for b in baselines if b != m) if evaluate else ()
    return [*spark, train,
            *evaluate,
            Step(f"{m}.score", "score", m, ("extract", f"{m}.train")),
            # the DR gate reads the candidate's estimate, so the estimate comes before the gate
            Step(f"{m}.ope", "ope", m, ("extract", f"{m}.train", f"{m}.score")),
            Step(f"{m}.gate", "gate", m, (f"{m}.train", f"{m}.ope", *(s.id for s in evaluate), "health"),
                 after_unless_failed=floor),
            Step(f"{m}.approval", "approval", m, (f"{m}.train", f"{m}.gate")),
            Step(f"{m}.publish", "publish", m, (f"{m}.train", f"{m}.score", f"{m}.gate", f"{m}.approval"))]


def night_steps(models: Iterable[ModelSpec]) -> tuple[Step, ...]:
    """Every step of a night that trains `models`, in an order that respects every edge."""
    models = list(models)
    selected = [spec.name for spec in models]
    baselines = [spec.name for spec in models
                 if spec.kind == "baseline" and spec.readout == "holdout" and spec.evaluate is not None]
    # data health reads the log itself; every gate waits for it, so a failed check run publishes nothing
    steps = [Step("extract", "extract"), Step("health", "health")]
    for spec in models:
        steps.extend(model_steps(spec, selected, baselines))
    # the alias compares what each hold-out model serves once their publishes are done
    holdout = tuple(f"{spec.name}.publish" for spec in models if spec.readout == "holdout")
    if holdout:
        steps.append(Step("choose", "choose", after=holdout))
    # retention reads only the log; the realised rates read retention's per-model cells
    steps += [Step("retention", "retention"), Step("ope_realised", "ope_realised", inputs=("retention",))]
    # files are deleted only once every model of the night is done with them
    steps.append(Step("cleanup_artifacts", "cleanup_artifacts",
                      after=tuple(f"{spec.name}.publish" for spec in models)))
    return _topological(steps)


def _topological(steps: list[Step]) -> tuple[Step, ...]:
    """`steps` in their declared order, except that a step never comes before what it waits for
    (a model may name in `after` a model declared later in the catalogue)."""
    by_id = {step.id: step for step in steps}
    done: dict[str, None] = {}

    def visit(step: Step, path: tuple[str, ...]) -> None:
        if step.id in done:
            return
        if step.id in path:
            raise ValueError(f"the night's steps wait for each other in a cycle: {' -> '.join(path + (step.id,))}")
        for upstream in step.upstream:
            visit(by_id[upstream], path + (step.id,))
        done[step.id] = None

    for step in steps:
        visit(step, ())
    return tuple(by_id[i] for i in done)


def input_key(step_id: str) -> str:
    """The keyword a step's manifest is passed under to the steps that read it: its stage."""
    return step_id.rsplit(".", 1)[-1]
