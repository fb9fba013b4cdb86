"""
### recsys_nightly

Nightly retraining of the recommenders on the interaction log in PostgreSQL.

Each run covers one data interval, the day before its as-of date D
(`[D-1 00:00, D 00:00)` UTC): **extract** reads the training window ending at
D with COPY, **train** fits implicit ALS, **evaluate** scores it and a
popularity baseline on the window's last day, **publish** writes top-K lists
per user and makes them live in one transaction, and **retention** refreshes
the cohort retention cells that day D-1 completes.

A backfill of a past date trains only on data before that date and never
replaces the live lists of a newer date. A night with no new events is shown
as *skipped*: nothing is trained or published and yesterday's lists stay live.

Output tables (schema `recsys`): `model_runs`, `eval_metrics`,
`live_recommendations`, `retention`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task


def _settings():
    """Settings from RECSYS_* variables; the `recsys_db` connection supplies the URL when unset."""
    from recsys.config import Settings

    overrides = {}
    if "RECSYS_DATABASE_URL" not in os.environ:
        from airflow.sdk import Connection

        uri = Connection.get("recsys_db").get_uri()
        overrides["database_url"] = "postgresql+psycopg2://" + uri.split("://", 1)[1]
    params = get_current_context()["params"]
    overrides.update(k=int(params["k"]), train_window_days=int(params["train_window_days"]))
    return Settings.from_env(**overrides)


def _interval():
    from recsys.interval import DataInterval

    context = get_current_context()
    dag_run = context["dag_run"]
    return DataInterval.from_airflow(
        context.get("data_interval_start"), context.get("data_interval_end"), dag_run.run_after
    )


def _triggered_by() -> str:
    run_type = get_current_context()["dag_run"].run_type
    return getattr(run_type, "value", str(run_type))


@dag(
    dag_id="recsys_nightly",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    # Backfills can reach back to this date; set it to where your log starts.
    start_date=pendulum.parse(os.environ.get("RECSYS_DAG_START_DATE", "2026-01-01"), tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["recsys"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    params={
        "k": Param(10, type="integer", minimum=1, maximum=500, title="Recommendations per user"),
        "train_window_days": Param(90, type="integer", minimum=1, maximum=3650, title="Training window (days)"),
    },
)
def recsys_nightly():
    @task
    def extract() -> dict:
        """Read the training window with COPY; skip the night when the interval is empty."""
        from dataclasses import asdict

        from airflow.sdk.exceptions import AirflowSkipException

        from recsys.errors import EmptyWindowError
        from recsys.extract import extract_window

        try:
            return asdict(extract_window(_settings(), _interval()))
        except EmptyWindowError as exc:
            raise AirflowSkipException(str(exc)) from exc

    @task
    def train(extracted: dict) -> dict:
        """Fit implicit ALS on the window and register it in model_runs."""
        from dataclasses import asdict

        from recsys.train import train_mf

        return asdict(train_mf(_settings(), _interval(), extracted["dataset_path"], _triggered_by()))

    @task
    def evaluate(extracted: dict, trained: dict) -> dict:
        """Recall@K and NDCG@K of the model and of popularity on the last day of the window."""
        from recsys.holdout import evaluate_mf

        return evaluate_mf(_settings(), _interval(), extracted["dataset_path"], trained["model_version"])

    @task
    def publish(extracted: dict, trained: dict, metrics: dict) -> dict:
        """Write top-K per user and make it live in one transaction."""
        from dataclasses import asdict

        from recsys.publish import publish_mf

        interval = _interval()
        return asdict(publish_mf(_settings(), interval.run_date, extracted["dataset_path"], trained["model_version"]))

    @task
    def retention() -> dict:
        """Refresh the cohort retention cells that the interval's day completes."""
        from dataclasses import asdict

        from recsys.retention import refresh_retention

        return asdict(refresh_retention(_settings(), _interval().run_date))

    extracted = extract()
    trained = train(extracted)
    metrics = evaluate(extracted, trained)
    publish(extracted, trained, metrics)
    retention()


recsys_nightly()

if __name__ == "__main__":  # guarded: dag.test() at import time would recurse
    recsys_nightly().test()
