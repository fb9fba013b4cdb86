"""
### recsys_nightly

Nightly retraining of the recommenders on the interaction log in PostgreSQL.

Each run covers one data interval, the day before its as-of date D
(`[D-1 00:00, D 00:00)` UTC): **extract** reads the training window ending at
D with COPY, **train** fits implicit ALS, **evaluate** scores it, the live
model and a popularity baseline on the window's last day, **gate** keeps the
live model when the new one is worse, **score** computes top-K lists shard by
shard (mapped over user shards), **publish** writes every shard's lists and
makes them live in one transaction, and **retention** refreshes the cohort
retention cells that day D-1 completes (it runs even when training fails).

When `models` holds `rl_reinforce` (default models: `RECSYS_NIGHTLY_MODELS`,
default `mf_als`), a parallel branch **train_rl** -> **score_rl** -> **ope_rl**
-> **gate_rl** -> **publish_rl** trains the REINFORCE recommender with top-K
off-policy correction on the logged impressions (after MF's train, whose item
factors initialise it), scores every user, stores the off-policy (DR) estimate of
its click and D1 return rates on day D-2 with its interval in `ope_estimates`,
gates it and publishes its lists. With the default ranking gate RL passes
(it has no ranking hold-out: its read-out is its A/B arm's retention and the
off-policy estimate). A window without impressions skips the branch.
**ope_realised** (after retention, every night) fills in the realised rate of
earlier estimates whose outcome has matured.

With `RECSYS_GATE_METRIC=dr_return_lcb` (or `dr_return_diff_lcb`) every gate (MF's and RL's) compares the
lower 95% bound of the challenger's DR return-rate estimate with the live
version's DR estimate on the same logged day; **evaluate** then also stores MF's
estimate, so it exists before **gate**.

A backfill of a past date trains only on data before that date and never
replaces the live lists of a newer date. A night with no new events, or a model
the gate rejects, shows as *skipped*: nothing is published and the live lists stay.

Output tables (schema `recsys`): `model_runs`, `eval_metrics`, `ope_estimates`,
`live_recommendations`, `retention`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

KNOWN_MODELS = ["mf_als", "mf_bpr", "rl_reinforce"]
# RL needs impression logs with propensities; scheduled runs train it when listed here.
DEFAULT_MODELS = [m for m in os.environ.get("RECSYS_NIGHTLY_MODELS", "mf_als").split(",") if m in KNOWN_MODELS]
# Training and evaluation each use every core they are given: the pool keeps a
# worker from running more of them at once than it has cores for.
TRAINING_POOL = os.environ.get("RECSYS_TRAINING_POOL", "recsys_training")


def _settings(context=None):  # noqa: ANN001 - Airflow's Context
    """Settings for a task: RECSYS_* variables, the `recsys_db` connection and the run's params."""
    from recsys.airflow_support import settings_for_task

    params = (context or get_current_context())["params"]
    return settings_for_task(k=int(params["k"]), train_window_days=int(params["train_window_days"]))


def _interval(context=None):  # noqa: ANN001 - Airflow's Context
    from recsys.interval import DataInterval

    context = context or get_current_context()
    return DataInterval.from_airflow(
        context.get("data_interval_start"), context.get("data_interval_end"), context["dag_run"].run_after
    )


def _triggered_by(context=None) -> str:  # noqa: ANN001 - Airflow's Context
    run_type = (context or get_current_context())["dag_run"].run_type
    return getattr(run_type, "value", str(run_type))


def _record_failure(context) -> None:  # noqa: ANN001 - Airflow's Context
    """on_failure_callback, run once the last retry has failed: the registry row of each
    model the task was building says `failed`, with the task and the error."""
    from recsys.db.registry import models_built_by, record_failure

    task_id = context["ti"].task_id
    for model in models_built_by(task_id, context["params"]["models"]):
        record_failure(_settings(context), model, _interval(context), task_id,
                       context.get("exception") or "task failed", _triggered_by(context))


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
        "on_failure_callback": _record_failure,  # model_runs.status = 'failed' after the last retry
    },
    params={
        "models": Param(DEFAULT_MODELS or ["mf_als"], type="array", items={"type": "string", "enum": KNOWN_MODELS},
                        minItems=1, title="Models to train"),
        "k": Param(10, type="integer", minimum=1, maximum=500, title="Recommendations per user"),
        "train_window_days": Param(90, type="integer", minimum=1, maximum=3650, title="Training window (days)"),
        "force_publish": Param(False, type="boolean", title="Publish even if worse than the live model"),
        "score_shards": Param(2, type="integer", minimum=1, maximum=64, title="User shards for scoring"),
    },
)
def recsys_nightly():
    @task
    def extract() -> dict:
        """Read the training window with COPY; skip the night when the interval is empty."""
        from dataclasses import asdict

        from airflow.sdk.exceptions import AirflowSkipException

        from recsys.airflow_support import no_retry_on_bad_input
        from recsys.errors import EmptyWindowError
        from recsys.stages.extract import extract_window

        try:
            with no_retry_on_bad_input():
                return asdict(extract_window(_settings(), _interval()))
        except EmptyWindowError as exc:
            raise AirflowSkipException(str(exc)) from exc

    @task(pool=TRAINING_POOL)
    def train(extracted: dict, model: str = "mf_als") -> dict:
        """Fit an MF model on the window (implicit ALS `mf_als`, or BPR `mf_bpr` in the `_bpr` tasks)
        and register it in model_runs."""
        from dataclasses import asdict

        from airflow.sdk.exceptions import AirflowSkipException

        from recsys.airflow_support import no_retry_on_bad_input
        from recsys.stages.train import train_bpr, train_mf

        if model not in get_current_context()["params"]["models"]:
            raise AirflowSkipException(f"{model} is not in this run's models")
        fit = train_bpr if model == "mf_bpr" else train_mf
        with no_retry_on_bad_input():
            return asdict(fit(_settings(), _interval(), extracted["dataset_path"], _triggered_by()))

    @task(pool=TRAINING_POOL)
    def evaluate(extracted: dict, trained: dict) -> dict:
        """Recall@K and NDCG@K of the new model, the live model and popularity on the window's last day;
        with the DR gate (RECSYS_GATE_METRIC=dr_return_lcb) also the new model's off-policy estimate."""
        from dataclasses import asdict

        from recsys.stages.evaluate import evaluate_mf
        from recsys.stages.ope import estimate_for_gate

        settings, interval, version = _settings(), _interval(), trained["model_version"]
        metrics = evaluate_mf(settings, interval, extracted["dataset_path"], version)
        estimated = estimate_for_gate(settings, interval, extracted["dataset_path"], version)
        return {**metrics, "ope": asdict(estimated)} if estimated else metrics

    @task
    def gate(trained: dict, metrics: dict) -> list[dict]:
        """Keep the live model when the new one is worse beyond the tolerance; else plan the score shards."""
        from dataclasses import asdict

        from airflow.sdk.exceptions import AirflowSkipException

        from recsys.stages.gate import PublishRejected, decide

        params = get_current_context()["params"]
        try:
            decision = decide(_settings(), trained["model_version"], force=bool(params["force_publish"]))
        except PublishRejected as exc:
            raise AirflowSkipException(str(exc)) from exc
        n = int(params["score_shards"])
        return [{"shard": i, "n_shards": n, "reason": asdict(decision)["reason"]} for i in range(n)]

    @task(map_index_template="shard {{ task.op_kwargs['plan']['shard'] }}",
          doc_md="Top-K lists of one user shard (a stable hash of the user id), saved as a scores artifact.")
    def score(extracted: dict, trained: dict, plan: dict) -> str:
        """Top-K lists of one user shard, saved as a scores artifact."""
        from recsys.stages.score import score_shard

        return score_shard(_settings(), extracted["dataset_path"], trained["model_version"],
                           plan["shard"], plan["n_shards"]).path

    @task
    def publish(trained: dict, score_paths: list[str]) -> dict:
        """Write every shard's lists and make them live in one transaction."""
        from dataclasses import asdict

        from recsys.stages.publish import publish_scores

        return asdict(publish_scores(_settings(), _interval().run_date, trained["model_version"], list(score_paths)))

    @task(pool=TRAINING_POOL, trigger_rule="all_done")
    def train_rl(extracted: dict | None) -> dict:
        """Fit REINFORCE with top-K off-policy correction on the window's impressions; register rl_reinforce."""
        from dataclasses import asdict

        from airflow.sdk.exceptions import AirflowSkipException

        from recsys.airflow_support import no_retry_on_bad_input
        from recsys.errors import EmptyWindowError
        from recsys.stages.train_rl import train_rl as fit

        if "rl_reinforce" not in get_current_context()["params"]["models"]:
            raise AirflowSkipException("rl_reinforce is not in this run's models")
        if not extracted:  # all_done: runs after MF's train whatever its state, but needs a dataset
            raise AirflowSkipException("no extracted window for this night")
        try:
            with no_retry_on_bad_input():  # e.g. a log without impressions: no retry can fit it
                return asdict(fit(_settings(), _interval(), extracted["dataset_path"], _triggered_by()))
        except EmptyWindowError as exc:
            raise AirflowSkipException(str(exc)) from exc

    @task
    def score_rl(extracted: dict, trained_rl: dict) -> str:
        """Top-K lists of every user by policy logit, saved as a scores artifact (one shard)."""
        from recsys.stages.train_rl import score_rl as score_all

        return score_all(_settings(), extracted["dataset_path"], trained_rl["model_version"]).path

    @task
    def ope_rl(extracted: dict, trained_rl: dict, score_path: str) -> dict:
        """Off-policy estimate of rl_reinforce's click and D1 return rates on day D-2 (ope_estimates,
        eval_metrics), before its gate: the DR gate compares it with the live version's."""
        from dataclasses import asdict

        from recsys.stages.ope import estimate_candidate

        return asdict(estimate_candidate(_settings(), _interval(), extracted["dataset_path"],
                                         trained_rl["model_version"], score_path))

    @task
    def gate_rl(trained_rl: dict) -> dict:
        """Gate rl_reinforce: under the DR gate its lower bound against the live version's estimate;
        a ranking gate lets it through (no ranking hold-out: A/B arm and OPE read it out)."""
        from dataclasses import asdict

        from airflow.sdk.exceptions import AirflowSkipException

        from recsys.stages.gate import PublishRejected, decide

        force = bool(get_current_context()["params"]["force_publish"])
        try:
            return asdict(decide(_settings(), trained_rl["model_version"], force=force))
        except PublishRejected as exc:
            raise AirflowSkipException(str(exc)) from exc

    @task
    def publish_rl(trained_rl: dict, score_path: str) -> dict:
        """Publish rl_reinforce's lists and make them live, once its gate has let it through."""
        from dataclasses import asdict

        from recsys.stages.publish import publish_scores

        return asdict(publish_scores(_settings(), _interval().run_date, trained_rl["model_version"], [score_path]))

    @task
    def ope_realised() -> dict:
        """Realised D1 return rate of every earlier off-policy estimate whose outcome has matured
        (read from model_retention, so after the night's retention refresh)."""
        from recsys.stages.ope import record_realised

        return {"realised_rows": record_realised(_settings())}

    @task
    def retention() -> dict:
        """Refresh the cohort retention cells that the interval's day completes."""
        from dataclasses import asdict

        from recsys.stages.retention import refresh_retention

        return asdict(refresh_retention(_settings(), _interval().run_date))

    extracted = extract()
    trained = train(extracted)
    metrics = evaluate(extracted, trained)
    shards = gate(trained, metrics)
    scored = score.partial(extracted=extracted, trained=trained).expand(plan=shards)
    publish(trained, scored)
    # BPR, the second MF model: the same stages as ALS's, under its own task ids and live pointer
    trained_bpr = train.override(task_id="train_bpr")(extracted, model="mf_bpr")
    metrics_bpr = evaluate.override(task_id="evaluate_bpr")(extracted, trained_bpr)
    shards_bpr = gate.override(task_id="gate_bpr")(trained_bpr, metrics_bpr)
    scored_bpr = score.override(task_id="score_bpr").partial(extracted=extracted, trained=trained_bpr).expand(
        plan=shards_bpr)
    publish.override(task_id="publish_bpr")(trained_bpr, scored_bpr)
    trained_rl = train_rl(extracted)
    trained >> trained_rl  # MF's item factors initialise RL's item embeddings
    scored_rl = score_rl(extracted, trained_rl)
    # the DR gate reads the candidate's estimate, so the estimate comes before the gate
    ope_rl(extracted, trained_rl, scored_rl) >> gate_rl(trained_rl) >> publish_rl(trained_rl, scored_rl)
    # realised rates come from model_retention, so they wait for the night's refresh
    retention() >> ope_realised()


recsys_nightly()

if __name__ == "__main__":  # guarded: dag.test() at import time would recurse
    recsys_nightly().test()
