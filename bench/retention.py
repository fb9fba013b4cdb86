"""Benchmark of the nightly retention refresh on a simulated log.

Loads a simulated log (`recsys.sim.synthetic_log`, 28 days; impressions served
by 'mf_als' for even user ids and 'rl_policy' for odd ones, so per-model
retention has two arms) with COPY into a fresh database on the local server
(or an embedded one), runs one refresh that loads the history up to the start
of the measured nights, then the nightly refresh for each of the last
`--nights` dates, printing seconds and rows touched (rows inserted, updated or
deleted in every retention table) per refresh. Then `full_recompute` rebuilds
every output from the raw log, and the incremental cells are compared with it.

    python bench/retention.py            # 10,000,000 interactions
    python bench/retention.py --quick    # 500,000 interactions, under a minute

Ends with `SUMMARY refresh_s=<median seconds of one nightly refresh>
rows_touched=<median rows touched by one nightly refresh>
incremental_equals_full=<true|false>`. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DAYS = 28
ITEMS = 20_000
START = date(2026, 1, 1)
SNAPSHOT_QUERIES = {
    "retention": ("SELECT retention_kind, cohort_date, day_n, cohort_size, retained_users, rate, is_mature"
                  " FROM retention", 3),
    "engagement": ("SELECT day, dau, wau, mau, stickiness, is_full_window FROM engagement", 1),
    "model_retention": ("SELECT model_version, serve_day, day_n, users_served, retained_users, rate,"
                        " ci_low, ci_high, is_mature FROM model_retention", 3),
}


def two_model_days(days: int, users: int, seed: int) -> Iterator:
    """The simulator's day frames with impressions split between two serving models."""
    import numpy as np

    from recsys.sim.synthetic_log import iter_day_events

    for frame in iter_day_events(days, users, ITEMS, seed, START):
        impressions = frame["event_type"].to_numpy() == "impression"
        model = np.where(frame["user_id"].to_numpy() % 2 == 0, "mf_als", "rl_policy")
        frame["model_version"] = np.where(impressions, model, None)
        yield frame


def snapshot(settings) -> dict[str, dict]:  # noqa: ANN001 - Settings, imported lazily
    from recsys.db.engine import raw_connection

    out = {}
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        for table, (query, width) in SNAPSHOT_QUERIES.items():
            cur.execute(query)
            out[table] = {r[:width]: r[width:] for r in cur.fetchall()}
    return out


def run(interactions: int, nights: int, seed: int) -> dict:
    from recsys.db import engine as db
    from recsys.dev import devdb
    from recsys.db import migrations
    from recsys.config import Settings
    from recsys.loaders.copy_writer import replace_source_rows
    from recsys.stages.retention import full_recompute, refresh_retention
    from recsys.sim.synthetic_log import users_for_target_events

    with tempfile.TemporaryDirectory(prefix="bench_retention_") as tmp:
        admin = (devdb.LOCAL_ADMIN_URL if devdb.reachable(devdb.LOCAL_ADMIN_URL)
                 else devdb.start_embedded(Path(tmp) / "pgdata", keep_running=False))
        name = f"bench_retention_{uuid.uuid4().hex[:8]}"
        url = devdb.create_database(admin, name, exist_ok=False)
        try:
            settings = Settings(database_url=url, artifact_dir=Path(tmp) / "artifacts")
            migrations.upgrade(url, settings.schema)
            users = users_for_target_events(interactions, DAYS)
            t0 = time.perf_counter()
            events = replace_source_rows(settings, f"simulate:seed={seed}", two_model_days(DAYS, users, seed))
            with db.raw_connection(url, settings.schema) as conn, conn.cursor() as cur:
                cur.execute("SELECT brin_summarize_new_values('interactions_event_time_brin')")
                cur.execute("ANALYZE interactions")
            load_s = time.perf_counter() - t0
            print(f"loaded {events:,} interactions ({users:,} users, {DAYS} days) in {load_s:.1f} s", flush=True)

            dates = [START + timedelta(days=DAYS - nights + k) for k in range(1, nights + 1)]
            first = refresh_retention(settings, dates[0] - timedelta(days=1))
            print(f"initial refresh as of {first.run_date} (loads the history): {first.seconds:.2f} s, "
                  f"{first.rows_touched:,} rows touched", flush=True)
            results = []
            for d in dates:
                r = refresh_retention(settings, d)
                results.append(r)
                print(f"nightly refresh as of {d}: {r.seconds:.3f} s, {r.rows_touched:,} rows touched "
                      f"({r.activity_rows:,} activity, {r.served_rows:,} served, {r.cells_written} retention, "
                      f"{r.model_cells} per-model cells)", flush=True)
            rerun = refresh_retention(settings, dates[-1])
            print(f"re-run of {dates[-1]}: {rerun.seconds:.3f} s, {rerun.rows_touched:,} rows touched", flush=True)

            incremental = snapshot(settings)
            t0 = time.perf_counter()
            full_recompute(settings, dates[-1])
            full_s = time.perf_counter() - t0
            full = snapshot(settings)
            mismatches = {
                table: sum(full[table].get(k) != v for k, v in rows.items())
                for table, rows in incremental.items()
            }
            equal = not any(mismatches.values()) and all(incremental.values())
            print(f"full recompute as of {dates[-1]}: {full_s:.2f} s; incremental cells per table "
                  f"{ {t: len(v) for t, v in incremental.items()} }, differing from full: {mismatches}")
            return {
                "events": events,
                "refresh_s": statistics.median(r.seconds for r in results),
                "rows_touched": int(statistics.median(r.rows_touched for r in results)),
                "equal": equal,
            }
        finally:
            db.dispose_engines()
            devdb.drop_database(admin, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500,000 interactions")
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--nights", type=int, default=7, help="nightly refreshes measured")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each refresh step")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    interactions = 500_000 if args.quick else args.interactions
    result = run(interactions, args.nights, args.seed)
    print(f"SUMMARY refresh_s={result['refresh_s']:.3f} rows_touched={result['rows_touched']} "
          f"incremental_equals_full={str(result['equal']).lower()}")
    return 0 if result["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
