"""Airflow assets of the live lists: their URIs, and the extra of a "went live" event.

`recsys://<schema>/live/<name>` stands for the rows of `live_recommendations WHERE
model = '<name>'` in that schema: a model's live lists (`recsys://recsys/live/mf_als`)
or a serving alias's (`recsys://recsys/live/default`, what serving reads). An event
on it means those lists changed and are live now:

* a model's publish emits one when its lists went live; a history-only publish (a
  backfill of a date older than the live one) emits none, and a model the gate
  rejects has no publish, hence no event;
* the hourly job (`recsys_fresh_items`, recsys.stages.fresh) emits one on its model's asset
  when the hour's lists went live (not when it was skipped, nor for an older hour's backfill,
  which is history only);
* the choose step emits one for the serving alias when the alias now serves another
  version than it did by the previous choice (`AliasChoice.changed`); a backfill, which
  never moves the alias, and a night that leaves it on the same version (the winner's
  gate rejected tonight's version, or a re-run of the same night) emit none.

A task may only emit events for assets known when its DAG was parsed, unless it
declares an asset alias and adds the asset to it at run time, emitting nothing when
it adds none. So each emitting task declares the alias `went_live_alias(schema,
name)` and `recsys.airflow_support` adds `live_uri(schema, name)` to it only when
the lists went live: a consumer scheduled on the asset runs only then.

Standard library only, no Airflow: the DAG files build their `Asset` and
`AssetAlias` objects from these strings when they are parsed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import quote

SCHEME = "recsys"
# the stages whose task moves a set of live lists, hence may emit a "went live" event
EMITTING_STAGES = frozenset({"publish", "choose", "fresh"})


def live_uri(schema: str, name: str) -> str:
    """The asset of the live lists of `name` (a model or a serving alias) in `schema`."""
    return f"{SCHEME}://{quote(schema, safe='')}/live/{quote(name, safe='')}"


def went_live_alias(schema: str, name: str) -> str:
    """The asset alias a task declares to emit `live_uri(schema, name)`'s events at run time."""
    return f"{SCHEME}.went_live.{schema}.{name}"


def deployment_schema() -> str:
    """RECSYS_SCHEMA as the DAG files read it when parsed (Settings.schema's default when unset)."""
    return os.environ.get("RECSYS_SCHEMA", "recsys")


def deployment_serving_alias() -> str:
    """RECSYS_SERVING_ALIAS as the DAG files read it when parsed; "" when the alias is off."""
    return os.environ.get("RECSYS_SERVING_ALIAS", "default")


def lists_moved_by(stage: str, model: str | None, serving_alias: str) -> str | None:
    """The name whose live lists a step of `stage` moves: its model for a publish, the
    serving alias for the choose step (None when the alias is off); None for the others."""
    if stage in ("publish", "fresh"):
        return model
    if stage == "choose":
        return serving_alias or None
    return None


def went_live_extra(stage: str, model: str | None, run_date: date, result: Mapping[str, Any]) -> dict | None:
    """The extra of the event a step's manifest calls for, or None when its lists did not go live.

    Publish (`recsys.stages.publish.PublishManifest` as a dict): {"model", "model_version",
    "run_date", "live", "rows", "users"}; None when `live` is false (history only).
    Choose (`recsys.stages.choose.AliasChoice` as a dict): {"alias", "model", "model_version",
    "served_before", "run_date", "live", "reason"}; None when the alias did not move (a backfill,
    no candidate) or still serves the version it served before.
    Fresh (`recsys.stages.fresh.FreshManifest` as a dict): {"model", "model_version" (the hour's
    lists), "base_version" (the model scored with), "run_date", "hour_end", "live", "users",
    "new_items"}; None when `live` is false.
    `live` is always true in an emitted event: it is there so that a consumer can say so.
    """
    if stage == "fresh":
        if not result.get("live"):
            return None
        return {"model": model, "model_version": result["model_version"], "base_version": result["base_version"],
                "run_date": run_date.isoformat(), "hour_end": result["hour_end"], "live": True,
                "users": int(result["users"]), "new_items": int(result["new_items"])}
    if stage == "publish":
        if not result.get("live"):
            return None
        return {"model": model, "model_version": result["model_version"], "run_date": run_date.isoformat(),
                "live": True, "rows": int(result["rows"]), "users": int(result["users"])}
    if stage == "choose":
        if not result.get("moved") or result["model_version"] == result.get("served_before"):
            return None
        return {"alias": result["alias"], "model": result["model"], "model_version": result["model_version"],
                "served_before": result.get("served_before"), "run_date": run_date.isoformat(), "live": True,
                "reason": result["reason"]}
    return None
