"""Refresh `live_lists_snapshot`, the materialised copy of the live lists (migration 0010).

The example consumer of the "went live" asset events (`recsys.assets`,
dags/recsys_live_lists_refresh.py) runs this once per triggered run: the snapshot is
refreshed CONCURRENTLY, so its readers see the previous rows until the new ones commit,
and then checked against the events that triggered the run. An event says that a
model's (or the serving alias's) lists of some date went live: after the refresh the
snapshot must hold that name's lists of that date or a newer one. An older date means the
refresh read another database than the one the nightly DAG published to, which a retry
cannot fix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.errors import ConfigurationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotManifest:
    """What the refreshed snapshot holds (small enough for XCom).

    Attributes:
        rows: the snapshot's rows, one per (model, user, rank).
        lists: per model or alias: its `model_version`, `run_date` (ISO), `users` and `rows`.
        checked: the names of the triggering events checked against the snapshot.
        seconds: the refresh's duration.
    """

    rows: int
    lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)
    seconds: float = 0.0


def refresh_live_snapshot(settings: Settings, went_live: Sequence[Mapping[str, Any]] = ()) -> SnapshotManifest:
    """Refresh live_lists_snapshot from live_recommendations and check it against `went_live`.

    Args:
        settings: database and schema.
        went_live: the extras of the "went live" events that triggered the refresh
            (`recsys.assets.went_live_extra`): each names a model (or an `alias`) and a `run_date`.

    Raises:
        SchemaMissingError: the schema is older than migration 0010.
        ConfigurationError: after the refresh, the snapshot holds a name's lists of an older date
            than an event says went live.
    """
    started = time.perf_counter()
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "live_lists_snapshot", "live_recommendations")
        cur.execute(load_sql("snapshot/refresh"))
        cur.execute(load_sql("snapshot/summary"))
        lists = {name: {"model_version": version, "run_date": run_date.isoformat(), "users": int(users),
                        "rows": int(rows)}
                 for name, version, run_date, users, rows in cur.fetchall()}
    seconds = time.perf_counter() - started
    checked = []
    for extra in went_live:
        name = extra.get("alias") or extra.get("model")
        if not name or "run_date" not in extra:  # e.g. an event created by hand in the UI
            logger.info("an event without a model and a run_date, not checked: %s", dict(extra))
            continue
        held = lists.get(name)
        if held is None:  # every item of its lists has expired since: nothing to compare
            logger.warning("the event for %s (%s) went live, but the snapshot has no rows of %s",
                           name, extra.get("model_version"), name)
            continue
        if date.fromisoformat(held["run_date"]) < date.fromisoformat(extra["run_date"]):
            raise ConfigurationError(
                f"live_lists_snapshot in schema {settings.schema} holds {name}'s lists of {held['run_date']} "
                f"({held['model_version']}) after its refresh, but an event says {extra['model_version']} went live "
                f"as {name}: does this DAG read the database the nightly DAG publishes to?")
        checked.append(name)
    manifest = SnapshotManifest(sum(v["rows"] for v in lists.values()), lists, checked, seconds)
    logger.info("refreshed live_lists_snapshot in %.2fs: %d rows; %s", seconds, manifest.rows,
                "; ".join(f"{n} {v['model_version']} ({v['users']} users)" for n, v in lists.items()) or "empty")
    return manifest
