"""Artifact retention: every night writes a dataset, models and score shards under
`<artifact_dir>/<as-of date>/`; this stage deletes what no longer serves a purpose.

* A model's folder `<date>/<model>/` goes once its version is no longer among the
  model's `RECSYS_KEEP_VERSIONS` newest in the registry (the versions whose lists are
  kept as history), unless it is live: a live version's files are never deleted,
  however old (the gate scores it as the champion, the next night warm-starts from it).
* A night's dataset `<date>/dataset.npz` goes once it is older than
  `RECSYS_DATASET_KEEP_DAYS` days before the night's as-of date, unless a live
  version was trained on it.
* Nothing dated on or after the night's own as-of date is touched (a backfill never
  deletes newer nights' files), nor anything written in the last `GRACE` (a night
  running at the same time, a backfill of an old date, is still using it).

* A day of the Spark backend's export (`spark/events/day=<date>/`) goes once it is older
  than the training window plus `RECSYS_DATASET_KEEP_DAYS` (a backfill that far back
  exports it again).

Other folders that are not dated (`closed_loop/`, ...) are left alone. Returns what was
deleted and the bytes freed; `RECSYS_DATASET_KEEP_DAYS=0` keeps every dataset.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.spark import export_root

logger = logging.getLogger(__name__)

GRACE = timedelta(hours=6)  # longer than a night: files this recent may belong to a running one
DATASET_FILE = "dataset.npz"


@dataclass(frozen=True)
class ArtifactCleanup:
    """What the retention deleted (paths relative to the artifact dir) and kept because live."""

    deleted: list[str] = field(default_factory=list)
    kept_live: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def cleanup_artifacts(settings: Settings, run_date: date, now: float | None = None) -> ArtifactCleanup:
    """Delete the artifacts of versions no longer kept and datasets older than the setting.

    `now` (Unix seconds, default the clock) is what the grace period counts from."""
    root = Path(settings.artifact_dir)
    if not root.is_dir():
        return ArtifactCleanup()
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "model_runs", "live_models")
        cur.execute(load_sql("cleanup/kept_versions"), {"keep": settings.keep_versions})
        kept = {(model, day): is_live for model, day, is_live in cur.fetchall()}
    live_days = {day for (_, day), is_live in kept.items() if is_live}
    newest_allowed = (now if now is not None else time.time()) - GRACE.total_seconds()
    oldest_dataset = run_date - timedelta(days=settings.dataset_keep_days)
    doomed: list[Path] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        day = _as_date(folder.name)
        if day is None or day >= run_date:
            continue
        for model_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if (model_dir.name, day) not in kept:
                doomed.append(model_dir)
        dataset = folder / DATASET_FILE
        if settings.dataset_keep_days > 0 and day < oldest_dataset and day not in live_days and dataset.exists():
            doomed.append(dataset)
    doomed += _old_export_days(settings, run_date)
    deleted, freed = [], 0
    for path in doomed:
        if _newest_mtime(path) > newest_allowed:
            logger.info("artifact retention: %s was written in the last %s; kept for now", path, GRACE)
            continue
        size = _size(path)
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        deleted.append(str(path.relative_to(root)))
        freed += size
    for folder in (p for p in root.iterdir() if p.is_dir() and _as_date(p.name) is not None):
        if not any(folder.iterdir()):
            folder.rmdir()  # a night none of whose files is left
    kept_live = sorted(f"{day.isoformat()}/{model}" for (model, day), is_live in kept.items() if is_live
                       and (root / day.isoformat() / model).exists())
    logger.info("artifact retention: deleted %d path(s), %.1f MB freed; live versions kept: %s", len(deleted),
                freed / 1e6, ", ".join(kept_live) or "none")
    return ArtifactCleanup(deleted, kept_live, freed)


def _old_export_days(settings: Settings, run_date: date) -> list[Path]:
    """The Spark export's day folders before the window of a night `RECSYS_DATASET_KEEP_DAYS` ago."""
    root = export_root(settings.artifact_dir)
    if settings.dataset_keep_days <= 0 or not root.is_dir():
        return []
    oldest = run_date - timedelta(days=settings.train_window_days + settings.dataset_keep_days)
    return [folder for folder in sorted(root.glob("day=*"))
            if (day := _as_date(folder.name.removeprefix("day="))) is not None and day < oldest]


def _as_date(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in _files(path))


def _newest_mtime(path: Path) -> float:
    return max([p.stat().st_mtime for p in _files(path)] + [path.stat().st_mtime])
