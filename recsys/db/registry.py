"""The model registry: rows of `model_runs` and `eval_metrics`."""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from psycopg2.extras import Json

import recsys
from recsys import catalogue
from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.interval import DataInterval

logger = logging.getLogger(__name__)


def model_version(model: str, run_date: date) -> str:
    """Version string of `model` trained for as-of date `run_date`: `<model>@2026-03-01`."""
    return f"{model}@{run_date.isoformat()}"


def code_version() -> str:
    """Package version plus the git revision of the checkout, where there is one."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(recsys.__file__).parent,
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return f"{recsys.__version__}+g{rev}"
    except (OSError, subprocess.SubprocessError):
        return recsys.__version__


@dataclass(frozen=True)
class ModelRun:
    model: str
    model_kind: str
    model_version: str
    run_date: date
    artifact_path: str
    artifact_sha256: str
    status: str
    metrics: dict[str, Any]


def register_trained(settings: Settings, record: dict[str, Any]) -> str:
    """Insert or replace the `model_runs` row of a freshly trained model."""
    params = {**record, "params": Json(record["params"]), "code_version": code_version()}
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "model_runs")
        cur.execute(load_sql("registry/model_run_upsert"), params)
        return cur.fetchone()[0]


def record_failure(settings: Settings, model: str, interval: DataInterval, stage: str, error: BaseException | str,
                   triggered_by: str = "manual") -> str | None:
    """Mark `model`'s version for the interval's date failed at `stage`; returns the row's status
    (None when the registry itself could not be reached: that is logged, never raised).

    Called once a stage has failed for good (the DAG's failure callback, after
    retries; `recsys run` at once). The row of a version whose lists are live
    keeps 'published' (those lists still serve); otherwise it becomes 'failed'.
    """
    failure = {"stage": stage, "error": str(error)[:2000], "error_type": type(error).__name__
               if isinstance(error, BaseException) else "str", "at": datetime.now(timezone.utc).isoformat()}
    params = {
        "model": model, "model_kind": catalogue.kind_of(model),
        "model_version": model_version(model, interval.run_date), "run_date": interval.run_date,
        "data_interval_start": interval.start, "data_interval_end": interval.end,
        "train_window_start": interval.train_window_start(settings.train_window_days),
        "failure": json.dumps(failure), "triggered_by": triggered_by, "code_version": code_version(),
    }
    try:
        with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
            require_tables(cur, settings.schema, "model_runs", "live_models")
            cur.execute(load_sql("registry/model_run_failed"), params)
            status = cur.fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - the stage's own error is the one to surface
        # (the database being down is often why the stage failed in the first place)
        logger.warning("could not record the failure of %s in model_runs: %s", params["model_version"], exc)
        return None
    logger.error("%s failed at stage %s: %s (model_runs status: %s)", params["model_version"], stage, error, status)
    return status


def get_run(settings: Settings, version: str) -> ModelRun:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("registry/model_run_read"), {"model_version": version})
        row = cur.fetchone()
    if row is None:
        raise LookupError(f"model_runs has no model_version {version!r}")
    return ModelRun(*row)


def write_metrics(settings: Settings, version: str, rows: list[dict[str, Any]], summary: dict[str, float]) -> None:
    """Replace the evaluation figures of `version` and copy the summary into model_runs.metrics."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("registry/eval_metrics_clear"), {"model_version": version})
        for row in rows:
            cur.execute(load_sql("registry/eval_metrics_write"), {"model_version": version, "n_impressions": None,
                                                                  **row})
        cur.execute(load_sql("registry/model_run_metrics_write"), {"metrics": Json(summary), "model_version": version})
    logger.info("metrics of %s: %s", version, json.dumps(summary))
