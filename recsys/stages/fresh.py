"""The hourly job (`recsys_fresh_items`): merge the hour's new items into the live lists.

For the hour [start, end) of a model (by default `hybrid`, the model that places an item
from its text): the catalogue items whose availability starts in the hour and that are
still available at its end are embedded with the live model's stored encoder, scored
against its stored user vectors (`cold_item_factors`, a dot product, as the score stage
does), and each user's list becomes the top-K of her live list's items and the new items
she has not seen, by that score. The result is a new version `<model>@YYYY-MM-DDTHH`
(the hour's end, UTC), published by `recsys.stages.publish.publish_lists` in one
transaction; it moves `live_models.lists_version` only (the live model stays the night's),
so the next nightly publish supersedes it (docs/fresh.md).

A re-run of an hour merges into the lists its first run merged into, with the same model
(fresh_lists records both), so it gives the same lists.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from psycopg2 import sql

from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.db.registry import get_run
from recsys.errors import ConfigurationError, NothingFresh
from recsys.models.content import item_text
from recsys.models.hybrid import HybridModel, cold_item_factors
from recsys.models.saved import load_model
from recsys.source import inspect_source
from recsys.stages.embed import load_encoder, load_vectors
from recsys.stages.publish import FreshTarget, lists_partition, publish_lists

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FreshManifest:
    model: str
    model_version: str       # the hour's lists version
    base_version: str
    base_lists: str
    run_date: str            # the base model's as-of date (ISO)
    hour_end: str            # ISO, UTC
    new_items: int
    users: int
    users_changed: int
    live: bool
    seconds: float


def fresh_version(model: str, hour_end: datetime) -> str:
    """`<model>@YYYY-MM-DDTHH`, the hour's end in UTC: it sorts after the night's `<model>@YYYY-MM-DD`
    and after every earlier hour, which fresh/make_live.sql relies on."""
    return f"{model}@{hour_end.astimezone(timezone.utc):%Y-%m-%dT%H}"


def run_fresh_hour(settings: Settings, hour_start: datetime, hour_end: datetime,
                   model: str = "hybrid") -> FreshManifest:
    """Merge the items that became available in [hour_start, hour_end) into `model`'s live lists.

    Raises:
        NothingFresh: no new item in the hour (or none with a text), or `model` is not live.
        ConfigurationError: the live version of `model` is not a hybrid model.
    """
    started = time.perf_counter()
    version = fresh_version(model, hour_end)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "items", "live_models", "fresh_lists", "model_runs")
        cur.execute(load_sql("fresh/new_items"), {"hour_start": hour_start, "hour_end": hour_end})
        rows = cur.fetchall()
        if not rows:
            raise NothingFresh(f"no catalogue item became available in [{hour_start}, {hour_end}): nothing to merge")
        cur.execute(load_sql("fresh/live_read"), {"model": model})
        live = cur.fetchone()
        if live is None:
            raise NothingFresh(f"no {model} model is live: there are no user vectors to score the new items with")
        base_version, base_lists = live[0], live[1]
        cur.execute(load_sql("fresh/hour_read"), {"model_version": version})
        earlier = cur.fetchone()
        if earlier is not None and earlier[1] != version:
            cur.execute(load_sql("fresh/partition_exists"), {"table": lists_partition(model, earlier[1])})
            if cur.fetchone()[0]:  # a re-run: the same model and lists as the first run
                base_version, base_lists = earlier
        if base_lists == version:  # the hour's own lists are live: merge into what they were built from
            raise NothingFresh(f"{version} is live and its base lists are gone: nothing to rebuild it from")
        cur.execute(sql.SQL(load_sql("fresh/base_lists")).format(
            table=sql.Identifier(lists_partition(model, base_lists))))
        base = cur.fetchall()
        source = inspect_source(cur, settings)
        ids = [int(r[0]) for r in rows]
        cur.execute(sql.SQL(load_sql("fresh/seen")).format(source=source.relation()),
                    {"ids": ids, "hour_end": hour_end})
        seen = cur.fetchall()
    run = get_run(settings, base_version)
    saved = load_model(Path(run.artifact_path), expected_sha256=run.artifact_sha256)
    if not isinstance(saved, HybridModel):
        raise ConfigurationError(f"live_models.model_version: {base_version} is not a hybrid model (no content map)")
    item_ids, vectors = _vectors(settings, saved.meta["encoder_version"], rows)
    if not len(item_ids):
        raise NothingFresh(f"none of the {len(rows)} items of [{hour_start}, {hour_end}) has a text to embed")

    user_ids, ranks, out_items, out_scores, changed = merge_lists(
        saved, item_ids, cold_item_factors(saved.content_map, vectors), base, seen, settings.k)
    live_now = publish_lists(settings, model, version, run.run_date, user_ids, ranks, out_items, out_scores,
                             fresh=FreshTarget(base_version, base_lists, hour_start, hour_end, len(item_ids)))
    manifest = FreshManifest(model, version, base_version, base_lists, run.run_date.isoformat(),
                             hour_end.astimezone(timezone.utc).isoformat(), len(item_ids), len(base), changed,
                             live_now, round(time.perf_counter() - started, 3))
    logger.info("%s: %d new items merged into %s (%d of %d users' lists changed) in %.2fs (%s)", version,
                len(item_ids), base_lists, changed, len(base), manifest.seconds,
                "live" if live_now else "history only: newer lists are live")
    return manifest


def _vectors(settings: Settings, encoder_version: str, rows: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, vectors) of the new items in the model's space: stored vectors where the night
    embedded them already, else encoded with the stored encoder; items without text are left out."""
    texts = {int(r[0]): item_text(r[1], r[2], r[3]) for r in rows}
    texts = {i: t for i, t in texts.items() if t}
    if not texts:
        return np.empty(0, np.int64), np.empty((0, 0), np.float32)
    stored_ids, stored = load_vectors(settings, encoder_version, item_ids=np.array(sorted(texts)))
    found = dict(zip(stored_ids.tolist(), stored))
    todo = sorted(set(texts) - set(found))
    if todo:
        encoded = load_encoder(settings, encoder_version).encode([texts[i] for i in todo])
        found.update(zip(todo, np.asarray(encoded, np.float32)))
    ids = np.array(sorted(found), dtype=np.int64)
    return ids, np.stack([found[i] for i in ids.tolist()]).astype(np.float32)


def merge_lists(model: HybridModel, new_ids: np.ndarray, new_factors: np.ndarray, base: list[tuple],
                seen: list[tuple], k: int, chunk_users: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                           np.ndarray, int]:
    """Each base list's users' top-k of (her list's items, the new items she has not seen and that
    are not in her list), by score; users the model does not know keep their list.

    Returns (user_ids, ranks, item_ids, scores) one entry per recommendation sorted by user and
    rank, and how many lists changed. Ties keep the list's items first, then the lower item id.
    Users are scored `chunk_users` at a time, so memory stays at chunk x new items, not users x new items.
    """
    n_users = len(base)
    width = max([k] + [len(r[1]) for r in base]) if base else k
    users = np.array([r[0] for r in base], dtype=np.int64)
    base_items = np.full((n_users, width), -1, np.int64)
    base_scores = np.full((n_users, width), -np.inf, np.float32)
    for n, (_, items, scores) in enumerate(base):
        base_items[n, :len(items)], base_scores[n, :len(items)] = items, scores
    row_of = {u: n for n, u in enumerate(model.user_ids.tolist())}
    at = np.array([row_of.get(u, -1) for u in users.tolist()], dtype=np.int64)
    col_of = {i: n for n, i in enumerate(new_ids.tolist())}
    row_of_user = {u: n for n, u in enumerate(users.tolist())}
    blocked = [(row_of_user[u], col_of[i]) for u, i in seen if u in row_of_user and i in col_of]
    # a new item already in a user's list (a backfilled hour merging into later lists) is not listed twice
    listed = np.isin(base_items, new_ids)
    for r, c in zip(*np.nonzero(listed)):
        blocked.append((int(r), col_of[int(base_items[r, c])]))
    blocked_rows = np.array([b[0] for b in blocked], dtype=np.int64)
    blocked_cols = np.array([b[1] for b in blocked], dtype=np.int64)
    top = min(k, len(new_ids))
    out_items = np.empty((n_users, k), np.int64)
    out_scores = np.empty((n_users, k), np.float32)
    changed = 0
    for lo in range(0, n_users, chunk_users):
        hi = min(lo + chunk_users, n_users)
        rows = at[lo:hi]
        known = rows >= 0
        scores = np.full((hi - lo, len(new_ids)), -np.inf, np.float32)
        scores[known] = model.user_factors[rows[known]] @ new_factors.T
        mine = (blocked_rows >= lo) & (blocked_rows < hi)
        scores[blocked_rows[mine] - lo, blocked_cols[mine]] = -np.inf
        # the chunk's best `top` new items, then in score order (ties: the lower item id, as new_ids is sorted)
        best = np.argpartition(-scores, top - 1, axis=1)[:, :top] if top < len(new_ids) else \
            np.broadcast_to(np.arange(len(new_ids)), scores.shape)
        best = np.sort(best, axis=1)
        cand_items = np.hstack([base_items[lo:hi], new_ids[best]])
        cand_scores = np.hstack([base_scores[lo:hi], np.take_along_axis(scores, best, axis=1)])
        order = np.argsort(-cand_scores, axis=1, kind="stable")[:, :k]
        out_items[lo:hi] = np.take_along_axis(cand_items, order, axis=1)
        out_scores[lo:hi] = np.take_along_axis(cand_scores, order, axis=1)
        changed += int(((order >= width) & np.isfinite(out_scores[lo:hi])).any(axis=1).sum())
    keep = np.isfinite(out_scores)
    ranks = np.cumsum(keep, axis=1)[keep]
    return (np.repeat(users, keep.sum(axis=1)), ranks.astype(np.int64), out_items[keep],
            out_scores[keep].astype(np.float32), changed)
