"""Extract stage: read one training window from PostgreSQL with COPY.

Reads the configured source (the `interactions` table or a team's own view,
read through `recsys.source`: text ids mapped, absent columns NULL) for
`[interval.end - train_window_days, interval.end)`, validates it, and writes a
`WindowDataset` artifact. New text keys of the window get their internal ids
here, before anything reads them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from psycopg2 import sql

from recsys.config import Settings
from recsys.dataset import EVENT_TYPES, NO_SESSION, WindowDataset
from recsys.db.engine import copy_out_to_file, load_sql, raw_connection
from recsys.errors import DataValidationError, EmptyWindowError
from recsys.interval import DataInterval
from recsys.source import assign_keys, describe_shape, inspect_source
from recsys.time_outliers import FarPastDays, find_far_past_days

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class ExtractManifest:
    """Small summary passed between stages (safe for XCom)."""

    dataset_path: str
    n_events: int
    n_users: int
    n_items: int
    n_interval_events: int


def dataset_path(settings: Settings, interval: DataInterval) -> Path:
    return Path(settings.artifact_dir) / interval.run_date.isoformat() / "dataset.npz"


def extract_window(settings: Settings, interval: DataInterval) -> ExtractManifest:
    """Read, validate and store the training window ending at the interval end.

    Raises:
        SchemaMissingError: the source table or view does not exist.
        EmptyWindowError: no event arrived in the run's data interval.
        DataValidationError: a column holds values the models cannot use.
    """
    started = time.perf_counter()
    window = {"start": interval.train_window_start(settings.train_window_days), "end": interval.end}
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        log = inspect_source(cur, settings)
        describe_shape(log)
        if not log.direct and (log.keyed("user_id") or log.keyed("item_id")):
            assign_keys(cur, log, window["start"], window["end"])
            conn.commit()  # the new ids must be visible to the readers, and stay if the night fails later
        source = log.relation()
        cur.execute(sql.SQL(load_sql("extract/count_interval_events")).format(source=source),
                    {"start": interval.start, "end": interval.end})
        n_interval = cur.fetchone()[0]
        cur.execute(sql.SQL(load_sql("extract/count_future_events")).format(source=source))
        n_future, first_future, now = cur.fetchone()
        if n_future:
            # never read while they stay in the future: each window ends at its interval end
            logger.warning("%d events in %s are dated after the time of this run (%s), the first at %s: "
                           "ignored until then; check the clock of whatever writes them",
                           n_future, settings.source_table, now.isoformat(), first_future.isoformat())
        if n_interval == 0:
            raise EmptyWindowError(
                f"no events in {settings.source_table} for the data interval "
                f"[{interval.start.isoformat()}, {interval.end.isoformat()}): nothing to train or publish"
            )
        # the window's CSV goes to a file beside the dataset, not to memory, and is parsed in chunks:
        # the text and a Python string per event type were half of the extract's peak (docs/scaling.md)
        with copy_out_to_file(cur, sql.SQL(load_sql("extract/window")).format(source=source), window,
                              dataset_path(settings, interval).parent) as csv:
            frame = read_window_csv(csv)
    read_s = time.perf_counter() - started
    dataset = _to_dataset(frame, settings.source_table, settings.max_events_per_user, now.timestamp(),
                          settings.event_type_names)
    if settings.mf_confidence == "value":
        # refused here, before any model trains on the night (the training computes it again)
        dataset.strengths("value", settings.type_weights, settings.source_table,
                          dataset.positive_mask(settings.positive_types))
        if not log.has("value"):
            logger.warning("%s has no value column but RECSYS_MF_CONFIDENCE=value: every event's MF confidence is "
                           "its type's weight", settings.source_table)
    if log.has("session_id"):  # without the column, describe_shape has said what that turns off
        _report_holdout_impressions(settings, dataset, interval)
    path = dataset.save(dataset_path(settings, interval))
    manifest = ExtractManifest(str(path), dataset.n_events, len(dataset.user_ids), len(dataset.item_ids), n_interval)
    logger.info(
        "extracted %d events (%d in the interval) of %d users and %d items from %s in %.2fs (read %.2fs, %.0f rows/s)",
        manifest.n_events, n_interval, manifest.n_users, manifest.n_items, settings.source_table,
        time.perf_counter() - started, read_s, manifest.n_events / max(read_s, 1e-9),
    )
    return manifest


WINDOW_COLUMNS = ("user_id", "item_id", "event_type", "ts", "value", "session_id")
CSV_CHUNK_ROWS = 1_000_000


def read_window_csv(csv: IO[bytes], chunk_rows: int | None = None) -> pd.DataFrame:
    """The window's COPY output as one frame, parsed `chunk_rows` (CSV_CHUNK_ROWS) rows at a time.

    Each chunk's event types become a category (a byte a row where a Python string took about
    sixty), so the peak is the compact frame, not the text; `_to_dataset` validates the whole,
    so its counts cover every chunk.
    """
    parts = [chunk for chunk in pd.read_csv(
        csv, header=None, names=list(WINDOW_COLUMNS), dtype={"event_type": "category", "session_id": "Int64"},
        na_values=[""], keep_default_na=False, chunksize=chunk_rows or CSV_CHUNK_ROWS)]
    # one category list for all chunks, or concat would fall back to Python strings
    types = pd.CategoricalDtype(sorted(set().union(*(p["event_type"].cat.categories for p in parts))))
    for part in parts:
        part["event_type"] = part["event_type"].astype(types)
    return pd.concat(parts, ignore_index=True)


def _to_dataset(frame: pd.DataFrame, table: str, max_events_per_user: int = 0,
                now_ts: float | None = None, event_types: tuple[str, ...] = EVENT_TYPES) -> WindowDataset:
    """Validate the window's rows and turn them into a dataset.

    Rules (each breach is a DataValidationError naming table, column and problem):
    ids are non-NULL non-negative integers; event types are in `event_types` (the
    built-in ones, then those RECSYS_EVENT_TYPES declares); values are not
    NaN or infinite; no event is dated before 1970 or after `now_ts`; the window has
    at least two users and two items. Repairs, each counted in the log: exact
    duplicate events are kept once; a user with more than `max_events_per_user`
    events (a bot) keeps only the latest that many.
    """
    for column in ("user_id", "item_id"):
        ids = frame[column]
        if ids.isna().any():
            raise DataValidationError(table, column, f"{int(ids.isna().sum())} rows have NULL {column}")
        if not pd.api.types.is_integer_dtype(ids):
            raise DataValidationError(table, column, f"ids must be integers, got {ids.dtype}")
        if (ids < 0).any():
            raise DataValidationError(table, column, f"{int((ids < 0).sum())} negative ids, e.g. {int(ids[ids < 0].iloc[0])}")
    known = frame["event_type"].isin(event_types)
    if not known.all():
        bad = frame.loc[~known, "event_type"]
        # refused, not dropped: a type nobody declared is a mapping the team has not written yet, and
        # training without it would publish lists that silently ignore part of the log
        raise DataValidationError(table, "event_type",
                                  f"{len(bad)} rows with unknown event types {sorted(map(str, bad.unique()[:5]))}; "
                                  f"expected one of {list(event_types)}: declare the others in RECSYS_EVENT_TYPES "
                                  "(name:role[:weight], e.g. buy:positive:4), or map or filter them in the view")
    if not pd.api.types.is_numeric_dtype(frame["value"]):
        # COPY writes NaN as the word NaN, NULL as nothing: only NaN leaves the column as text
        nan = frame["value"].astype("string").str.lower().eq("nan").fillna(False)
        if nan.any():
            raise DataValidationError(table, "value", f"{int(nan.sum())} rows hold NaN")
    values = frame["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        raise DataValidationError(table, "value", f"{int(np.isinf(values).sum())} rows hold infinity")
    ts = frame["ts"].to_numpy(np.float64)
    if (ts < 0).any():
        raise DataValidationError(table, "event_time", f"{int((ts < 0).sum())} events dated before 1970-01-01, "
                                  f"e.g. {pd.Timestamp(ts[ts < 0][0], unit='s', tz='UTC').isoformat()}")
    if now_ts is not None and (ts > now_ts).any():
        raise DataValidationError(table, "event_time", f"{int((ts > now_ts).sum())} events in the window are dated "
                                  f"after the time of the run, e.g. {pd.Timestamp(ts[ts > now_ts][0], unit='s', tz='UTC').isoformat()}: "
                                  "the data interval has not happened yet, or a producer's clock is wrong")
    frame = frame.assign(value=values)
    report_far_past_events(ts, table)
    frame = _drop_duplicates(frame, table)
    if max_events_per_user > 0:
        frame = _cap_users(frame, table, max_events_per_user)
    user_ids, user_index = np.unique(frame["user_id"].to_numpy(np.int64), return_inverse=True)
    item_ids, item_index = np.unique(frame["item_id"].to_numpy(np.int64), return_inverse=True)
    for column, ids in (("user_id", user_ids), ("item_id", item_ids)):
        if len(ids) < 2:
            raise DataValidationError(table, column, f"the window holds a single {column[:4]} ({column} {int(ids[0])}): "
                                      "collaborative filtering needs at least two users and two items")
    codes = pd.Categorical(frame["event_type"], categories=list(event_types)).codes.astype(np.int8)
    sessions = None
    if "session_id" in frame and frame["session_id"].notna().any():
        sessions = frame["session_id"].astype("Int64").to_numpy(dtype=np.int64, na_value=NO_SESSION)
    return WindowDataset(
        user_ids=user_ids, item_ids=item_ids,
        user_index=user_index.astype(np.int32), item_index=item_index.astype(np.int32),
        event_code=codes, ts=frame["ts"].to_numpy(np.float64), value=frame["value"].to_numpy(np.float64),
        event_types=tuple(event_types), session_id=sessions,
    )


def _report_holdout_impressions(settings: Settings, dataset: WindowDataset, interval: DataInterval) -> None:
    """Say once a night whether the evaluate stage will have impressions to compute AUC, MRR and nDCG
    per impression on (recsys.stages.evaluate), and if not, why."""
    if settings.holdout != "last_day" or settings.holdout_last_n > 0:
        logger.info("per-impression metrics skipped: they are computed on the window's last day, and the hold-out "
                    "is %s", f"each user's last {settings.holdout_last_n} events" if settings.holdout_last_n > 0
                    else settings.holdout)
        return
    slots = dataset.shown_slots(settings.impression_types, settings.rl_click_types,
                                (interval.end - timedelta(days=1)).timestamp(), interval.end.timestamp())
    if not len(slots):
        logger.info("per-impression metrics skipped: %s has no impression with a session_id on the hold-out day "
                    "%s", settings.source_table, (interval.end - timedelta(days=1)).date().isoformat())
    else:
        logger.info("hold-out day: %d shown slots with a session, %d clicked, for the per-impression metrics",
                    len(slots), int(slots.clicked.sum()))


def report_far_past_events(ts: np.ndarray, table: str) -> FarPastDays | None:
    """Warn about events isolated far before the bulk of the window; returns what was found, or None.

    See `recsys.time_outliers.find_far_past_days`. The events are kept: only the
    team knows whether they are real.
    """
    if not len(ts):
        return None
    days, counts = np.unique((ts // 86400).astype(np.int64), return_counts=True)
    epoch = date(1970, 1, 1)
    found = find_far_past_days([(epoch + timedelta(days=int(d)), int(n)) for d, n in zip(days, counts)])
    if found is not None:
        logger.warning("%s: %s: a test event or a clock reset? They are trained on; set "
                       "RECSYS_TRAIN_WINDOW_DAYS or filter them in the view if they are not real",
                       table, found.describe("events"))
    return found


def _drop_duplicates(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Keep one of each set of identical events (a producer that delivered twice); the same item shown
    at the same time in two sessions is two events."""
    # rows come ordered by event_time, so identical events sit in runs of equal ts: only those are hashed
    ts = frame["ts"]
    candidates = (ts.eq(ts.shift()) | ts.eq(ts.shift(-1))).to_numpy()
    if not candidates.any():
        return frame
    duplicate = np.zeros(len(frame), dtype=bool)
    columns = [c for c in ("user_id", "item_id", "event_type", "ts", "value", "session_id") if c in frame]
    duplicate[candidates] = frame.loc[candidates, columns].duplicated().to_numpy()
    if duplicate.any():
        logger.warning("%s: dropped %d duplicate events (same user, item, type, time and value; kept one of each)",
                       table, int(duplicate.sum()))
        frame = frame.loc[~duplicate].reset_index(drop=True)
    return frame


def _cap_users(frame: pd.DataFrame, table: str, limit: int) -> pd.DataFrame:
    """Keep the latest `limit` events of every user above it, and report those users."""
    counts = frame["user_id"].value_counts()
    over = counts[counts > limit]
    if over.empty:
        return frame
    heavy = frame["user_id"].isin(over.index).to_numpy()
    # rows come ordered by event_time: the last `limit` of each heavy user are its latest
    from_end = frame.loc[heavy].groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
    keep = np.ones(len(frame), dtype=bool)
    keep[np.flatnonzero(heavy)[from_end >= limit]] = False
    shown = ", ".join(f"{int(u)} ({int(n)} events)" for u, n in over.head(10).items())
    logger.warning("%s: capped %d user(s) at max_events_per_user=%d, dropping %d older events: %s%s",
                   table, len(over), limit, int((~keep).sum()), shown, ", ..." if len(over) > 10 else "")
    return frame.loc[keep].reset_index(drop=True)
