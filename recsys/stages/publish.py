"""Publish stage: top-K per active user, written with COPY, made live atomically.

Each model version gets its own partition of `recommendation_lists`: one row
per user, the list as arrays in rank order (migration 0005 says why), read
through the views `recommendations` and `live_recommendations`, one row per
recommendation. The publish transaction builds the new partition under a
staging name (binary COPY, then a unique index on user_id), moves the live
pointer, redefines `live_recommendations` over each model's live partition,
drops the partition of an earlier attempt at the same version, attaches the
new one and marks the registry — all in one transaction, so a reader sees the
old version or the new one, never a mix or an empty list, and a failure leaves
the old tables live. An advisory lock per model serialises concurrent
publishes; versions beyond `keep_versions` are dropped.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from psycopg2 import sql

from recsys.config import Settings
from recsys.db.copy_binary import recommendation_list_rows
from recsys.db.copy_text import NULL, array_element, array_literal, copy_text_field
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.db.registry import get_run
from recsys.source import keyed_id_columns

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FreshTarget:
    """An hourly version's lists (recsys.stages.fresh): published like a night's, but made live
    by moving only live_models.lists_version, and recorded in fresh_lists instead of model_runs."""

    base_version: str        # the live model the new items were scored with
    base_lists: str          # the lists they were merged into
    hour_start: datetime
    hour_end: datetime
    new_items: int


@dataclass(frozen=True)
class PublishManifest:
    model_version: str
    rows: int
    users: int
    live: bool
    seconds: float


def publish_scores(settings: Settings, run_date: date, version: str, score_paths: list[str]) -> PublishManifest:
    """Publish the scores artifacts of every shard of `version` in one transaction."""
    started = time.perf_counter()
    parts = []
    for path in score_paths:
        with np.load(path) as data:
            parts.append({key: data[key] for key in ("user_id", "rank", "item_id", "score")})
    merged = {key: np.concatenate([p[key] for p in parts]) for key in ("user_id", "rank", "item_id", "score")}
    if not np.isfinite(merged["score"]).all():
        raise ValueError(f"scores of {version} contain NaN/inf: not published")
    users_per_shard = [np.unique(p["user_id"]) for p in parts]
    if sum(map(len, users_per_shard)) != len(np.unique(merged["user_id"])):
        raise ValueError(f"score shards of {version} overlap: a user appears in two shards")
    run = get_run(settings, version)
    live = publish_lists(settings, run.model, version, run_date, merged["user_id"], merged["rank"],
                         merged["item_id"], merged["score"])
    n_users = len(np.unique(merged["user_id"]))
    manifest = PublishManifest(version, len(merged["rank"]), n_users, live, time.perf_counter() - started)
    logger.info("published %s: %d rows for %d users from %d shard(s) in %.2fs (%s)", version, manifest.rows,
                n_users, len(score_paths), manifest.seconds, "live" if live else "history only: a newer date is live")
    return manifest


def partition_name(model: str, run_date: date) -> str:
    """Table holding one version's lists: `recommendations_<model>_<yyyymmdd>`."""
    return f"recommendations_{model}_{run_date:%Y%m%d}"


def lists_partition(model: str, lists_version: str) -> str:
    """Table holding the lists of `lists_version`: a night's `model@YYYY-MM-DD` is
    `partition_name`'s table; an hour's `model@YYYY-MM-DDTHH` (recsys.stages.fresh) is
    `recommendations_<model>_<yyyymmdd>t<hh>`."""
    tag = lists_version.rsplit("@", 1)[1]
    if "T" not in tag:
        return partition_name(model, date.fromisoformat(tag))
    return f"recommendations_{model}_{tag.replace('-', '').lower()}"


def publish_lists(settings: Settings, model: str, version: str, run_date: date, user_ids: np.ndarray,
                  ranks: np.ndarray, item_ids: np.ndarray, scores: np.ndarray,
                  fresh: FreshTarget | None = None) -> bool:
    """Write one version's lists as a partition and make it live; True when it went live.

    `fresh` makes it an hourly version (`model@YYYY-MM-DDTHH`, recsys.stages.fresh): the same
    transaction, but fresh/make_live.sql moves the live lists (not the live model), the hour
    is recorded in fresh_lists, and the hourly partitions beyond `keep_versions` are dropped.

    Input: one entry per recommendation; each user's ranks must run 1, 2, 3, ...
    (they become array positions). Rows are sent with binary COPY, one per user.

    Raises:
        ValueError: a user's ranks have a gap or a repeat.
    """
    user_ids, ranks = np.asarray(user_ids), np.asarray(ranks)
    if len(user_ids) > 1:
        step = np.diff(user_ids)
        if not ((step > 0) | ((step == 0) & (np.diff(ranks) > 0))).all():  # shards arrive sorted: skip the sort
            order = np.lexsort((ranks, user_ids))
            user_ids, ranks, item_ids, scores = user_ids[order], ranks[order], item_ids[order], scores[order]
    _check_ranks(version, user_ids, ranks)
    payload = recommendation_list_rows(model, version, run_date, user_ids, item_ids, scores)
    partition = partition_name(model, run_date) if fresh is None else lists_partition(model, version)
    staging = f"{partition}_staging"
    ident = sql.Identifier
    drop_table = sql.SQL(load_sql("publish/lists_table_drop"))
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "recommendation_lists", "live_models", "model_runs")
        # plumbing, kept inline: serialise publishes of one model
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('recsys.stages.publish'), hashtext(%s))", (model,))
        user_keyed, item_keyed = keyed_id_columns(cur, settings)
        cur.execute(load_sql("publish/catalogue_has_expiries"))
        expiries = cur.fetchone()[0]
        t0 = time.perf_counter()
        cur.execute(drop_table.format(table=ident(staging)))
        cur.execute(sql.SQL(load_sql("publish/staging_create")).format(staging=ident(staging)))
        # the lists go straight into the staging table, or, when they need the log's keys or the
        # catalogue's expiries beside the ids, through a temporary table that one INSERT enriches
        enrich = user_keyed or item_keyed or expiries
        if enrich:
            cur.execute(load_sql("publish/numeric_lists_create"))
        cur.copy_expert(sql.SQL(load_sql("publish/staging_copy")).format(
            staging=ident("numeric_lists" if enrich else staging)).as_string(cur), payload)
        if enrich:
            cur.execute(load_sql("publish/list_extras_create"))
            extras = _list_extras(cur, user_ids, item_ids, user_keyed, item_keyed, expiries)
            cur.copy_expert("COPY list_extras (user_id, user_key, item_keys, item_expires) FROM STDIN", extras)
            cur.execute(sql.SQL(load_sql("publish/staging_fill_keys")).format(staging=ident(staging)))
            cur.execute("DROP TABLE numeric_lists, list_extras")  # plumbing: free them now, not at commit
        copy_s = time.perf_counter() - t0
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")  # plumbing: memory for the index build below
        cur.execute(sql.SQL(load_sql("publish/staging_index")).format(index=ident(f"{staging}_user"),
                                                                      staging=ident(staging)))
        if user_keyed:
            cur.execute(sql.SQL(load_sql("publish/staging_key_index")).format(index=ident(f"{staging}_user_key"),
                                                                              staging=ident(staging)))
        cur.execute(sql.SQL(load_sql("publish/staging_constraints")).format(
            staging=ident(staging), version_check=ident(f"{staging}_version"), model_check=ident(f"{staging}_model")),
            {"model_version": version, "model": model})
        if fresh is None:
            cur.execute(load_sql("publish/make_live"), {"model": model, "model_version": version,
                                                        "run_date": run_date})
        else:
            cur.execute(load_sql("fresh/make_live"), {"model": model, "base_version": fresh.base_version,
                                                      "lists_version": version, "hour_end": fresh.hour_end})
        went_live = cur.fetchone() is not None
        # the view must stop referencing the old table of this version before it is dropped
        define_live_view(cur, model if went_live else None, staging)
        cur.execute(drop_table.format(table=ident(partition)))
        cur.execute(sql.SQL(load_sql("publish/staging_rename")).format(
            staging=ident(staging), partition=ident(partition),
            staging_index=ident(f"{staging}_user"), partition_index=ident(f"{partition}_user")))
        if user_keyed:
            cur.execute(sql.SQL(load_sql("publish/index_rename")).format(
                index=ident(f"{staging}_user_key"), new_name=ident(f"{partition}_user_key")))
        cur.execute(sql.SQL(load_sql("publish/partition_attach")).format(partition=ident(partition)),
                    {"model_version": version})
        if fresh is None:
            cur.execute(load_sql("publish/mark_status"), {"model": model, "model_version": version})
            cur.execute(load_sql("publish/expired_versions"), {"model": model, "keep": settings.keep_versions})
        else:
            cur.execute(load_sql("fresh/record"), {
                "model_version": version, "model": model, "base_version": fresh.base_version,
                "base_lists": fresh.base_lists, "run_date": run_date, "hour_start": fresh.hour_start,
                "hour_end": fresh.hour_end, "new_items": fresh.new_items, "users": int(len(np.unique(user_ids)))})
            cur.execute(load_sql("fresh/expired"), {"model": model, "model_version": version,
                                                    "keep": settings.keep_versions})
        for (expired,) in cur.fetchall():
            cur.execute(drop_table.format(table=ident(lists_partition(model, expired))))
            logger.info("dropped the lists of %s (keeping %d versions)", expired, settings.keep_versions)
        publish_s = time.perf_counter() - t0
    logger.info("published %d rows of %s in %.2fs (COPY %.2fs)", len(ranks), version, publish_s, copy_s)
    return went_live


def _list_extras(cur, user_ids: np.ndarray, item_ids: np.ndarray, user_keyed: bool,  # noqa: ANN001 - cursor
                 item_keyed: bool, expiries: bool) -> io.StringIO:
    """Text COPY rows (user_id, user_key, item_keys, item_expires), one per user, for list_extras.

    Inputs are one entry per recommendation, sorted by user and rank. Each distinct
    item's array element is written once and reused; the per-user work is one join.
    """
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]]) if len(user_ids) else np.empty(0, np.int64)
    bounds = np.r_[starts, len(user_ids)].tolist()
    users = user_ids[starts]
    distinct_items, item_at = np.unique(item_ids, return_inverse=True)

    def elements(query: str) -> np.ndarray:
        cur.execute(query, {"ids": distinct_items.tolist()})
        found = dict(cur.fetchall())
        return np.array([array_element(found.get(i)) for i in distinct_items.tolist()], dtype=object)[item_at]

    user_key = [None] * len(users)
    if user_keyed:
        cur.execute(load_sql("publish/user_keys_of"), {"ids": users.tolist()})
        found = dict(cur.fetchall())
        user_key = [found.get(u) for u in users.tolist()]
    key_elements = elements(load_sql("publish/item_keys_of")).tolist() if item_keyed else None
    expiry_elements = elements(load_sql("publish/item_expiries_of")).tolist() if expiries else None
    lines = []
    for n, user in enumerate(users.tolist()):
        lo, hi = bounds[n], bounds[n + 1]
        keys = copy_text_field(array_literal(key_elements[lo:hi])) if key_elements is not None else NULL
        until = array_literal(expiry_elements[lo:hi]) if expiry_elements is not None else NULL
        lines.append(f"{user}\t{copy_text_field(user_key[n])}\t{keys}\t{until}\n")
    return io.StringIO("".join(lines))


def _check_ranks(version: str, user_ids: np.ndarray, ranks: np.ndarray) -> None:
    """Each user's ranks, sorted, must be 1..n: they are stored as array positions."""
    if not len(user_ids):
        return
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]])
    position = np.arange(len(user_ids)) - np.repeat(starts, np.diff(np.r_[starts, len(user_ids)])) + 1
    bad = np.flatnonzero(ranks != position)
    if bad.size:
        raise ValueError(f"lists of {version}: user {int(user_ids[bad[0]])} has rank {int(ranks[bad[0]])} where "
                         f"{int(position[bad[0]])} was expected (ranks must run 1, 2, 3, ... per user)")


def define_live_view(cur, model: str | None = None, table_of_model: str | None = None) -> None:  # noqa: ANN001
    """Point live_recommendations at each model's live table (`model`'s at `table_of_model`, the
    partition a publish is building), and each serving alias at its model's.

    Takes a transaction-level lock first: two publishes of different models (or a publish and
    the choose stage) would otherwise each read the live versions before the other commits and
    the later definition would point one model back at its old table.
    """
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('recsys.live_recommendations'))")  # plumbing: the view lock
    cur.execute(load_sql("publish/live_partitions"))
    branch = sql.SQL(load_sql("publish/live_recommendations_branch"))
    tables = {live_model: table_of_model if live_model == model and table_of_model
              else lists_partition(live_model, lists_version) for live_model, lists_version in cur.fetchall()}
    branches = [branch.format(table=sql.Identifier(table), model=sql.Literal(live_model))
                for live_model, table in tables.items()]
    cur.execute(load_sql("publish/live_aliases"))
    for alias, alias_model, _ in cur.fetchall():
        branches.append(branch.format(table=sql.Identifier(tables[alias_model]), model=sql.Literal(alias)))
    query = (sql.SQL(" UNION ALL ").join(branches) if branches
             else sql.SQL(load_sql("publish/live_recommendations_empty")))
    cur.execute(sql.SQL(load_sql("publish/live_recommendations_view")).format(branches=query))


def get_run_date(version: str) -> date:
    """As-of date of a version string `model@YYYY-MM-DD`."""
    return date.fromisoformat(version.rsplit("@", 1)[1])
