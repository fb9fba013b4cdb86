"""Do the two MF backends recommend as well as each other? The same split, the same settings.

Each user's last `last_n` positive events are held out (`temporal_split`'s `last_n` hold-out:
every user with a history is tested, so the figures are steady enough to compare to a few
per cent); the torch ALS (`recsys.models.mf.als`) and the Spark job (`als_job.py`, through
spark-submit) fit the same training pairs with the same factors, iterations, alpha, seed and
the regularisation mapped by `spark_reg_param`; both rank each tested user's unseen items and
`ranking_metrics` scores the lists against the held-out items. The Spark side reads its
training events from one Parquet file written here, not from the database: this compares the
solvers, and the export has tests of its own.

Used by tests/spark/test_spark_parity.py (MovieLens 100K) and bench/scale.py (1M simulated events).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recsys.config import Settings
from recsys.dataset import WindowDataset
from recsys.metrics.ranking import ranking_metrics, temporal_split
from recsys.models.mf.als import fit_als
from recsys.models.topk import top_k_factors
from recsys.spark.backend import load_top_k, spark_reg_param, submit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parity:
    """recall@K and NDCG@K of each backend on the same hold-out, and what each fit took."""

    k: int
    n_users: int               # the tested users
    torch: dict[str, float]    # ranking_metrics of the torch lists
    spark: dict[str, float]
    torch_seconds: float       # fit and top-K
    spark_seconds: float       # spark-submit to the end of the job, JVM start included
    spark_job_seconds: dict[str, float]
    torch_variants: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)  # name -> metrics

    def ratio(self, metric: str) -> float:
        """spark / torch: 1.0 is parity."""
        return self.spark[metric] / self.torch[metric] if self.torch[metric] else float("nan")


def compare_backends(settings: Settings, dataset: WindowDataset, workdir: Path, last_n: int = 3,
                     torch_variants: dict[str, dict[str, Any]] | None = None) -> Parity:
    """Fit both backends on `dataset` less each user's last `last_n` positives, at `settings.als`
    (`reg_exponent` 0 and `unobserved_weight` 1, which the Spark ALS has), and score both.

    `torch_variants` (name -> ALSConfig fields) are further torch fits on the same split, to see
    which setting closes a gap (their figures are in `Parity.torch_variants`)."""
    config = dataclasses.replace(settings.als, reg_exponent=0.0, unobserved_weight=1.0)
    end = datetime.fromtimestamp(float(dataset.ts.max()) + 1.0, tz=timezone.utc)
    split = temporal_split(dataset, settings.positive_types, end, last_n=last_n, holdout="last_n")
    k = int(settings.k)
    seen = split.train.tocsr()
    n_train_users = int((np.diff(seen.indptr) > 0).sum())
    config = dataclasses.replace(config, factors=int(min(config.factors, *seen.shape)))

    started = time.perf_counter()
    user_factors, item_factors = fit_als(seen, config)
    torch_top = top_k_factors(user_factors, item_factors, seen, k, users=split.users)
    torch_seconds = time.perf_counter() - started

    job_path = _write_job(settings, dataset, split.train_mask, config, seen.nnz, n_train_users, k, workdir)
    started = time.perf_counter()
    job = submit(settings, str(job_path))
    spark_seconds = time.perf_counter() - started
    spark_top = load_top_k(workdir / "out", dataset.user_ids, dataset.item_ids, split.users)

    variants = {}
    for name, fields in (torch_variants or {}).items():
        users, items = fit_als(seen, dataclasses.replace(config, **fields))
        variants[name] = ranking_metrics(top_k_factors(users, items, seen, k, users=split.users), split.relevant,
                                         split.users, k)
    result = Parity(k, len(split.users), ranking_metrics(torch_top, split.relevant, split.users, k),
                    ranking_metrics(spark_top, split.relevant, split.users, k), torch_seconds, spark_seconds,
                    job["seconds"], variants)
    logger.info("parity on %d users, %d factors: recall@%d torch %.4f spark %.4f (x%.3f), ndcg@%d torch %.4f "
                "spark %.4f (x%.3f); torch %.1fs, spark %.1fs", result.n_users, config.factors, k,
                result.torch["recall"], result.spark["recall"], result.ratio("recall"), k, result.torch["ndcg"],
                result.spark["ndcg"], result.ratio("ndcg"), torch_seconds, spark_seconds)
    return result


def _write_job(settings: Settings, dataset: WindowDataset, train_mask: np.ndarray, config, n_pairs: int,  # noqa: ANN001
               n_users: int, k: int, workdir: Path) -> Path:
    """The training events as one Parquet file (count confidence: strength 1) and the job that fits them."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    events = workdir / "train.parquet"
    frame = pd.DataFrame({"user_id": dataset.user_ids[dataset.user_index[train_mask]],
                          "item_id": dataset.item_ids[dataset.item_index[train_mask]],
                          "ts": dataset.ts[train_mask].astype(np.float64), "strength": 1.0})
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), events)
    job = {"name": "recsys-parity", "day_paths": [str(events)], "window_start_ts": float(dataset.ts.min()),
           "window_end_ts": float(dataset.ts.max()) + 1.0, "half_life_days": 0.0, "holdout_before_ts": None,
           "als": {"rank": int(config.factors), "max_iter": int(config.iterations),
                   "reg_param": spark_reg_param(config, n_pairs, n_users), "alpha": float(config.alpha),
                   "seed": int(config.seed)},
           "k": k, "exclude_items": [], "output": str(workdir / "out")}
    path = workdir / "job.json"
    path.write_text(json.dumps(job, indent=1))
    return path
