"""Benchmark of one whole night, per stage, at growing data sizes.

For each size: a simulated log (20,000 items, 28 days; 100,000 users at
10,000,000 events) is loaded with COPY into a fresh database, then one nightly
run (as-of the day after the log ends) is timed stage by stage: seconds, peak
resident memory during the stage, and rows per second. Each size runs in its own
process so memory figures do not mix.

    python bench/nightly.py            # 1,000,000 and 10,000,000 events
    python bench/nightly.py --quick    # 200,000 events
    python bench/nightly.py --sizes 3000000

Ends with `SUMMARY interactions=<n> nightly_s=<s> peak_rss_mb=<MB>` for the
largest size. The project's goal: a night at 10,000,000 events under 15 minutes
on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DAYS = 28
ITEMS = 20_000
START = date(2026, 1, 1)


def run_size(target_events: int) -> dict:
    from _common import bench_database, timed

    from recsys.config import Settings
    from recsys.stages.extract import extract_window
    from recsys.stages.evaluate import evaluate_holdout
    from recsys.interval import DataInterval
    from recsys.stages.publish import publish_scores
    from recsys.stages.score import score_shard
    from recsys.stages.retention import refresh_retention
    from recsys.sim.synthetic_log import simulate_log, users_for_target_events
    from recsys.stages.train import train_als

    users = users_for_target_events(target_events, DAYS)
    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as tmp, bench_database("recsys_bench_nightly", Path(tmp)) as url:
        settings = Settings.from_env(database_url=url, artifact_dir=Path(tmp) / "artifacts")
        summary, load_s, load_mb = timed(simulate_log, settings, DAYS, users, ITEMS, seed=1, start_date=START)
        interval = DataInterval.for_date(START + timedelta(days=DAYS))
        stages = {}
        extracted, s, mb = timed(extract_window, settings, interval)
        stages["extract"] = (s, mb, extracted.n_events)
        trained, s, mb = timed(train_als, settings, interval, extracted.dataset_path, "benchmark", model="mf_als")
        stages["train"] = (s, mb, trained.n_interactions)
        _, s, mb = timed(evaluate_holdout, settings, interval, extracted.dataset_path, trained.model_version)
        stages["evaluate"] = (s, mb, trained.n_interactions)
        def score_and_publish():  # one shard, as `recsys run` scores
            shard = score_shard(settings, extracted.dataset_path, trained.model_version)
            return publish_scores(settings, interval.run_date, trained.model_version, [shard.path])

        published, s, mb = timed(score_and_publish)
        stages["publish"] = (s, mb, published.rows)
        refreshed, s, mb = timed(refresh_retention, settings, interval.run_date)
        stages["retention"] = (s, mb, summary.events)
    return {"events": summary.events, "users": users, "load_s": load_s, "load_mb": load_mb, "stages": stages}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one size of 200,000 events")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        print(json.dumps(run_size(args.child)))
        return 0
    sizes = args.sizes or ([200_000] if args.quick else [1_000_000, 10_000_000])
    results = []
    for size in sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(size)], capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-4000:], file=sys.stderr)
            return 1
        result = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"\n== {result['events']:,} events, {result['users']:,} users, {ITEMS:,} items, {DAYS} days"
              f" (load with COPY: {result['load_s']:.1f} s, {result['events'] / result['load_s']:,.0f} rows/s)")
        print(f"{'stage':<10} {'seconds':>9} {'peak RSS MB':>12} {'rows':>12} {'rows/s':>12}")
        for stage, (seconds, mb, rows) in result["stages"].items():
            print(f"{stage:<10} {seconds:>9.2f} {mb:>12.0f} {rows:>12,} {rows / max(seconds, 1e-9):>12,.0f}")
        total = sum(s for s, _, _ in result["stages"].values())
        peak = max(mb for _, mb, _ in result["stages"].values())
        print(f"{'night':<10} {total:>9.2f} {peak:>12.0f}")
        result["nightly_s"], result["peak_rss_mb"] = total, peak
    largest = max(results, key=lambda r: r["events"])
    print(f"SUMMARY interactions={largest['events']} nightly_s={largest['nightly_s']:.1f} "
          f"peak_rss_mb={largest['peak_rss_mb']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
