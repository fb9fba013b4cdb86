"""
### recsys_closed_loop

The closed-loop simulator (`recsys/sim/`) as a DAG: each simulated day is served
from the published tables and logged, then the nightly retraining runs on it, so
that the next day is served by the models it produced. The same functions as
`recsys simulate --closed-loop --days N` (the CLI), with the same defaults; for a
seed it writes the same rows.

**Trigger it by hand** (`schedule=None`) with the run's parameters, e.g.
`airflow dags trigger recsys_closed_loop -c '{"days": 14, "users": 1500, "items": 300, "seed": 1}'`.
One run is one whole simulation, shown day by day: task group `day_NN` holds
**simulate** (the day's active users split into arms by a stable hash of their id,
each served a slate from its model's live lists with `explore` per-slot exploration;
impressions with their propensities and serving version, clicks and consumption
written to `interactions`; the ground truth to `sim_user_days`) and **nightly**
(`recsys.pipeline.run_night` for as-of date day + 1: the catalogue's default models plus
the models among the arms, published without the gate unless `gate` is set). Groups run strictly in
order. **setup** draws the world and writes the catalogue (`items`, `sim_items`).

Why a fixed number of day groups: the days of a closed loop are sequential (day d+1
is served by the models that night d published), so they cannot be a mapped task,
and one run per simulated day would tie the simulated calendar to the DAG's logical
dates and spread one experiment over many runs. So the file generates
`RECSYS_SIM_MAX_DAYS` (default 60) day groups at parse time and the `days` parameter
says how many of them run: the night after the last day marks every later group
*skipped* in one go.

The world lives across days in state files (`<artifact_dir>/closed_loop/<run_id>/
state_dayNNN.npz`, `recsys.sim.stepwise`): each simulate task reads the state before
its day and writes the next one, so a retry repeats the day exactly and replaces its
rows. Workers must share `RECSYS_ARTIFACT_DIR`, as for the nightly DAG. The state and
`sim_*` tables are ground truth: no model reads them.

It writes to the `recsys_db` database like `recsys_nightly` and moves the same live
pointers: run it on a simulation database, not next to production traffic. One run
at a time. A day serves whatever is live when it runs, so a second run (or a day
cleared after later nights) on the same database starts from the models the first
left live: compare experiments on fresh databases.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, TaskGroup, dag, get_current_context, task

# Standard library only: the model catalogue.
from recsys.catalogue import closed_loop_arms, names

# Day groups generated at parse time; the `days` param picks how many of them run.
MAX_DAYS = int(os.environ.get("RECSYS_SIM_MAX_DAYS", "60"))
BASELINE_ARMS = ["random", "popularity"]  # recsys.sim.closed_loop.BASELINE_ARMS: served by the simulator itself
ARMS = BASELINE_ARMS + names()
TRAINING_POOL = os.environ.get("RECSYS_TRAINING_POOL", "recsys_training")


def _settings():
    from recsys.airflow_support import settings_for_task

    return settings_for_task()


@dag(
    dag_id="recsys_closed_loop",
    schedule=None,  # an experiment, triggered by hand; its calendar is the `start_date` param
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # two simulations at once would serve each other's models: they share the live tables
    max_active_runs=1,
    doc_md=__doc__,
    tags=["recsys", "simulation"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    params={
        "days": Param(28, type="integer", minimum=1, maximum=MAX_DAYS, title="Simulated days",
                      description=f"each followed by a nightly retraining; at most {MAX_DAYS} "
                                  "(RECSYS_SIM_MAX_DAYS, read when the file is parsed)"),
        "users": Param(2000, type="integer", minimum=1, maximum=10_000_000, title="Users",
                       description="users of the world; they arrive over the run, most of them early"),
        "items": Param(1000, type="integer", minimum=20, maximum=10_000_000, title="Items",
                       description="catalogue size (at least twice the slate of 10)"),
        "seed": Param(7, type="integer", minimum=0, title="Seed",
                      description="seeds the world and the serving; rows go to source closed_loop:seed=<seed>"),
        "start_date": Param("2026-01-01", type="string", format="date", title="First simulated day",
                            description="the simulated calendar: day d is start_date + d"),
        "arms": Param(BASELINE_ARMS + closed_loop_arms(), type="array",
                      items={"type": "string", "enum": ARMS}, minItems=1, uniqueItems=True, title="Arms",
                      description="users are split among these by a stable hash of their id; models are served "
                                  "from their live lists and trained each night"),
        "explore": Param(0.1, type="number", minimum=0, maximum=1, title="Exploration",
                         description="per-slot probability that a model arm shows a uniformly drawn item"),
        "gate": Param(False, type="boolean", title="Let the MF gate keep an older model",
                      description="off (default): every arm serves its newest model, as RL does, so the A/B "
                                  "compares like with like"),
        "run_nightly": Param(True, type="boolean", title="Retrain after each day",
                             description="off: the nightly tasks do nothing (the CLI's --no-nightly)"),
    },
)
def recsys_closed_loop():
    @task
    def setup() -> dict:
        """Draw the world, write the catalogue (`items`, `sim_items`) and save the state before day 0."""
        from datetime import date

        from recsys.airflow_support import no_retry_on_bad_input
        from recsys.sim.closed_loop import sim_source
        from recsys.sim.stepwise import init_state, run_directory

        context = get_current_context()
        p = context["params"]
        settings = _settings()
        with no_retry_on_bad_input():
            path = init_state(settings, run_directory(settings, context["dag_run"].run_id), days=int(p["days"]),
                              users=int(p["users"]), items=int(p["items"]), seed=int(p["seed"]),
                              start_date=date.fromisoformat(p["start_date"]), arms=tuple(p["arms"]),
                              explore=float(p["explore"]))
        return {"state_path": str(path), "sim_source": sim_source(int(p["seed"])), "days": int(p["days"])}

    @task
    def simulate(state: dict, day: int) -> dict:
        """Serve the day's users from the live lists, log impressions (with propensities and serving
        versions), clicks and consumption to `interactions`, the ground truth to `sim_user_days`."""
        from dataclasses import asdict
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowSkipException

        from recsys.airflow_support import no_retry_on_bad_input
        from recsys.sim.stepwise import simulate_day

        days = int(get_current_context()["params"]["days"])
        if day >= days:
            raise AirflowSkipException(f"this run simulates {days} days (0 .. {days - 1})")
        with no_retry_on_bad_input():
            return asdict(simulate_day(_settings(), Path(state["state_path"]), day))

    @task(pool=TRAINING_POOL)
    def nightly(simulated: dict) -> dict:
        """The nightly retraining for as-of date day + 1 (run_night): MF and the RL arms' models, published.
        After the run's last day it skips every later day group at once."""
        from datetime import date

        from airflow.sdk.exceptions import DownstreamTasksSkipped

        from recsys.airflow_support import no_retry_on_bad_input
        from recsys.interval import DataInterval
        from recsys.pipeline import run_night

        context = get_current_context()
        p = context["params"]
        run_date = date.fromisoformat(simulated["run_date"])
        manifest: dict = {"run_date": run_date.isoformat(), "skipped": "run_nightly is off"}
        if p["run_nightly"]:
            extra = tuple(a for a in p["arms"] if a in ARMS and a not in BASELINE_ARMS)  # model arms
            with no_retry_on_bad_input():
                report = run_night(_settings(), DataInterval.for_date(run_date), triggered_by="simulate",
                                   extra_models=extra, force_publish=not p["gate"])
            manifest = {"run_date": report.run_date, "skipped": report.skipped,
                        "trained": {stage: result["model_version"] for stage, result in report.results.items()
                                    if stage.endswith(".train") and isinstance(result, dict)
                                    and "model_version" in result},
                        "seconds": {stage: round(s, 2) for stage, s in report.seconds.items()}}
        later = [t.task_id for t in context["task"].get_flat_relatives(upstream=False)]
        if simulated["day"] + 1 >= int(p["days"]) and later:
            # Skipping the unused groups here, all at once, spares the scheduler one loop per
            # group level that letting each skip reach the next would cost (~2 per day).
            context["ti"].xcom_push(key="return_value", value=manifest)
            raise DownstreamTasksSkipped(tasks=later)
        return manifest

    state, night = setup(), None
    for day in range(MAX_DAYS):
        with TaskGroup(f"day_{day:02d}", tooltip=f"simulated day {day}, then the night after it"):
            simulated = simulate.override(task_id="simulate")(state, day)
            next_night = nightly.override(task_id="nightly")(simulated)
        if night is not None:
            night >> simulated  # day d is served by what night d - 1 published
        state, night = simulated, next_night


recsys_closed_loop()

if __name__ == "__main__":  # guarded: dag.test() at import time would recurse
    recsys_closed_loop().test()
