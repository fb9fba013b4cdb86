"""The Spark backend's steps around the job: prepare it, submit it (outside Airflow), read it back.

`prepare_fit` is the night's `spark_export` step: it refuses the backend when no Spark can be
submitted to, exports the window (`recsys.spark.export`), and writes the job file that
`als_job.py` reads. In Airflow the `spark_fit` step is a `SparkSubmitOperator` against the
`spark_default` connection; `recsys run` calls `submit` instead, with `RECSYS_SPARK_MASTER`.
The train, evaluate and score stages then read the job's output with `load_factors` and
`load_top_k`.

Matched settings: Spark's ALS and the torch ALS both weigh an observed pair 1 + alpha * r and
an unobserved one 1. Spark scales each row's L2 weight by the row's observed pairs (n_u * λ,
ALS-WR); the torch fit with `reg_exponent = 0` uses λ for every row. `spark_reg_param` passes
λ / mean(n_u), so the average user row carries the same weight in both.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from recsys.config import ALSConfig, Settings
from recsys.dataset import WindowDataset
from recsys.errors import ConfigurationError, DataValidationError, ModelFitError, OtherBackend
from recsys.interval import DataInterval
from recsys.models.topk import TopK
from recsys.spark import JOB_PATH, python_conf

logger = logging.getLogger(__name__)


def job_dir(settings: Settings, interval: DataInterval, model: str) -> Path:
    """`<artifact_dir>/<as-of date>/<model>/spark/`: the job file and, under `out/`, what the job writes."""
    return Path(settings.artifact_dir) / interval.run_date.isoformat() / model / "spark"


def output_dir(settings: Settings, interval: DataInterval, model: str) -> Path:
    return job_dir(settings, interval, model) / "out"


def check_available() -> None:
    """Raises ConfigurationError, naming the setting, when spark-submit or Java cannot be found."""
    missing = []
    if shutil.which("spark-submit") is None:
        missing.append("no spark-submit on PATH (pip install pyspark, or put a Spark distribution's bin/ on PATH)")
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        missing.append("no Java (java on PATH or JAVA_HOME; Spark needs Java 17 or newer)")
    if missing:
        raise ConfigurationError("RECSYS_MF_BACKEND=spark (or the run's mf_backend param) but " + "; ".join(missing)
                                 + ": install them, or set RECSYS_MF_BACKEND=torch")


def spark_reg_param(config: ALSConfig, matrix_pairs: int, n_users: int) -> float:
    """The regParam that gives the mean user row the torch fit's L2 weight (module doc)."""
    if config.reg_exponent != 0:
        logger.warning("the spark backend scales each row's regularisation by its observed pairs (ALS-WR); "
                       "RECSYS_ALS_REG_EXPONENT=%s is not reproduced", config.reg_exponent)
    if config.unobserved_weight != 1:
        logger.warning("pyspark.ml's ALS weighs every unobserved pair 1; RECSYS_ALS_UNOBSERVED_WEIGHT=%s is not "
                       "reproduced", config.unobserved_weight)
    return float(config.regularization) / max(matrix_pairs / max(n_users, 1), 1.0)


def capped_users(dataset: WindowDataset, limit: int) -> dict[str, float]:
    """{user id: earliest kept event time} of the users the extract capped at `limit` events (bots):
    the job drops their older exported events as the extract did. A user with exactly `limit`
    events is listed too; her cut-off is her first event, which drops nothing."""
    if limit <= 0 or not dataset.n_events:
        return {}
    counts = np.bincount(dataset.user_index, minlength=len(dataset.user_ids))
    heavy = np.flatnonzero(counts >= limit)
    if not len(heavy):
        return {}
    earliest = np.full(len(dataset.user_ids), np.inf)
    np.minimum.at(earliest, dataset.user_index, dataset.ts)
    return {str(int(dataset.user_ids[u])): float(earliest[u]) for u in heavy}


def prepare_fit(settings: Settings, interval: DataInterval, dataset_path: str, model: str) -> dict[str, Any]:
    """Export the window and write the job file; returns where they are (the spark_fit step's input).

    Raises:
        OtherBackend: the run fits on torch.
        ConfigurationError: the spark backend is chosen but cannot be submitted.
        EmptyWindowError: the window holds no positive event.
    """
    from recsys.spark.export import export_window
    from recsys.stages.score import unavailable_items

    if settings.mf_backend != "spark":
        raise OtherBackend(f"{model} is fitted on {settings.mf_backend} this run (RECSYS_MF_BACKEND or the "
                           "mf_backend param): nothing for Spark to do")
    check_available()
    dataset = WindowDataset.load(Path(dataset_path))
    for column, ids in (("user_id", dataset.user_ids), ("item_id", dataset.item_ids)):
        if len(ids) and int(ids.max()) >= 2**31:
            # pyspark.ml's ALS keys rows by 32-bit integers
            raise DataValidationError(settings.source_table, column, (
                f"ids up to {int(ids.max())}: the spark backend needs ids below 2**31 (map them in the view, or "
                "keep text keys, which recsys numbers from 1)"))
    export = export_window(settings, interval)
    positives = dataset.positive_mask(settings.positive_types)
    pairs = dataset.user_item_matrix(positives)
    n_users = int((np.diff(pairs.indptr) > 0).sum())
    config = settings.als
    last_day = settings.holdout == "last_day" and settings.holdout_last_n <= 0
    unavailable = unavailable_items(settings, interval.run_date, dataset.item_ids)
    job = {
        "name": f"recsys-{model}-{interval.run_date.isoformat()}",
        "day_paths": list(export.day_paths),
        "window_start_ts": interval.train_window_start(settings.train_window_days).timestamp(),
        "window_end_ts": interval.end.timestamp(),
        "half_life_days": float(settings.mf_decay_half_life_days),
        # the evaluate stage holds out the window's last day: the job fits the days before it too
        "holdout_before_ts": (interval.end - timedelta(days=1)).timestamp() if last_day else None,
        "als": {"rank": int(min(config.factors, *pairs.shape)), "max_iter": int(config.iterations),
                "reg_param": spark_reg_param(config, pairs.nnz, n_users), "alpha": float(config.alpha),
                "seed": int(config.seed)},
        "k": int(settings.k),
        "exclude_items": [int(i) for i in dataset.item_ids[unavailable]],
        "user_min_ts": capped_users(dataset, settings.max_events_per_user),
        "output": str(output_dir(settings, interval, model)),
    }
    directory = job_dir(settings, interval, model)
    shutil.rmtree(directory, ignore_errors=True)  # a re-run never reads an earlier run's output
    directory.mkdir(parents=True)
    path = directory / "job.json"
    path.write_text(json.dumps(job, indent=1))
    logger.info("spark job for %s: %d positive events in %d day file(s) (%d written, %d unchanged), rank %d, "
                "regParam %.4g, alpha %s, %d iterations -> %s", model, export.n_events, len(export.day_paths),
                export.days_written, export.days_reused, job["als"]["rank"], job["als"]["reg_param"],
                job["als"]["alpha"], job["als"]["max_iter"], path)
    return {"job_path": str(path), "output": job["output"], "n_events": export.n_events,
            "days_written": export.days_written, "days_reused": export.days_reused,
            "export_seconds": round(export.seconds, 3)}


def submit(settings: Settings, job_path: str) -> dict[str, Any]:
    """spark-submit the job to `settings.spark_master` and wait (what `recsys run` does in place of
    the DAG's SparkSubmitOperator); returns the job's `_job.json`.

    Raises:
        ConfigurationError: no spark-submit or Java.
        ModelFitError: the job failed (the tail of its output is in the message).
    """
    check_available()
    command = ["spark-submit", "--master", settings.spark_master, "--name", json.loads(Path(job_path).read_text())[
        "name"], *_conf_flags(), str(JOB_PATH), job_path]
    logger.info("submitting %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ModelFitError(f"spark-submit exited with {done.returncode} for {job_path}:\n"
                            + failure_summary(done.stderr or done.stdout))
    return json.loads((Path(json.loads(Path(job_path).read_text())["output"]) / "_job.json").read_text())


def failure_summary(output: str, tail: int = 15) -> str:
    """What a failed job's output says: its first lines naming an exception or error (a Java stack
    trace's tail is only frames), then its last lines."""
    lines = output.splitlines()
    named = [line for line in lines if ("Exception" in line or "Error" in line) and not line.startswith("\tat ")]
    return "\n".join([*dict.fromkeys(named[:5]), "...", *lines[-tail:]])


def _conf_flags() -> list[str]:
    return [flag for name, value in python_conf().items() for flag in ("--conf", f"{name}={value}")]


def job_result(output: Path) -> dict[str, Any]:
    """The job's `_job.json` (its seconds per part).

    Raises:
        ModelFitError: the job did not finish (no `_job.json`): the spark_fit step did not run or failed.
    """
    marker = output / "_job.json"
    if not marker.exists():
        raise ModelFitError(f"no finished Spark job in {output}: the spark_fit step did not run or did not finish")
    return json.loads(marker.read_text())


def load_factors(output: Path, dataset: WindowDataset, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(user factors, item factors) of the job's fit, in the dataset's user and item order; a user or
    item the fit never saw (no positive event) gets zeros, as in the torch fit."""
    users = _factor_rows(output / f"{prefix}user_factors")
    items = _factor_rows(output / f"{prefix}item_factors")
    rank = users[1].shape[1] if len(users[0]) else items[1].shape[1]
    return _aligned(*users, dataset.user_ids, rank), _aligned(*items, dataset.item_ids, rank)


def load_top_k(output: Path, user_ids: np.ndarray, item_ids: np.ndarray, users: np.ndarray) -> TopK:
    """The job's top-K rows of the users at positions `users` of `user_ids`, as a TopK over the
    dataset's positions (ordered by user, then rank)."""
    import pyarrow.parquet as pq

    table = pq.read_table(output / "top_k").to_pandas()
    user_pos = np.searchsorted(user_ids, table["user_id"].to_numpy(np.int64))
    item_pos = np.searchsorted(item_ids, table["item_id"].to_numpy(np.int64))
    keep = np.isin(user_pos, users)
    order = np.lexsort((table["rank"].to_numpy()[keep], user_pos[keep]))
    return TopK(user_pos[keep][order].astype(np.int64), item_pos[keep][order].astype(np.int64),
                table["rank"].to_numpy(np.int32)[keep][order], table["score"].to_numpy(np.float32)[keep][order])


def _factor_rows(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(path).to_pandas()
    ids = table["id"].to_numpy(np.int64)
    vectors = np.stack(table["features"].to_numpy()).astype(np.float32) if len(table) else np.zeros((0, 1), np.float32)
    return ids, vectors


def _aligned(ids: np.ndarray, vectors: np.ndarray, wanted: np.ndarray, rank: int) -> np.ndarray:
    out = np.zeros((len(wanted), rank), dtype=np.float32)
    position = np.searchsorted(wanted, ids)
    known = (position < len(wanted)) & (wanted[np.minimum(position, len(wanted) - 1)] == ids)
    out[position[known]] = vectors[known]
    return out
