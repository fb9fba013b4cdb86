"""Benchmark of one whole night, per stage, at growing data sizes.

For each size: a simulated log (20,000 items, 28 days; 100,000 users at
10,000,000 events) is loaded with COPY into a fresh database, then one nightly
run (as-of the day after the log ends) is timed stage by stage: seconds, peak
resident memory during the stage, and rows per second. Each size runs in its own
process so memory figures do not mix.

The RL branch (`rl_reinforce`: train_rl, score_rl, ope_rl) runs on the same log
after the MF branch, its item embeddings starting from the night's ALS factors as in
a real night; about 90 % of the events are impressions, RL's training examples.

    python bench/nightly.py            # 1,000,000 and 10,000,000 events
    python bench/nightly.py --quick    # 200,000 events, RL with 1 epoch
    python bench/nightly.py --sizes 3000000
    python bench/nightly.py --no-rl    # the MF branch alone

Ends with `SUMMARY interactions=<n> nightly_s=<s> peak_rss_mb=<MB> rl_impressions=<n>
rl_train_s=<s> rl_peak_rss_mb=<MB>` for the largest size (nightly_s and peak_rss_mb
cover both branches). The project's goals: a night at 10,000,000 events under 15
minutes on 2 cores; train_rl at 10,000,000 impressions under 10 minutes and 6 GB.
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


def run_size(target_events: int, rl: bool = True, rl_epochs: int | None = None) -> dict:
    from _common import bench_database, score_and_publish, timed

    from recsys.config import Settings
    from recsys.stages.extract import extract_window
    from recsys.stages.evaluate import evaluate_holdout
    from recsys.interval import DataInterval
    from recsys.stages.score import score_shard
    from recsys.stages.retention import refresh_retention
    from recsys.sim.synthetic_log import simulate_log, users_for_target_events
    from recsys.stages.train import train_als

    users = users_for_target_events(target_events, DAYS)
    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as tmp, bench_database("recsys_bench_nightly", Path(tmp)) as url:
        settings = Settings.from_env(database_url=url, artifact_dir=Path(tmp) / "artifacts")
        if rl_epochs is not None:
            settings = dataclasses.replace(settings, rl=dataclasses.replace(settings.rl, epochs=rl_epochs))
        summary, load_s, load_mb = timed(simulate_log, settings, DAYS, users, ITEMS, seed=1, start_date=START)
        interval = DataInterval.for_date(START + timedelta(days=DAYS))
        stages = {}
        extracted, s, mb = timed(extract_window, settings, interval)
        stages["extract"] = (s, mb, extracted.n_events)
        trained, s, mb = timed(train_als, settings, interval, extracted.dataset_path, "benchmark", model="mf_als")
        stages["train"] = (s, mb, trained.n_interactions)
        _, s, mb = timed(evaluate_holdout, settings, interval, extracted.dataset_path, trained.model_version)
        stages["evaluate"] = (s, mb, trained.n_interactions)
        published, s, mb = timed(score_and_publish, settings, extracted.dataset_path, trained.model_version,
                                 interval.run_date)
        stages["publish"] = (s, mb, published.rows)
        refreshed, s, mb = timed(refresh_retention, settings, interval.run_date)
        stages["retention"] = (s, mb, summary.events)
        rl_impressions = 0
        if rl:
            from recsys.stages.ope import estimate_candidate
            from recsys.stages.train_rl import train_rl

            rl_trained, s, mb = timed(train_rl, settings, interval, extracted.dataset_path, "benchmark",
                                      model="rl_reinforce", learner="reinforce", init_from="mf_als")
            rl_impressions = rl_trained.n_impressions
            stages["train_rl"] = (s, mb, rl_impressions)
            rl_scored, s, mb = timed(score_shard, settings, extracted.dataset_path, rl_trained.model_version)
            stages["score_rl"] = (s, mb, rl_trained.n_users)
            estimated, s, mb = timed(estimate_candidate, settings, interval, extracted.dataset_path,
                                     rl_trained.model_version, rl_scored.path)
            stages["ope_rl"] = (s, mb, estimated.n_impressions)
    return {"events": summary.events, "users": users, "load_s": load_s, "load_mb": load_mb, "stages": stages,
            "rl_impressions": rl_impressions}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one size of 200,000 events")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--no-rl", action="store_true", help="the MF branch alone")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rl-epochs", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # RL's per-epoch diagnostics are part of what the benchmark shows
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("recsys.models.rl").setLevel(logging.INFO)
    if args.child:
        print(json.dumps(run_size(args.child, rl=not args.no_rl, rl_epochs=args.rl_epochs)))
        return 0
    sizes = args.sizes or ([200_000] if args.quick else [1_000_000, 10_000_000])
    results = []
    for size in sizes:
        command = [sys.executable, __file__, "--child", str(size)] + (["--no-rl"] if args.no_rl else []) + \
            (["--rl-epochs", "1"] if args.quick else [])  # --quick stays under a minute
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-4000:], file=sys.stderr)
            return 1
        print("\n".join(line for line in out.stderr.splitlines() if "epoch" in line), file=sys.stderr)
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
        if "train_rl" in result["stages"]:
            rl_total = sum(result["stages"][name][0] for name in ("train_rl", "score_rl", "ope_rl"))
            print(f"{'RL branch':<10} {rl_total:>9.2f}  ({result['rl_impressions']:,} impressions)")
    largest = max(results, key=lambda r: r["events"])
    line = (f"SUMMARY interactions={largest['events']} nightly_s={largest['nightly_s']:.1f} "
            f"peak_rss_mb={largest['peak_rss_mb']:.0f}")
    if "train_rl" in largest["stages"]:
        seconds, mb, _ = largest["stages"]["train_rl"]
        line += f" rl_impressions={largest['rl_impressions']} rl_train_s={seconds:.1f} rl_peak_rss_mb={mb:.0f}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
