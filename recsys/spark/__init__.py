"""The Spark backend of the MF model (RECSYS_MF_BACKEND=spark): the hand-off to Apache Spark.

A window that outgrows one worker is fitted by `pyspark.ml.recommendation.ALS` on a Spark
cluster instead of the torch ALS of `recsys.models.mf.als`:

1. `recsys.spark.export` writes the window's positive events from PostgreSQL to Parquet files
   in the artifact store, one directory per UTC day, rewriting only the days that are new or
   changed;
2. `als_job.py` (this directory; pyspark, numpy and pandas only, so a cluster runs it without
   recsys installed) is submitted with spark-submit (in Airflow: `SparkSubmitOperator` against
   the `spark_default` connection): it fits implicit ALS on the same confidences, computes each
   user's top-K without her seen items, and fits the hold-out model the evaluate stage reads;
3. `recsys.spark.backend` reads its factors and lists back: the train step registers them as a
   version of the same model (`model_runs.params->>'backend'` says spark), and the evaluate,
   gate, score and publish stages run on them as they run on a torch fit.

Standard library only: the DAG file imports `JOB_PATH` when it is parsed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# What spark-submit runs.
JOB_PATH = Path(__file__).resolve().parent / "als_job.py"
# The backends of the MF model (RECSYS_MF_BACKEND, the nightly DAG's `mf_backend` param).
BACKENDS = ("torch", "spark")
# The catalogue's models that a run can send to Spark.
SPARK_MODELS = ("mf_als",)


def export_root(artifact_dir: str | Path) -> Path:
    """The day files of a deployment's log (`recsys.spark.export`): `<artifact_dir>/spark/events/`."""
    return Path(artifact_dir) / "spark" / "events"


def python_conf() -> dict[str, str]:
    """Spark properties that run the job's Python on this interpreter: the driver (client mode, on
    this worker) always, the executors unless RECSYS_SPARK_PYTHON names a cluster's own Python
    (which needs pyspark, numpy, pandas and pyarrow)."""
    return {"spark.pyspark.python": os.environ.get("RECSYS_SPARK_PYTHON") or sys.executable,
            "spark.pyspark.driver.python": sys.executable,
            # ALS's deep task graphs (and local mode's executor threads) need more than the JVM's 1 MB stack
            "spark.driver.extraJavaOptions": "-Xss16m", "spark.executor.extraJavaOptions": "-Xss16m"}
