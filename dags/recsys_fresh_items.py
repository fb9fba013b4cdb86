"""
### recsys_fresh_items: new items in the live lists between nights

Every hour, for its data interval [start, end): the catalogue items whose availability
starts in the hour (`available_from`, else `published_at`) and that are still available
at its end are embedded with the live model's stored encoder, scored against its stored
user vectors, and merged into each user's live list of that model (`model` param,
`hybrid`): the top-K of her list's items and the new items she has not seen. The result
is a new version `<model>@YYYY-MM-DDTHH` (the hour's end) made live in one transaction;
the next nightly publish supersedes it. An hour with no new item, or no live model to
score with, is **skipped**, not failed. A re-run of an hour gives the same lists; an
older hour's backfill fills history and never goes live. When the hour's lists went live,
an event goes out on `recsys://<schema>/live/hybrid` (as the nightly publish's). See docs/fresh.md.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import AssetAlias, CronDataIntervalTimetable, Param, dag, task

# Standard library only: the assets' names.
from recsys import assets

MODEL = "hybrid"
SCHEMA = assets.deployment_schema()


@dag(
    dag_id="recsys_fresh_items",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.parse(os.environ.get("RECSYS_DAG_START_DATE", "2026-01-01"), tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["recsys"],
    params={
        "model": Param(MODEL, type="string", description="the live model whose lists take the hour's items"),
        "k": Param(10, type="integer", minimum=1, maximum=500, title="Recommendations per user"),
    },
)
def recsys_fresh_items():  # noqa: ANN201
    @task(doc_md="Merge the hour's new items into the live lists (recsys.stages.fresh); skipped when none. "
                 "When they went live, emit an event on the asset recsys://<schema>/live/<model>.",
          outlets=[AssetAlias(assets.went_live_alias(SCHEMA, MODEL))])
    def merge_new_items() -> dict:
        from airflow.sdk import get_current_context

        from recsys.airflow_support import run_fresh_task

        return run_fresh_task(get_current_context())

    merge_new_items()


recsys_fresh_items()
