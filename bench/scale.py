"""The scale plan's measurements: one night on each MF backend at growing windows.

For each size, a simulated log (bench/nightly.py's: 20,000 items, 28 days, about 10 % of the
events positive) is loaded with COPY into a fresh database; then one night (as of the day after
the log ends; the search off, so both backends fit the same configured ALS) runs per backend,
each in its own process so memory figures do not mix:

* torch: extract, train, evaluate, publish (score + publish), retention;
* spark (`local[2]`): extract, spark_export (Parquet per day), spark_fit (spark-submit: ALS,
  top-K, the hold-out fit; its memory is the JVM's and its Python workers'), train (registers
  the factors), evaluate, publish, retention.

Per stage: seconds and peak resident memory; across sizes, each stage's growth exponent (the
slope of log seconds, and of log MB, over log events); from them, the capacity of one worker
and an extrapolation to a Spark cluster for 1B events (docs/scaling.md says how). On the
smallest Spark size, `recsys.spark.parity.compare_backends` compares recall@10 and NDCG@10 of
the two backends on the same hold-out.

    python bench/scale.py            # torch at 1M, 10M, 30M events; spark at 1M and 10M (~20 min)
    python bench/scale.py --quick    # 100,000 events, 5 ALS iterations, both backends (about a minute)
    python bench/scale.py --torch-sizes 1000000 --spark-sizes 1000000
    SPARK_DRIVER_MEMORY=2g python bench/scale.py --torch-sizes "" --spark-sizes 10000000 --no-parity

Ends with `SUMMARY torch_30m_s=<s> torch_30m_peak_mb=<MB> spark_10m_s=<s>
spark_recall_ratio=<spark/torch recall@10 at the smallest spark size>` (`--quick`: on the
nights' own last-day hold-out, at 100,000 events a noisy figure; the full run's parity is
`compare_backends` on each user's last 3 positives), the night's seconds
and peak at the largest torch size and the night's seconds at the largest spark size
(`torch_events=` and `spark_events=` say which sizes those were: 30M and 10M in a full run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nightly import DAYS, ITEMS, START  # noqa: E402 - the same simulated log as bench/nightly.py

# Torch fits beside the parity's matched one, on the same split: which setting closes a gap
# (the regularisation's strength and form; the solver's conjugate-gradient steps)
TORCH_VARIANTS = {"regularization 0.5": {"regularization": 0.5}, "regularization 5": {"regularization": 5.0},
                  "regularization 20": {"regularization": 20.0}, "cg_steps 10": {"cg_steps": 10},
                  "reg_exponent 1, regularization 0.01": {"reg_exponent": 1.0, "regularization": 0.01}}
WORKER_GIB = 24  # this machine's memory: where the torch backend stops
WORKER_CORES = 2
SPARK_DRIVER_MEMORY = "6g"  # local[2] runs the executors inside the driver's JVM


def run_night(url: str, artifacts: Path, backend: str, iterations: int | None, parity: bool) -> dict:
    """One night on `backend` against the loaded database; per stage (seconds, peak MB, rows)."""
    from _common import score_and_publish, timed

    from recsys.config import Settings
    from recsys.interval import DataInterval
    from recsys.stages.evaluate import evaluate_holdout
    from recsys.stages.extract import extract_window
    from recsys.stages.retention import refresh_retention
    from recsys.stages.train import train_als

    settings = Settings.from_env(database_url=url, artifact_dir=artifacts)
    als = settings.als if iterations is None else dataclasses.replace(settings.als, iterations=iterations)
    settings = dataclasses.replace(settings, mf_backend=backend, als=als, spark_master=f"local[{WORKER_CORES}]",
                                   search=dataclasses.replace(settings.search, enabled=False))
    interval = DataInterval.for_date(START + timedelta(days=DAYS))
    stages: dict[str, tuple[float, float, int]] = {}
    extracted, s, mb = timed(extract_window, settings, interval)
    stages["extract"] = (s, mb, extracted.n_events)
    extra: dict = {}
    if backend == "spark":
        from recsys.spark.backend import prepare_fit, submit

        prepared, s, mb = timed(prepare_fit, settings, interval, extracted.dataset_path, "mf_als")
        stages["spark_export"] = (s, mb, prepared["n_events"])
        job, s, mb = timed(submit, settings, prepared["job_path"], children=True)
        stages["spark_fit"] = (s, mb, job["n_pairs"])
        extra["spark_job_seconds"] = job["seconds"]
    trained, s, mb = timed(train_als, settings, interval, extracted.dataset_path, "benchmark", model="mf_als")
    stages["train"] = (s, mb, trained.n_interactions)
    holdout, s, mb = timed(evaluate_holdout, settings, interval, extracted.dataset_path, trained.model_version)
    stages["evaluate"] = (s, mb, trained.n_interactions)
    extra["holdout"] = holdout  # the night's own hold-out (the window's last day): recall, ndcg
    published, s, mb = timed(score_and_publish, settings, extracted.dataset_path, trained.model_version,
                             interval.run_date)
    stages["publish"] = (s, mb, published.rows)
    _, s, mb = timed(refresh_retention, settings, interval.run_date)
    stages["retention"] = (s, mb, extracted.n_events)
    if parity:
        from recsys.dataset import WindowDataset
        from recsys.spark.parity import compare_backends

        result = compare_backends(settings, WindowDataset.load(Path(extracted.dataset_path)), artifacts / "parity",
                                  torch_variants=TORCH_VARIANTS)
        extra["parity"] = {"n_users": result.n_users, "torch": result.torch, "spark": result.spark,
                           "recall_ratio": result.ratio("recall"), "ndcg_ratio": result.ratio("ndcg"),
                           "torch_seconds": result.torch_seconds, "spark_seconds": result.spark_seconds,
                           "torch_variants": result.torch_variants}
    return {"backend": backend, "stages": stages, "n_positive": trained.n_interactions, **extra}


def load_and_run(target_events: int, backends: list[str], iterations: int | None, parity: bool) -> list[dict]:
    """Load one simulated log, then a child process per backend runs its night on it."""
    from _common import bench_database, timed

    from recsys.config import Settings
    from recsys.sim.synthetic_log import simulate_log, users_for_target_events

    users = users_for_target_events(target_events, DAYS)
    results = []
    with tempfile.TemporaryDirectory(prefix="recsys-scale-") as tmp, \
            bench_database("recsys_bench_scale", Path(tmp)) as url:
        settings = Settings.from_env(database_url=url, artifact_dir=Path(tmp) / "load")
        summary, load_s, _ = timed(simulate_log, settings, DAYS, users, ITEMS, seed=1, start_date=START)
        print(f"\n== {summary.events:,} events, {users:,} users, {ITEMS:,} items, {DAYS} days "
              f"(loaded with COPY in {load_s:.0f} s)", flush=True)
        for backend in backends:
            command = [sys.executable, __file__, "--child", url, "--artifacts", str(Path(tmp) / backend),
                       "--backend", backend] + (["--iterations", str(iterations)] if iterations else []) + \
                      (["--parity"] if parity and backend == "spark" else [])
            env = {**os.environ, "SPARK_DRIVER_MEMORY": os.environ.get("SPARK_DRIVER_MEMORY", SPARK_DRIVER_MEMORY)}
            out = subprocess.run(command, capture_output=True, text=True, env=env)
            if out.returncode != 0:
                raise RuntimeError(f"{backend} night at {summary.events:,} events failed:\n{out.stderr[-4000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["events"], result["users"] = summary.events, users
            results.append(result)
            _print_night(result)
    return results


def _print_night(result: dict) -> None:
    print(f"{result['backend']} ({result['n_positive']:,} positive events in the window)")
    print(f"  {'stage':<13} {'seconds':>9} {'peak RSS MB':>12} {'rows':>12}")
    for stage, (seconds, mb, rows) in result["stages"].items():
        print(f"  {stage:<13} {seconds:>9.2f} {mb:>12.0f} {rows:>12,}")
    print(f"  {'night':<13} {_night_s(result):>9.2f} {_peak_mb(result):>12.0f}")
    if "spark_job_seconds" in result:
        print("  spark job: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["spark_job_seconds"].items()))
    if "parity" in result:
        p = result["parity"]
        print(f"  parity on {p['n_users']:,} users: recall@10 torch {p['torch']['recall']:.4f} spark "
              f"{p['spark']['recall']:.4f} (x{p['recall_ratio']:.3f}); ndcg@10 torch {p['torch']['ndcg']:.4f} spark "
              f"{p['spark']['ndcg']:.4f} (x{p['ndcg_ratio']:.3f})")
        for name, figures in p.get("torch_variants", {}).items():
            print(f"    torch at {name}: recall@10 {figures['recall']:.4f}, ndcg@10 {figures['ndcg']:.4f}")
    sys.stdout.flush()


def _holdout_parity(results: list[dict]) -> None:
    """spark / torch on the nights' own hold-out (the window's last day), per size both ran."""
    for spark in (r for r in results if r["backend"] == "spark"):
        torch = next((r for r in results if r["backend"] == "torch" and r["events"] == spark["events"]), None)
        if torch is None or not torch["holdout"] or not spark["holdout"]:
            continue
        t, p = ({m: run["holdout"][f"{m}@10"] for m in ("recall", "ndcg")} for run in (torch, spark))
        ratios = {m: p[m] / t[m] if t[m] else float("nan") for m in ("recall", "ndcg")}
        spark["holdout_parity"] = {"recall_ratio": ratios["recall"], "ndcg_ratio": ratios["ndcg"]}
        print(f"night hold-out at {spark['events']:,} events ({spark['holdout']['holdout_users']:,} users): "
              f"recall@10 torch {t['recall']:.4f} spark {p['recall']:.4f} (x{ratios['recall']:.3f}); "
              f"ndcg@10 torch {t['ndcg']:.4f} spark {p['ndcg']:.4f} (x{ratios['ndcg']:.3f})")


def _night_s(result: dict) -> float:
    return sum(s for s, _, _ in result["stages"].values())


def _peak_mb(result: dict) -> float:
    return max(mb for _, mb, _ in result["stages"].values())


def growth(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of log y over log x: y grows as x ** slope."""
    xs, ys = [math.log(x) for x, _ in points], [math.log(max(y, 1e-9)) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(sum((x - mx) ** 2 for x in xs), 1e-12)


def plan(results: list[dict]) -> None:
    """Growth exponents, the capacity of one worker and the 1B-event Spark cluster."""
    for backend in ("torch", "spark"):
        runs = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["events"])
        if len(runs) < 2:
            continue
        sizes = ", ".join(f"{r['events']:,}" for r in runs)
        print(f"\n{backend}: growth exponents over {sizes} events")
        for stage in runs[0]["stages"]:
            exp_s = growth([(r["events"], r["stages"][stage][0]) for r in runs])
            exp_mb = growth([(r["events"], r["stages"][stage][1]) for r in runs])
            print(f"  {stage:<13} seconds ~ N^{exp_s:.2f}   peak MB ~ N^{exp_mb:.2f}")
        exp_night = growth([(r["events"], _night_s(r)) for r in runs[-2:]])
        exp_peak = growth([(r["events"], _peak_mb(r)) for r in runs[-2:]])
        top = runs[-1]
        print(f"  night         seconds ~ N^{exp_night:.2f}   peak MB ~ N^{exp_peak:.2f} (two largest sizes)")
        if backend == "torch":
            hour = top["events"] * (3600 / _night_s(top)) ** (1 / max(exp_night, 1e-6))
            memory = top["events"] * (WORKER_GIB * 1024 / _peak_mb(top)) ** (1 / max(exp_peak, 1e-6))
            print(f"  one {WORKER_CORES}-core worker: a night reaches 1 hour at ~{hour / 1e6:,.0f}M events and "
                  f"{WORKER_GIB} GiB at ~{memory / 1e6:,.0f}M events (extrapolated from the two largest sizes)")
        else:
            small, large = runs[0], runs[-1]
            fit_small, fit_large = small["stages"]["spark_fit"][0], large["stages"]["spark_fit"][0]
            marginal = (fit_large - fit_small) * WORKER_CORES / (large["events"] - small["events"])
            export_rate = large["stages"]["spark_export"][2] / large["stages"]["spark_export"][0]
            mb_per_event = (large["stages"]["spark_fit"][1] - small["stages"]["spark_fit"][1]) / \
                (large["events"] - small["events"])
            print(f"  spark_fit marginal cost: {marginal * 1e6:.2f} core-seconds per 1M events "
                  f"(local[{WORKER_CORES}], {small['events']:,} -> {large['events']:,} events); fixed part "
                  f"~{fit_small - marginal * small['events'] / WORKER_CORES:.0f} s; JVM memory "
                  f"{mb_per_event * 1e6:.1f} MB per 1M events; export {export_rate:,.0f} positive events/s")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 events, 5 ALS iterations, both backends")
    parser.add_argument("--torch-sizes", type=lambda s: [int(x) for x in s.split(",") if x], default=None)
    parser.add_argument("--spark-sizes", type=lambda s: [int(x) for x in s.split(",") if x], default=None)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--no-parity", action="store_true", help="skip the parity fits (a memory or timing run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--parity", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    if args.child:
        print(json.dumps(run_night(args.child, args.artifacts, args.backend, args.iterations, args.parity)))
        return 0
    torch_sizes = args.torch_sizes if args.torch_sizes is not None else \
        ([100_000] if args.quick else [1_000_000, 10_000_000, 30_000_000])
    spark_sizes = args.spark_sizes if args.spark_sizes is not None else \
        ([100_000] if args.quick else [1_000_000, 10_000_000])
    iterations = 5 if args.quick else None
    results = []
    for size in sorted(set(torch_sizes) | set(spark_sizes)):
        backends = [b for b, sizes in (("torch", torch_sizes), ("spark", spark_sizes)) if size in sizes]
        # --quick compares the two nights' own hold-out figures instead: one spark-submit fewer
        results += load_and_run(size, backends, iterations, parity=size == min(spark_sizes or [0]) and not (args.quick or args.no_parity))
    _holdout_parity(results)
    plan(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    torch_top = max((r for r in results if r["backend"] == "torch"), key=lambda r: r["events"], default=None)
    spark_runs = [r for r in results if r["backend"] == "spark"]
    spark_top = max(spark_runs, key=lambda r: r["events"], default=None)
    parity = next((r["parity"] for r in spark_runs if "parity" in r), None) or next(
        (r["holdout_parity"] for r in sorted(spark_runs, key=lambda r: r["events"]) if "holdout_parity" in r),
        {"recall_ratio": float("nan"), "ndcg_ratio": float("nan")})  # a run of one backend compares nothing
    nan = float("nan")
    print(f"SUMMARY torch_30m_s={_night_s(torch_top) if torch_top else nan:.1f} "
          f"torch_30m_peak_mb={_peak_mb(torch_top) if torch_top else nan:.0f} "
          f"spark_10m_s={_night_s(spark_top) if spark_top else nan:.1f} "
          f"spark_recall_ratio={parity['recall_ratio']:.3f} spark_ndcg_ratio={parity['ndcg_ratio']:.3f} "
          f"torch_events={torch_top['events'] if torch_top else 0} spark_events={spark_top['events'] if spark_top else 0}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
