"""The nightly MF model against popularity and fixed-setting `implicit` ALS on MovieLens 100K.

Loads MovieLens 100K (`../shared/datasets`) into a fresh database and runs the real
extract -> train (with the hyper-parameter search on the validation day before the
hold-out) -> evaluate stages as of the day after the last rating, with a per-user
last-day hold-out (`RECSYS_HOLDOUT=user_last_day`: each user's own last active day is
held out, the day before it validates the search). The figures are read back from
`recsys.eval_metrics`, where the nightly run wrote them. For reference it fits
`implicit`'s `AlternatingLeastSquares` with the fixed settings of `bench/mf.py`
(factors 64, 15 iterations, regularisation 0.01, confidence 1 + count) on the same
training split and scores it with the same metric code.

Ends with `SUMMARY nightly_recall=.. nightly_ndcg=.. popularity_recall=.. popularity_ndcg=..
implicit_recall=.. implicit_ndcg=..` (at K = 10). There is no separate `--quick`:
the whole run takes about a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(Path(__file__).resolve().parent)]
MOVIELENS = REPO.parent / "shared" / "datasets" / "movielens-100k" / "u.data"

from _common import bench_database  # noqa: E402
from _needs import need_file, need_module  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the same run (it is already under a minute or two)")
    parser.add_argument("--holdout", default="user_last_day", choices=("user_last_day", "last_day"))
    args = parser.parse_args()
    need_module("bench/mf_nightly.py", "implicit", "bench")
    need_file("bench/mf_nightly.py", MOVIELENS, "MovieLens 100K")
    logging.basicConfig(level=logging.WARNING)
    import numpy as np
    from sqlalchemy import text

    from eventdata import copy_events, movielens_frame
    from recsys.db import engine as db
    from recsys.config import Settings
    from recsys.dataset import WindowDataset
    from recsys.metrics.ranking import ranking_metrics, temporal_split
    from recsys.stages.extract import extract_window
    from recsys.stages.evaluate import evaluate_holdout
    from recsys.interval import DataInterval
    from recsys.models.topk import top_k_factors
    from recsys.stages.train import train_als

    frame = movielens_frame(MOVIELENS)
    as_of = date.fromtimestamp(frame["event_time"].max().timestamp()) + timedelta(days=1)
    with tempfile.TemporaryDirectory() as tmp, bench_database("recsys_bench_mf_nightly", Path(tmp)) as url:
        settings = dataclasses.replace(Settings.from_env(database_url=url, artifact_dir=Path(tmp)),
                                       train_window_days=400, holdout=args.holdout, holdout_last_n=0,
                                       warm_start=False)
        copy_events(settings, frame, source="movielens:u.data")
        interval = DataInterval.for_date(as_of)
        started = time.perf_counter()
        extracted = extract_window(settings, interval)
        trained = train_als(settings, interval, extracted.dataset_path, "benchmark", model="mf_als")
        train_s = time.perf_counter() - started
        evaluate_holdout(settings, interval, extracted.dataset_path, trained.model_version)
        with db.get_engine(url, settings.schema).connect() as conn:
            figures = {(s, m): v for s, m, v in conn.execute(text(
                "SELECT subject, metric, value FROM eval_metrics WHERE model_version = :v AND k = 10"),
                {"v": trained.model_version})}
            params = conn.execute(text("SELECT params FROM model_runs WHERE model_version = :v"),
                                  {"v": trained.model_version}).scalar_one()
            n_users = conn.execute(text("SELECT max(n_users) FROM eval_metrics WHERE model_version = :v"),
                                   {"v": trained.model_version}).scalar_one()

        # implicit with the fixed settings, on the same split, scored by the same code
        import implicit
        from threadpoolctl import threadpool_limits

        dataset = WindowDataset.load(Path(extracted.dataset_path))
        split = temporal_split(dataset, settings.positive_types, interval.end, 0, holdout=args.holdout)
        confidence = split.train.copy()
        confidence.data = 1.0 + confidence.data  # confidence 1 + count, as bench/mf.py
        with threadpool_limits(1, "blas"):
            model = implicit.cpu.als.AlternatingLeastSquares(factors=64, regularization=0.01, iterations=15,
                                                             alpha=1.0, num_threads=2, random_state=42)
            model.fit(confidence.tocsr().astype(np.float32), show_progress=False)
        top = top_k_factors(np.asarray(model.user_factors), np.asarray(model.item_factors), split.train, 10,
                            users=split.users)
        reference = ranking_metrics(top, split.relevant, split.users, 10, split.train, np.asarray(model.item_factors))

    search = params.get("search", {})
    print(f"MovieLens 100K, as of {as_of}, hold-out {args.holdout}: {n_users} users tested; "
          f"nightly train incl. search {train_s:.1f} s")
    print(f"search chose: {json.dumps(search.get('chosen'))} on {search.get('validation_users')} validation users "
          f"({search.get('grid_points')} grid points, {search.get('seconds')} s)")
    print(f"{'model':<34} {'recall@10':>10} {'NDCG@10':>9}")
    rows = [("nightly mf_als (searched)", figures[("model", "recall")], figures[("model", "ndcg")]),
            ("popularity", figures[("popularity", "recall")], figures[("popularity", "ndcg")]),
            ("implicit ALS, fixed settings", reference["recall"], reference["ndcg"])]
    for name, recall, ndcg in rows:
        print(f"{name:<34} {recall:>10.4f} {ndcg:>9.4f}")
    print(f"SUMMARY nightly_recall={rows[0][1]:.4f} nightly_ndcg={rows[0][2]:.4f} popularity_recall={rows[1][1]:.4f} "
          f"popularity_ndcg={rows[1][2]:.4f} implicit_recall={rows[2][1]:.4f} implicit_ndcg={rows[2][2]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
