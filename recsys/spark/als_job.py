"""spark-submit application: implicit ALS on a window's exported events, and each user's top-K.

    spark-submit --master local[2] recsys/spark/als_job.py <job.json>

The job file (written by `recsys.spark.backend.prepare_fit`) names the window's day files, the
as-of time, the decay, the ALS values and where to write. Each (user, item) pair's rating is
the sum of its events' strengths times 2 ** (-age / half-life) (no decay when the half-life is
0): the confidence the torch fit sees (`recsys.stages.train.mf_strengths`); a user the extract
capped (`user_min_ts`, a bot) keeps only her events from the cut-off on. The job writes, as
Parquet under the output directory:

* `user_factors/`, `item_factors/` (id, features): `pyspark.ml.recommendation.ALS` with
  implicit preferences fitted on the whole window;
* `top_k/` (user_id, rank, item_id, score): each user's K best items without the items she
  has already interacted with and without the excluded (unavailable) items, scored in
  batches against the broadcast item factors;
* `holdout_user_factors/`, `holdout_item_factors/` when the job has a hold-out time: the same
  fit on the events before it, which the evaluate stage scores on the hold-out day;
* `_job.json` last: the seconds of each part; the train step reads nothing without it.

Self-contained on purpose (pyspark, numpy, pandas and the standard library): a cluster runs it
without recsys installed.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path

logger = logging.getLogger("recsys.spark.als_job")


def ratings(spark, job: dict, before_ts: float | None = None):  # noqa: ANN001, ANN201 - SparkSession -> DataFrame
    """(user_id, item_id, rating) of the window's events before `before_ts` (None: all of them)."""
    from pyspark.sql import functions as F

    events = spark.read.parquet(*job["day_paths"])
    events = events.where((F.col("ts") >= job["window_start_ts"]) & (F.col("ts") < job["window_end_ts"]))
    if before_ts is not None:
        events = events.where(F.col("ts") < before_ts)
    if job.get("user_min_ts"):  # the users the extract capped (bots) keep their latest events only
        cutoffs = spark.createDataFrame([(int(u), float(t)) for u, t in job["user_min_ts"].items()],
                                        "user_id long, min_ts double")
        events = (events.join(F.broadcast(cutoffs), "user_id", "left")
                  .where(F.col("min_ts").isNull() | (F.col("ts") >= F.col("min_ts"))).drop("min_ts"))
    weight = F.col("strength")
    if job["half_life_days"] > 0:
        age_days = F.greatest(F.lit(job["window_end_ts"]) - F.col("ts"), F.lit(0.0)) / 86_400.0
        weight = weight * F.pow(F.lit(2.0), -age_days / job["half_life_days"])
    return (events.groupBy("user_id", "item_id").agg(F.sum(weight).alias("rating"))
            .select(F.col("user_id").cast("int"), F.col("item_id").cast("int"), "rating"))


def fit(pairs, als: dict, blocks: int):  # noqa: ANN001, ANN201 - DataFrame -> ALSModel
    from pyspark.ml.recommendation import ALS

    return ALS(rank=als["rank"], maxIter=als["max_iter"], regParam=als["reg_param"], alpha=als["alpha"],
               implicitPrefs=True, userCol="user_id", itemCol="item_id", ratingCol="rating", seed=als["seed"],
               nonnegative=False, coldStartStrategy="drop", numUserBlocks=blocks, numItemBlocks=blocks).fit(pairs)


def top_k(spark, model, pairs, k: int, exclude_items: list[int], batch_users: int = 2048):  # noqa: ANN001, ANN201
    """Each user's `k` best items by dot product, without her rated items and `exclude_items`."""
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F

    items = model.itemFactors.orderBy("id").toPandas()
    item_ids = items["id"].to_numpy(np.int64)
    item_matrix = np.stack(items["features"].to_numpy()).astype(np.float32) if len(items) else np.zeros((0, 1))
    excluded = np.isin(item_ids, np.asarray(exclude_items, dtype=np.int64))
    shared = spark.sparkContext.broadcast((item_ids, item_matrix, excluded))
    seen = pairs.groupBy("user_id").agg(F.collect_list("item_id").alias("seen"))
    users = model.userFactors.withColumnRenamed("id", "user_id").join(seen, "user_id")

    def score(batches):  # noqa: ANN001, ANN202 - iterator of pandas frames
        ids, matrix, banned = shared.value
        position = pd.Series(np.arange(len(ids)), index=ids)
        for frame in batches:
            for start in range(0, len(frame), batch_users):
                part = frame.iloc[start:start + batch_users]
                scores = np.stack(part["features"].to_numpy()).astype(np.float32) @ matrix.T
                scores[:, banned] = -np.inf
                for row, seen_items in enumerate(part["seen"]):
                    scores[row, position.reindex(seen_items).dropna().to_numpy(np.int64)] = -np.inf
                n = min(k, scores.shape[1])
                best = np.argpartition(-scores, n - 1, axis=1)[:, :n] if n else np.zeros((len(part), 0), int)
                best_scores = np.take_along_axis(scores, best, axis=1)
                order = np.argsort(-best_scores, axis=1, kind="stable")
                best, best_scores = np.take_along_axis(best, order, axis=1), np.take_along_axis(best_scores, order, 1)
                keep = np.isfinite(best_scores)
                rows, ranks = np.nonzero(keep)
                yield pd.DataFrame({"user_id": part["user_id"].to_numpy(np.int64)[rows],
                                    "rank": (ranks + 1).astype(np.int32),
                                    "item_id": ids[best[rows, ranks]],
                                    "score": best_scores[rows, ranks].astype(np.float32)})

    return users.mapInPandas(score, "user_id long, rank int, item_id long, score float")


def run(job: dict) -> dict:
    """Fit, rank and write; returns the seconds of each part (also written to `_job.json`)."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(job.get("name", "recsys-als")).getOrCreate()
    # Spark's defaults (200 shuffle partitions, 10 ALS blocks a side) cut a window into tasks far
    # smaller than their overhead on a few cores; one block and partition per core, unless the
    # submit sets spark.sql.shuffle.partitions or the job its `blocks`
    cores = spark.sparkContext.defaultParallelism
    if not spark.sparkContext.getConf().contains("spark.sql.shuffle.partitions"):
        spark.conf.set("spark.sql.shuffle.partitions", str(cores))
    blocks = int(job["als"].get("blocks") or cores)
    out = job["output"]
    # ALS checkpoints its factors every 10 iterations only when there is a checkpoint directory;
    # without one the lineage of a long fit overflows the stack of the task deserialiser
    spark.sparkContext.setCheckpointDir(f"{out}/_checkpoints")
    seconds = {}
    try:
        started = time.perf_counter()
        pairs = ratings(spark, job).cache()
        n_pairs = pairs.count()
        seconds["read"] = time.perf_counter() - started
        started = time.perf_counter()
        model = fit(pairs, job["als"], blocks)
        model.userFactors.write.mode("overwrite").parquet(f"{out}/user_factors")
        model.itemFactors.write.mode("overwrite").parquet(f"{out}/item_factors")
        seconds["fit"] = time.perf_counter() - started
        started = time.perf_counter()
        top_k(spark, model, pairs, job["k"], job.get("exclude_items", [])) \
            .write.mode("overwrite").parquet(f"{out}/top_k")
        seconds["top_k"] = time.perf_counter() - started
        if job.get("holdout_before_ts") is not None:
            started = time.perf_counter()
            held = fit(ratings(spark, job, job["holdout_before_ts"]), job["als"], blocks)
            held.userFactors.write.mode("overwrite").parquet(f"{out}/holdout_user_factors")
            held.itemFactors.write.mode("overwrite").parquet(f"{out}/holdout_item_factors")
            seconds["holdout_fit"] = time.perf_counter() - started
        done = {"seconds": seconds, "n_pairs": int(n_pairs), "spark_version": spark.version,
                "master": spark.sparkContext.master,
                "default_parallelism": cores, "als_blocks": blocks}
        shutil.rmtree(Path(out) / "_checkpoints", ignore_errors=True)
        marker = Path(out) / "_job.json"
        marker.write_text(json.dumps(done, indent=1))
        logger.info("recsys ALS job done: %s", done)
        return done
    finally:
        spark.stop()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(argv) != 1:
        print("usage: spark-submit als_job.py <job.json>", file=sys.stderr)
        return 2
    run(json.loads(Path(argv[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
