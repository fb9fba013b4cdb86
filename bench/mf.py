"""Benchmark this project's ALS and BPR against `implicit` on the same data and hold-out.

    .venv/bin/pip install -e '.[bench]'      # implicit==0.7.3 (scripts/_env.sh installs it too)
    .venv/bin/python bench/mf.py --quick     # MovieLens 100K only
    .venv/bin/python bench/mf.py             # + synthetic power-law 100k users x 20k items x 10M interactions

Every method is trained in its own subprocess (so peak resident memory is
that method's alone: the process's peak from the moment the data is loaded,
so the data, the library's imports, its preparation and its fit, measured
before top-K scoring), on the same training matrix,
and scored with the same code (`recsys.models.topk`, `recsys.metrics.ranking`) on the same
temporal hold-out: each user's last `--holdout-last-n` positive events
(MovieLens; the synthetic log has no time, so its last generated event per user).

Settings, the same for both libraries: ALS factors 64, 15 iterations,
regularisation 0.01, confidence c = 1 + alpha * count (alpha 1; `implicit`
is given the matrix of c itself, which is how it defines confidence, so both
solve the same objective), `--threads` threads (`implicit`'s `num_threads`; ours is given
that many CPUs and picks its thread count as in a nightly task). BPR: factors 64,
regularisation 0.01, each library's own defaults for learning rate and epochs
(`implicit`: 0.01 x 100 epochs; ours: 0.03 decaying linearly to 0 over 50 epochs
in batches of 2048, the steps on one thread and, with `--threads` 2 or more, the draws of
the next triples on a second).
Top-K: all users' top 10 with seen items excluded (`implicit`'s batched
`recommend` against `recsys.models.topk.top_k_factors`). Both run with
OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep instead of spinning:
on a shared machine spinning threads of either library slow everything).

MovieLens also gets the nightly configuration: the ALS the train stage picks
by its validation search, against popularity, on the last-day hold-out.

The last line is `SUMMARY als_time_ratio=.. als_recall_ratio=.. bpr_time_ratio=.. bpr_recall_ratio=..`
(ours / implicit, on the largest data set run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MOVIELENS = REPO.parent / "shared" / "datasets" / "movielens-100k" / "u.data"
METHODS = ("ours_als", "implicit_als", "ours_bpr", "implicit_bpr")
ALPHA = 1.0

from _needs import need_file, need_module  # noqa: E402  (bench/ is the script's folder, on sys.path)


def reset_peak() -> None:
    """Restart the kernel's high-water mark of this process's resident memory (Linux 4.0+)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux, or not allowed: the peak then includes what came before
        pass


def peak_mib() -> float:
    """Peak resident memory of this process since its start (exec) or the last `reset_peak`.

    From /proc's VmHWM, not `getrusage`'s ru_maxrss: the latter survives fork and
    exec, so a worker started by the parent that generated the 10M data set reported
    the parent's 2 GiB peak whatever it did itself.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- data

def movielens(path: Path, last_n: int) -> dict[str, np.ndarray]:
    raw = np.loadtxt(path, dtype=np.int64)
    users, items, ts = raw[:, 0] - 1, raw[:, 1] - 1, raw[:, 3]
    order = np.lexsort((-ts, users))  # per user, newest first
    return _split(users[order], items[order], users.max() + 1, items.max() + 1, last_n, newest_first=True)


def synthetic(n_users: int = 100_000, n_items: int = 20_000, n: int = 10_000_000, clusters: int = 32,
              seed: int = 0) -> dict[str, np.ndarray]:
    """Power-law activity (Pareto, capped) and popularity (Zipf 0.8), half of each user's
    events inside a taste cluster; `n` distinct (user, item) pairs."""
    rng = np.random.default_rng(seed)
    draw = int(n * 1.5)
    activity = np.minimum(rng.pareto(1.5, n_users) + 1.0, 50.0)
    users = np.repeat(np.arange(n_users), rng.multinomial(draw, activity / activity.sum()))
    popularity = (1.0 / np.arange(1, n_items + 1) ** 0.8)[rng.permutation(n_items)]
    item_cluster, user_cluster = rng.integers(0, clusters, n_items), rng.integers(0, clusters, n_users)
    order = np.argsort(item_cluster, kind="stable")
    starts = np.searchsorted(item_cluster[order], np.arange(clusters + 1))
    cum = np.cumsum(popularity[order])
    c = user_cluster[users]
    lo = np.where(starts[c] > 0, cum[np.maximum(starts[c] - 1, 0)], 0.0)
    hi = cum[starts[c + 1] - 1]
    in_cluster = order[np.minimum(np.searchsorted(cum, lo + rng.random(draw) * (hi - lo)), n_items - 1)]
    gcum = np.cumsum(popularity)
    anywhere = np.minimum(np.searchsorted(gcum, rng.random(draw) * gcum[-1]), n_items - 1)
    items = np.where(rng.random(draw) < 0.5, in_cluster, anywhere)
    perm = rng.permutation(draw)
    _, first = np.unique(users[perm].astype(np.int64) * n_items + items[perm], return_index=True)
    keep = perm[np.sort(first)[:n]]  # first occurrences, in generation order
    users, items = users[keep], items[keep]
    order = np.argsort(users, kind="stable")
    return _split(users[order][::-1], items[order][::-1], n_users, n_items, 1, newest_first=True)


def _split(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, last_n: int,
           newest_first: bool) -> dict[str, np.ndarray]:
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    rank = np.arange(len(users)) - np.repeat(starts, np.diff(np.r_[starts, len(users)]))
    test = rank < last_n
    shape = (n_users, n_items)
    train = sp.csr_matrix((np.ones(int((~test).sum()), np.float32), (users[~test], items[~test])), shape=shape)
    train.sum_duplicates()
    later = sp.csr_matrix((np.ones(int(test.sum()), np.float32), (users[test], items[test])), shape=shape)
    relevant = (later - later.multiply(train > 0)).tocsr()
    relevant.eliminate_zeros()
    relevant.data[:] = 1.0
    eval_users = np.flatnonzero((np.diff(train.indptr) > 0) & (np.diff(relevant.indptr) > 0))
    return {"train_indptr": train.indptr, "train_indices": train.indices, "train_data": train.data,
            "rel_indptr": relevant.indptr, "rel_indices": relevant.indices, "shape": np.array(shape),
            "users": eval_users}


def _matrices(data: dict) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    shape = tuple(int(x) for x in data["shape"])
    train = sp.csr_matrix((data["train_data"], data["train_indices"], data["train_indptr"]), shape=shape)
    relevant = sp.csr_matrix((np.ones(len(data["rel_indices"]), np.float32), data["rel_indices"],
                              data["rel_indptr"]), shape=shape)
    return train, relevant, data["users"]


# ---------------------------------------------------------------- one method, in a subprocess

def worker(method: str, data_path: str, threads: int) -> dict:
    with np.load(data_path) as npz:
        data = {key: npz[key] for key in npz.files}
    train, relevant, users = _matrices(data)
    reset_peak()  # the peak is the method's (its imports, preparation and fit), with the data resident
    if method.startswith("implicit"):
        from threadpoolctl import threadpool_limits

        import implicit

        with threadpool_limits(1, "blas"):
            if method == "implicit_als":
                confidence = train.copy()
                confidence.data = 1.0 + ALPHA * confidence.data
                model = implicit.cpu.als.AlternatingLeastSquares(factors=64, regularization=0.01, iterations=15,
                                                                 num_threads=threads, random_state=42)
                fit_input = confidence
            else:
                model = implicit.cpu.bpr.BayesianPersonalizedRanking(factors=64, regularization=0.01,
                                                                     num_threads=threads, random_state=42)
                fit_input = train
            started = time.perf_counter()
            model.fit(fit_input, show_progress=False)
            fit_s = time.perf_counter() - started
            peak = peak_mib()
            started = time.perf_counter()
            all_users = np.arange(train.shape[0])
            model.recommend(all_users, train, N=10, filter_already_liked_items=True)
            topk_s = time.perf_counter() - started
            user_factors, item_factors = np.asarray(model.user_factors), np.asarray(model.item_factors)
    else:
        # ours is given `threads` CPUs, as a task would be, and picks how many to use (num_threads=0):
        # ALS one thread per 500,000 interactions at most, BPR a second thread for its draws
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
        from recsys.config import ALSConfig, BPRConfig
        from recsys.models.mf.als import fit_als
        from recsys.models.mf.bpr import fit_bpr
        from recsys.models.topk import top_k_factors

        started = time.perf_counter()
        if method == "ours_als":
            user_factors, item_factors = fit_als(train, ALSConfig(factors=64, regularization=0.01, alpha=ALPHA,
                                                                  iterations=15, num_threads=0))
        else:
            user_factors, item_factors = fit_bpr(train, BPRConfig(factors=64, regularization=0.01, num_threads=0))
        fit_s = time.perf_counter() - started
        peak = peak_mib()
        started = time.perf_counter()
        top_k_factors(user_factors, item_factors, train, 10)
        topk_s = time.perf_counter() - started
    from recsys.metrics.ranking import ranking_metrics
    from recsys.models.topk import top_k_factors

    top = top_k_factors(user_factors, item_factors, train, 10, users=users)
    figures = ranking_metrics(top, relevant, users, 10)
    return {"fit_s": fit_s, "topk_s": topk_s, "peak_mib": peak, "recall": figures["recall"], "ndcg": figures["ndcg"]}


def run_method(method: str, data_path: Path, threads: int) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--worker", method, "--data", str(data_path),
                          "--threads", str(threads)], capture_output=True, text=True, env=env, cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def popularity_row(data: dict) -> dict:
    from recsys.metrics.ranking import ranking_metrics
    from recsys.models.topk import top_k_popular

    train, relevant, users = _matrices(data)
    top = top_k_popular(np.asarray(train.sum(axis=0)).ravel(), train, 10, users)
    figures = ranking_metrics(top, relevant, users, 10)
    return {"recall": figures["recall"], "ndcg": figures["ndcg"]}


def nightly_vs_popularity(threads: int) -> dict:
    """The train stage's search-chosen ALS against popularity on MovieLens's last-day hold-out."""
    import dataclasses
    from datetime import datetime, timezone

    from recsys.config import Settings
    from recsys.dataset import WindowDataset
    from recsys.metrics.ranking import ranking_metrics, temporal_split
    from recsys.interval import DataInterval
    from recsys.models.mf.als import fit_als
    from recsys.models.topk import top_k_factors, top_k_popular
    from recsys.stages.train import search_als

    raw = np.loadtxt(MOVIELENS, dtype=np.int64)
    user_ids, user_index = np.unique(raw[:, 0], return_inverse=True)
    item_ids, item_index = np.unique(raw[:, 1], return_inverse=True)
    dataset = WindowDataset(user_ids, item_ids, user_index, item_index, np.full(len(raw), 2, np.int8),
                            raw[:, 3].astype(np.float64), raw[:, 2].astype(np.float64))
    end = datetime(1998, 4, 23, tzinfo=timezone.utc)
    settings = Settings()  # the nightly defaults: threads follow the task's CPUs and the data size
    started = time.perf_counter()
    config, record = search_als(settings, dataset, DataInterval.for_date(end.date()))
    search_s = time.perf_counter() - started
    split = temporal_split(dataset, ("consume",), end)
    users_f, items_f = fit_als(split.train, config)
    model = ranking_metrics(top_k_factors(users_f, items_f, split.train, 10, users=split.users),
                            split.relevant, split.users, 10)
    pop = ranking_metrics(top_k_popular(np.asarray(split.train.sum(axis=0)).ravel(), split.train, 10, split.users),
                          split.relevant, split.users, 10)
    return {"chosen": record.get("chosen"), "search_s": search_s, "users": len(split.users),
            "model": model, "popularity": pop}


# ---------------------------------------------------------------- the report

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="MovieLens 100K only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--holdout-last-n", type=int, default=5)
    parser.add_argument("--methods", nargs="+", choices=("als", "bpr"), default=["als", "bpr"],
                        help="models to compare (default both; the SUMMARY then names both)")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.threads)))
        return
    # checked before anything runs: the reference fits come after ours, minutes in
    need_module("bench/mf.py", "implicit", "bench")
    need_file("bench/mf.py", MOVIELENS, "MovieLens 100K")
    datasets = [("movielens-100k", lambda: movielens(MOVIELENS, args.holdout_last_n))]
    if not args.quick:
        datasets.append(("synthetic-10M", synthetic))
    summary = {}
    with tempfile.TemporaryDirectory(prefix="bench_mf_") as tmp:
        for name, make in datasets:
            started = time.perf_counter()
            data = make()
            path = Path(tmp) / f"{name}.npz"
            np.savez(path, **data)
            nnz = len(data["train_indices"])
            print(f"\n## {name}: {int(data['shape'][0])} users x {int(data['shape'][1])} items, "
                  f"{nnz} training interactions, {len(data['users'])} hold-out users "
                  f"(data {time.perf_counter() - started:.1f}s)", flush=True)
            rows = {}
            for method in (m for m in METHODS if m.split("_")[1] in args.methods):
                rows[method] = row = run_method(method, path, args.threads)
                print(f"  {method}: fit {row['fit_s']:.2f}s, top-10 {row['topk_s']:.2f}s, peak {row['peak_mib']:.0f} MiB,"
                      f" recall@10 {row['recall']:.4f}", flush=True)
            pop = popularity_row(data)
            print(f"{'method':<14}{'fit s':>9}{'top-10 all s':>14}{'peak MiB':>10}{'recall@10':>11}{'ndcg@10':>9}"
                  f"{'time x':>8}{'topk x':>8}{'mem x':>7}{'recall x':>10}")
            for method, row in rows.items():
                ref = rows["implicit_" + method.split("_")[1]]
                print(f"{method:<14}{row['fit_s']:>9.2f}{row['topk_s']:>14.2f}{row['peak_mib']:>10.0f}"
                      f"{row['recall']:>11.4f}{row['ndcg']:>9.4f}{row['fit_s'] / ref['fit_s']:>8.2f}"
                      f"{row['topk_s'] / ref['topk_s']:>8.2f}{row['peak_mib'] / ref['peak_mib']:>7.2f}"
                      f"{row['recall'] / ref['recall']:>10.3f}")
            print(f"{'popularity':<14}{'':>9}{'':>14}{'':>10}{pop['recall']:>11.4f}{pop['ndcg']:>9.4f}", flush=True)
            summary = {kind: (rows[f"ours_{kind}"]["fit_s"] / rows[f"implicit_{kind}"]["fit_s"],
                              rows[f"ours_{kind}"]["recall"] / rows[f"implicit_{kind}"]["recall"])
                       for kind in args.methods}
            if name == "movielens-100k":
                nightly = nightly_vs_popularity(args.threads)
                print(f"\nnightly ALS (search chose {nightly['chosen']} in {nightly['search_s']:.1f}s) on the "
                      f"last-day hold-out ({nightly['users']} users): recall@10 {nightly['model']['recall']:.4f} "
                      f"ndcg@10 {nightly['model']['ndcg']:.4f}; popularity recall@10 "
                      f"{nightly['popularity']['recall']:.4f} ndcg@10 {nightly['popularity']['ndcg']:.4f}", flush=True)
    print("\nSUMMARY " + " ".join(f"{kind}_time_ratio={time_ratio:.2f} {kind}_recall_ratio={recall_ratio:.3f}"
                                 for kind, (time_ratio, recall_ratio) in summary.items()))


if __name__ == "__main__":
    main()
