"""
### recsys_nightly

Nightly retraining of the recommenders on the interaction log in PostgreSQL.

Each run covers one data interval, the day before its as-of date D
(`[D-1 00:00, D 00:00)` UTC). **extract** reads the training window ending at D with
COPY; then every model of the catalogue (`recsys/catalogue.py`) has its own task group,
named after the model, and runs in it only when the run's `models` param lists it
(default: `RECSYS_NIGHTLY_MODELS`, else the catalogue's default models):

* hold-out models (matrix factorisation, baselines): **train** -> **evaluate** (the new
  model, the live model and the popularity baselines on the window's last day, per user)
  -> **gate** (keeps the live model when the hold-out has too few users, or the new one is
  credibly worse beyond the relative tolerance; holds a learned model to the best
  baseline, so it waits for the baseline models' evaluate tasks) -> **score** (top-K
  lists, mapped over user shards) -> **publish** (every shard's lists made live in one
  transaction);
* off-policy models (RL): **train** (after the factor model whose item factors start its
  embeddings) -> **score** -> **ope** (the off-policy estimate of its click and D1 return
  rates on day D-2, in `ope_estimates`) -> **gate** -> **publish**.

With the `mf_backend` param (default `RECSYS_MF_BACKEND`) at `spark`, `mf_als` is fitted on
Spark: **spark_export** writes the window's new days to Parquet in the artifact store,
**spark_fit** submits `pyspark.ml` ALS through the `spark_default` connection
(`SparkSubmitOperator`), and **train** registers its factors; both are skipped on torch.

**health** checks the interval's day of the log (volume against the trailing 7-day median,
click-through, new users and items, impressions with a propensity and a model version,
serving compliance) into `data_health`; every gate waits for it, and a check out of
bounds puts the night's publishes on hold (the gate task is *skipped* with the reason)
unless `force_publish` is set.

**approval** (per model, after its gate, beside the score shards) passes at once unless
`RECSYS_APPROVAL` asks a person to approve this publish (`first`: the model has no live
version yet; `forced`: the run sets `force_publish`; `first_and_forced`). Then it waits in
the UI's **Required actions** with the gate's reason and the hold-out figures against the
live model and popularity: *Approve* publishes, *Reject* (or no answer within
`RECSYS_APPROVAL_TIMEOUT_MINUTES`) skips the publish, keeps the live lists and records why
in `model_runs` (docs/operations.md).

**retention** refreshes the cohort retention cells that day D-1 completes (it runs even
when training fails) and **ope_realised** then fills in the realised rate of earlier
estimates whose outcome has matured.

The graph is `recsys.night.night_steps`, the same description `recsys run` follows, and
every task runs its step through `recsys.airflow_support.run_night_task`: bad input fails
at once without retries, "nothing to do" shows as *skipped*. A backfill of a past date
trains only on data before that date and never replaces the live lists of a newer date. A
night with no new events, or a model the gate rejects, shows as *skipped*: nothing is
published and the live lists stay.

Output tables (schema `recsys`): `model_runs`, `eval_metrics`, `ope_estimates`,
`live_recommendations`, `retention`.

Alerts: a task that fails after its last retry and a model the gate keeps out (its figures,
or the data-health hold) send a message by mail (the `recsys_smtp` connection) and to a Slack
webhook (`recsys_slack`) naming the DAG, the as-of date, the model, the step, the error or
reason and a link to the task; with `RECSYS_LISTS_LIVE_BY` (HH:MM, in `RECSYS_LISTS_LIVE_TZ`)
a night not done by then sends "lists not live" (a Deadline Alert). See docs/operations.md.

Assets: a publish whose lists went live emits an event on `recsys://<schema>/live/<model>`,
and **choose**, when it moves the serving alias, one on `recsys://<schema>/live/default`,
each with an `extra` saying which version of which date went live (`recsys/assets.py`). A
history-only publish (a backfill), a rejected model or an alias left where it was emits
none. `recsys_live_lists_refresh` is an example DAG scheduled on them.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import (AssetAlias, CronDataIntervalTimetable, DeadlineAlert, DeadlineReference, Param, SyncCallback,
                         TaskGroup, dag, task)

# Standard library only: the model catalogue, the one description of the night, the assets' names, the deadline.
from recsys import assets, deadline
from recsys.catalogue import MODELS, default_names, names
from recsys.night import input_key, night_steps
from recsys.spark import BACKENDS, JOB_PATH, python_conf

KNOWN_MODELS = names()
# Scheduled runs train these (a comma-separated list); manual runs choose in the `models` param.
DEFAULT_MODELS = [m.strip() for m in os.environ.get("RECSYS_NIGHTLY_MODELS", "").split(",")
                  if m.strip() in KNOWN_MODELS] or default_names()
# Training and evaluation each use every core they are given: the pool keeps a
# worker from running more of them at once than it has cores for.
TRAINING_POOL = os.environ.get("RECSYS_TRAINING_POOL", "recsys_training")
# Publish and choose emit "went live" events on recsys://<schema>/live/<model or alias> through these.
SCHEMA, SERVING_ALIAS = assets.deployment_schema(), assets.deployment_serving_alias()


def _outlets(step) -> list:  # noqa: ANN001 - recsys.night.Step
    moved = assets.lists_moved_by(step.stage, step.model, SERVING_ALIAS)
    return [AssetAlias(assets.went_live_alias(SCHEMA, moved))] if moved else []


def _run_step(step_id: str, extract=None, train=None, evaluate=None, gate=None, score=None, ope=None,  # noqa: ANN001
              retention=None, health=None, plan=None, approval=None):  # noqa: ANN001, ANN202 - upstream manifests
    """One step of the night (its doc is the task's doc)."""
    from recsys.airflow_support import run_night_task

    return run_night_task(step_id, {"extract": extract, "train": train, "evaluate": evaluate, "gate": gate,
                                    "score": score, "ope": ope, "retention": retention, "health": health,
                                    "plan": plan, "approval": approval})


class NightApproval(ApprovalOperator):
    """A model's approval step (recsys.stages.approval): asks in the Required Actions only when
    RECSYS_APPROVAL calls for it, else returns at once; a Reject or a timeout skips the task
    (and so its publish) instead of succeeding, as a gate's rejection does."""

    def execute(self, context):  # noqa: ANN001, ANN201 - Airflow's Context
        from recsys.airflow_support import approval_ask

        asked = approval_ask(context, self.task_id)
        if not asked["needed"]:
            return asked
        request = asked["request"]
        self.subject, self.body = request["subject"], request["body"]
        self.response_timeout = timedelta(minutes=request["timeout_minutes"])
        context["ti"].xcom_push(key="approval_request", value=asked)  # read back when the answer comes
        return super().execute(context)

    def execute_complete(self, context, event):  # noqa: ANN001, ANN201 - Airflow's Context, the HITL event
        from recsys.airflow_support import approval_answered

        answer = HITLOperator.execute_complete(self, context, event)  # validated; no skipping of downstream
        asked = context["ti"].xcom_pull(task_ids=self.task_id, key="approval_request")
        return approval_answered(context, asked, dict(answer), timed_out=bool(event.get("timedout")))


def _on_failure(context) -> None:  # noqa: ANN001 - Airflow's Context
    """on_failure_callback, after the last retry: model_runs says `failed` for the models the task
    built, and an alert goes out (recsys.airflow_support.task_failed)."""
    from recsys.airflow_support import task_failed

    task_failed(context)


def _lists_live_by() -> DeadlineAlert | None:
    """RECSYS_LISTS_LIVE_BY (HH:MM) in RECSYS_LISTS_LIVE_TZ: a scheduled night not done by then
    alerts (recsys/deadline.py: the interval after the logical date, D-1 00:00 UTC)."""
    due = deadline.from_environ(os.environ)
    if due is None:
        return None
    live_by, zone = due
    return DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
                         interval=deadline.deadline_interval(live_by, zone),
                         callback=SyncCallback(deadline.lists_late, kwargs={"live_by": live_by, "zone": zone}),
                         name=f"lists live by {live_by} {zone}")


@dag(
    dag_id="recsys_nightly",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    # Backfills can reach back to this date; set it to where your log starts.
    start_date=pendulum.parse(os.environ.get("RECSYS_DAG_START_DATE", "2026-01-01"), tz="UTC"),
    catchup=False,
    # Runs of different dates only share the live pointer, which publish
    # updates under a lock; two at a time keeps a backfill moving without
    # oversubscribing a small worker.
    max_active_runs=2,
    doc_md=__doc__,
    tags=["recsys"],
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,  # transient database errors: 30 s, 1 min, 2 min
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": _on_failure,  # model_runs.status = 'failed' and an alert, after the last retry
    },
    deadline=_lists_live_by(),
    params={
        "models": Param(DEFAULT_MODELS, type="array", items={"type": "string", "enum": KNOWN_MODELS},
                        minItems=1, uniqueItems=True, title="Models to train",
                        description="; ".join(f"{spec.name}: {spec.summary}" for spec in MODELS)),
        "k": Param(10, type="integer", minimum=1, maximum=500, title="Recommendations per user"),
        "train_window_days": Param(90, type="integer", minimum=1, maximum=3650, title="Training window (days)"),
        "force_publish": Param(False, type="boolean", title="Publish even if worse than the live model"),
        "score_shards": Param(2, type="integer", minimum=1, maximum=64, title="User shards for scoring"),
        "mf_backend": Param(os.environ.get("RECSYS_MF_BACKEND", "torch"), type="string", enum=list(BACKENDS),
                            title="Where the MF model is fitted",
                            description="torch: on this worker; spark: exported to Parquet and fitted by "
                                        "pyspark.ml ALS through the spark_default connection (docs/scaling.md)"),
    },
)
def recsys_nightly():
    tasks, groups, outputs = {}, {}, {}
    for step in night_steps(MODELS):
        if step.model is not None and step.model not in groups:
            spec = next(m for m in MODELS if m.name == step.model)
            groups[step.model] = TaskGroup(step.model, tooltip=spec.summary)
        if step.stage == "approval":
            # an unanswered request counts as Reject (the defaults the scheduler applies at the timeout)
            tasks[step.id] = NightApproval(task_id=step.name, task_group=groups.get(step.model), doc_md=step.doc,
                                           subject=f"Publish {step.model}?", defaults="Reject")
            outputs[step.id] = tasks[step.id].output
            for upstream in step.inputs:
                tasks[upstream] >> tasks[step.id]
            continue
        if step.stage == "spark_fit":
            # the hand-off to Spark: spark-submit against the spark_default connection (local[2],
            # a standalone master, a team's cluster); skipped with its export on the torch backend
            (export,) = step.inputs
            tasks[step.id] = SparkSubmitOperator(
                task_id=step.name, task_group=groups.get(step.model), doc_md=step.doc, pool=TRAINING_POOL,
                conn_id="spark_default", application=str(JOB_PATH), name=f"recsys-{step.model}",
                application_args=[f"{{{{ ti.xcom_pull(task_ids='{export}')['job_path'] }}}}"], conf=python_conf())
            tasks[export] >> tasks[step.id]
            continue
        run = task(_run_step, task_id=step.name, task_group=groups.get(step.model), doc_md=step.doc,
                   trigger_rule=step.trigger_rule, pool=TRAINING_POOL if step.heavy else None,
                   outlets=_outlets(step),
                   map_index_template="shard {{ task.op_kwargs['plan']['shard'] }}" if step.mapped else None)
        given = {input_key(i): outputs.get(i, tasks[i]) for i in step.inputs}
        if step.mapped:  # one task per shard plan the gate returns
            shards = given.pop("gate")
            tasks[step.id] = run.partial(step_id=step.id, **given).expand(plan=shards)
        else:
            tasks[step.id] = run(step_id=step.id, **given)
        for waited in step.after + step.after_unless_failed:
            tasks[waited] >> tasks[step.id]


recsys_nightly()

if __name__ == "__main__":  # guarded: dag.test() at import time would recurse
    recsys_nightly().test()
