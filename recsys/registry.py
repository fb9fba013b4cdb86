"""The model registry: rows of `model_runs` and `eval_metrics`."""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from psycopg2.extras import Json

import recsys
from recsys.config import Settings
from recsys.db import load_sql, raw_connection, require_tables

logger = logging.getLogger(__name__)


def model_version(model: str, run_date: date) -> str:
    """Version string of `model` trained for as-of date `run_date`, e.g. `mf_als@2026-03-01`."""
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
        cur.execute(load_sql("model_run_upsert"), params)
        return cur.fetchone()[0]


def get_run(settings: Settings, version: str) -> ModelRun:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT model, model_kind, model_version, run_date, artifact_path, artifact_sha256, status, metrics"
                    " FROM model_runs WHERE model_version = %s", (version,))
        row = cur.fetchone()
    if row is None:
        raise LookupError(f"model_runs has no model_version {version!r}")
    return ModelRun(*row)


def write_metrics(settings: Settings, version: str, rows: list[dict[str, Any]], summary: dict[str, float]) -> None:
    """Replace the evaluation figures of `version` and copy the summary into model_runs.metrics."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM eval_metrics WHERE model_version = %s", (version,))
        for row in rows:
            cur.execute(load_sql("eval_metrics_write"), {"model_version": version, **row})
        cur.execute("UPDATE model_runs SET metrics = %s WHERE model_version = %s", (Json(summary), version))
    logger.info("metrics of %s: %s", version, json.dumps(summary))
