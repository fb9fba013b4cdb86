"""
### recsys_live_lists_refresh

An example consumer of `recsys_nightly`'s asset events: it runs whenever a set of live
lists changes and refreshes `live_lists_snapshot` (migration 0010), a materialised copy
of `live_recommendations` for readers that want the lists as of one moment.

**Scheduled on** any of `recsys://<schema>/live/<name>` (`recsys/assets.py`), one asset
per model of the catalogue and one for the serving alias (`default`, what serving reads).
A model's publish emits an event on its asset when its lists went live, and the nightly
**choose** step one on the alias's when the alias now serves another version; a
history-only publish (a backfill), a model the gate rejects and a night that leaves the
alias where it was emit none, so they trigger nothing here. Events that arrive while a
run is going are handled by the next run (one at a time).

**refresh** logs each triggering event's `extra` (model or alias, `model_version`,
`run_date`, `live`, and `rows`/`users` from a publish), refreshes the snapshot
CONCURRENTLY (its readers keep the previous rows until the new ones commit) and fails,
without retries, if the snapshot still holds an older date for a name an event says went
live: this DAG would then be reading another database than the nightly DAG writes.

To consume only what serving reads, schedule on `Asset(uri="recsys://<schema>/live/default")`
alone; inside a task, `triggering_asset_events` gives the events.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetAny, dag, task

# Standard library only: the assets' names and the model catalogue.
from recsys import assets
from recsys.catalogue import names

SCHEMA, SERVING_ALIAS = assets.deployment_schema(), assets.deployment_serving_alias()
LIVE_LISTS = ([SERVING_ALIAS] if SERVING_ALIAS else []) + names()


@dag(
    dag_id="recsys_live_lists_refresh",
    schedule=AssetAny(*(Asset(uri=assets.live_uri(SCHEMA, name)) for name in LIVE_LISTS)),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # each run refreshes everything: two at once would only repeat the work
    max_active_runs=1,
    doc_md=__doc__,
    tags=["recsys", "assets"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
)
def recsys_live_lists_refresh():
    @task(doc_md="Log the triggering 'went live' events, refresh live_lists_snapshot (CONCURRENTLY) and check "
                 "that it holds the lists each event names.")
    def refresh() -> dict:
        from airflow.sdk import get_current_context

        from recsys.airflow_support import refresh_live_lists

        return refresh_live_lists(get_current_context())

    refresh()


recsys_live_lists_refresh()

if __name__ == "__main__":  # guarded: dag.test() at import time would recurse
    recsys_live_lists_refresh().test()
