"""Serving latency of the live view while nights run: eight readers, quiet and under load.

Simulates a log, runs the two nights below once, then eight reader processes
send the documented serving query (one user's top K through `live_recommendations`)
as fast as they can: first alone (quiet), then while another process runs real
nights over and over (forced, so each publishes): the newest date (a nightly
publish that swaps the live lists) and an older date (a backfill that only fills
history). Both dates run once before measuring, so every reader's user has a
whole list in every version it can see. Every answer is checked: exactly
K rows of one version with ranks 1..K; a mix of versions counts as `mixed`, a short
or empty list as `empty`, an exception as `errors`.

    python bench/readers_under_load.py            # 60 s under load, 10,000 users
    python bench/readers_under_load.py --quick    # 15 s under load, 5,000 users

Ends with `SUMMARY quiet_p99_us=.. load_p99_us=.. errors=.. mixed=.. empty=.. queries=.. nights=..`.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import bench_database  # noqa: E402

from recsys.dev import devdb  # noqa: E402
from recsys.config import Settings  # noqa: E402
from recsys.interval import DataInterval  # noqa: E402

READERS = 8
START = date(2026, 1, 1)
SERVING = ("SELECT model_version, rank FROM live_recommendations"
           " WHERE model = 'mf_als' AND user_id = %s ORDER BY rank LIMIT %s")


def reader(url: str, users: list[int], k: int, phase, stop, out, seed: int, ready) -> None:  # noqa: ANN001 - mp objects
    import psycopg2

    rng = random.Random(seed)
    latencies = {0: [], 1: []}
    errors = mixed = empty = 0
    conn = psycopg2.connect(devdb._dsn(url))
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET search_path TO recsys")
    with ready.get_lock():
        ready.value += 1
    while not stop.is_set():
        which = phase.value
        started = time.perf_counter()
        try:
            cur.execute(SERVING, (rng.choice(users), k))
            rows = cur.fetchall()
        except Exception:  # noqa: BLE001 - counted and reported
            errors += 1
            continue
        latencies[which].append(time.perf_counter() - started)
        if len({r[0] for r in rows}) > 1:
            mixed += 1
        elif [r[1] for r in rows] != list(range(1, k + 1)):
            empty += 1
    conn.close()
    out.put((latencies[0], latencies[1], errors, mixed, empty))


def nights(settings: Settings, newest: date, backfill: date, go, stop, count, ready) -> None:  # noqa: ANN001
    from recsys.pipeline import run_night

    with ready.get_lock():
        ready.value += 1
    go.wait()
    while not stop.is_set():
        for run_date in (newest, backfill):
            run_night(settings, DataInterval.for_date(run_date), triggered_by="benchmark", force_publish=True)
            with count.get_lock():
                count.value += 1
            if stop.is_set():
                return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, help="time under load (default 60, quick 15)")
    args = parser.parse_args()
    load_s = args.seconds or (15.0 if args.quick else 60.0)
    quiet_s = 10.0 if args.quick else 15.0
    users, items, days = (5_000, 1_000, 14) if args.quick else (10_000, 2_000, 21)

    from recsys.sim.synthetic_log import simulate_log

    with tempfile.TemporaryDirectory() as tmp, bench_database("recsys_bench_load", Path(tmp)) as url:
        base = Settings(database_url=url, artifact_dir=Path(tmp) / "artifacts", train_window_days=14)
        settings = dataclasses.replace(base, search=dataclasses.replace(base.search, enabled=False))
        summary = simulate_log(settings, days=days, users=users, items=items, seed=7, start_date=START)
        newest = START + timedelta(days=days)  # the as-of date after the log's last day
        from recsys.pipeline import run_night

        backfill = newest - timedelta(days=5)
        t0 = time.perf_counter()
        # both dates once before measuring: the lists under load are re-runs of the same data,
        # so every user picked below has a whole list in every version a reader can see
        run_night(settings, DataInterval.for_date(newest), triggered_by="benchmark", force_publish=True)
        night_s = time.perf_counter() - t0
        run_night(settings, DataInterval.for_date(backfill), triggered_by="benchmark", force_publish=True)
        import psycopg2

        conn = psycopg2.connect(devdb._dsn(url))
        with conn.cursor() as cur:
            cur.execute("SELECT DISTINCT user_id FROM recsys.live_recommendations")
            live_users = [r[0] for r in cur.fetchall()]
        conn.close()

        ctx = mp.get_context("spawn")
        phase, stop, stop_nights = ctx.Value("i", 0), ctx.Event(), ctx.Event()
        count, out, ready, go = ctx.Value("i", 0), ctx.Queue(), ctx.Value("i", 0), ctx.Event()
        procs = [ctx.Process(target=reader, args=(url, live_users, settings.k, phase, stop, out, i, ready))
                 for i in range(READERS)]
        runner = ctx.Process(target=nights, args=(settings, newest, backfill, go, stop_nights,
                                                  count, ready))
        for p in [*procs, runner]:
            p.start()
        while ready.value < READERS + 1:  # every process has imported what it needs and connected
            time.sleep(0.1)
        time.sleep(quiet_s)
        phase.value = 1
        go.set()
        time.sleep(load_s)
        stop.set()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        stop_nights.set()
        runner.join()

    quiet = np.concatenate([np.asarray(r[0]) for r in results])
    load = np.concatenate([np.asarray(r[1]) for r in results])
    errors, mixed, empty = (sum(r[i] for r in results) for i in (2, 3, 4))
    print(f"log: {summary.events} events, {users} users, {items} items, {days} days; one night {night_s:.1f} s")
    print(f"quiet: {len(quiet)} queries in {quiet_s:.0f} s, p50 {np.percentile(quiet, 50) * 1e6:.0f} us, "
          f"p99 {np.percentile(quiet, 99) * 1e6:.0f} us")
    print(f"load:  {len(load)} queries in {load_s:.0f} s, p50 {np.percentile(load, 50) * 1e6:.0f} us, "
          f"p99 {np.percentile(load, 99) * 1e6:.0f} us, {count.value} nights finished (nightly + backfill)")
    print(f"SUMMARY quiet_p99_us={np.percentile(quiet, 99) * 1e6:.0f} load_p99_us={np.percentile(load, 99) * 1e6:.0f} "
          f"errors={errors} mixed={mixed} empty={empty} queries={len(quiet) + len(load)} nights={count.value}")
    return 0 if errors == mixed == empty == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
