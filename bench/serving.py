"""Serving latency through the live view, and publish throughput, against their floors.

Publishes U users x 100 recommendations with the real publish path, twice: once
for a log with integer ids (model mf_als), once for a log with text keys and a
catalogue whose items all carry an expiry (model mf_bpr: the lists carry the
keys and expiries, the key index is built). Then, from one client on loopback,
times three interleaved streams, so all see the same CPU placement: the
documented serving query by user id (serving/top_k.sql), the one by the log's
own key (serving/top_k_by_key.sql: the key index probe plus the expiry filter),
and the same lookup on a plain indexed table holding the same rows (the
floor). Publish throughput (first byte written to the new version live and
indexed) is compared with a raw COPY of the same rows into a plain, unindexed
table, measured in the same run.

    python bench/serving.py            # 100,000 users x 100
    python bench/serving.py --quick    # 10,000 users x 100

Ends with `SUMMARY p50_us=.. p99_us=.. p99_vs_bare=.. publish_vs_copy=..
key_p99_us=.. key_p99_vs_bare=.. keyed_publish_vs_copy=..`.
Targets: p99_vs_bare <= 1.5 and key_p99_vs_bare <= 1.5, publish_vs_copy >= 0.7.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import bench_database  # noqa: E402

from recsys.dev import devdb  # noqa: E402
from recsys.config import Settings  # noqa: E402
from recsys.db.copy_binary import COPY_HEADER, COPY_TRAILER, PG_EPOCH  # noqa: E402
from recsys.db.engine import load_sql, raw_connection  # noqa: E402
from recsys.source import assign_listed_keys  # noqa: E402
from recsys.stages.publish import publish_lists  # noqa: E402
from recsys.db.registry import register_trained  # noqa: E402

MODEL, KEYED_MODEL, PER_USER, RUN_DATE = "mf_als", "mf_bpr", 100, date(2026, 1, 2)


def lists(users: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    user_ids = np.repeat(np.arange(users, dtype=np.int64) * 7 + 3, PER_USER)
    ranks = np.tile(np.arange(1, PER_USER + 1, dtype=np.int16), users)
    items = rng.integers(0, 20_000, size=users * PER_USER)
    scores = np.tile(np.linspace(1, 0, PER_USER, dtype=np.float32), users)
    return user_ids, ranks, items, scores




def recommendation_rows(model: str, version: str, run_date: date, user_ids: np.ndarray, ranks: np.ndarray,
                        item_ids: np.ndarray, scores: np.ndarray) -> io.BytesIO:
    """Binary COPY stream for columns (model, model_version, run_date, user_id, rank, item_id, score):
    the one-row-per-recommendation layout the raw COPY floor is measured with (the published
    layout, one row of arrays per user, is recsys.db.copy_binary.recommendation_list_rows)."""
    model_b, version_b = model.encode(), version.encode()
    dtype = np.dtype([
        ("nfields", ">i2"),
        ("model_len", ">i4"), ("model", f"S{len(model_b)}"),
        ("version_len", ">i4"), ("version", f"S{len(version_b)}"),
        ("date_len", ">i4"), ("date", ">i4"),
        ("user_len", ">i4"), ("user", ">i8"),
        ("rank_len", ">i4"), ("rank", ">i2"),
        ("item_len", ">i4"), ("item", ">i8"),
        ("score_len", ">i4"), ("score", ">f4"),
    ])
    rows = np.empty(len(user_ids), dtype=dtype)
    rows["nfields"] = 7
    rows["model_len"], rows["model"] = len(model_b), model_b
    rows["version_len"], rows["version"] = len(version_b), version_b
    rows["date_len"], rows["date"] = 4, (run_date - PG_EPOCH).days
    rows["user_len"], rows["user"] = 8, user_ids
    rows["rank_len"], rows["rank"] = 2, ranks
    rows["item_len"], rows["item"] = 8, item_ids
    rows["score_len"], rows["score"] = 4, scores
    return io.BytesIO(COPY_HEADER + rows.tobytes() + COPY_TRAILER)


def register(settings: Settings, run_date: date, model: str = MODEL) -> str:
    end = datetime.combine(run_date, datetime.min.time(), tzinfo=timezone.utc)
    return register_trained(settings, {
        "model": model, "model_kind": "mf", "model_version": f"{model}@{run_date}", "run_date": run_date,
        "data_interval_start": end - timedelta(days=1), "data_interval_end": end, "train_window_start": end,
        "n_interactions": 0, "n_users": 0, "n_items": 0, "params": {}, "triggered_by": "benchmark",
        "artifact_path": "-", "artifact_sha256": "-"})


def publish_keyed(settings: Settings, cur, user_ids: np.ndarray, ranks: np.ndarray, items: np.ndarray,
                  scores: np.ndarray):  # noqa: ANN001, ANN201 - psycopg2 cursor; (seconds, key lookup)
    """Publish the same lists as KEYED_MODEL for a log with text keys and a catalogue of expiring items.

    Returns the publish's seconds and a function from a user id of `lists` to its text key.
    """
    cur.execute("CREATE VIEW text_keyed_log AS SELECT now() AS event_time, ''::text AS user_id, ''::text AS item_id,"
                " ''::text AS event_type WHERE false")
    keyed = dataclasses.replace(settings, source_table="text_keyed_log")
    distinct_users, distinct_items = np.unique(user_ids), np.unique(items)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as tx:  # one transaction
        user_internal = assign_listed_keys(tx, settings.schema, "user",
                                           np.array([f"user-{u:08d}" for u in distinct_users]))
        item_internal = assign_listed_keys(tx, settings.schema, "item",
                                           np.array([f"article-{i:06d}" for i in distinct_items]))
    # every item expires next week: the lists carry expiries and the live view filters on them
    cur.execute("INSERT INTO items (item_id, item_key, available_until) SELECT id, 'article-' || lpad(n::text, 6, '0'),"
                " now() + interval '7 days' FROM unnest(%s::bigint[], %s::bigint[]) AS u (id, n)",
                (item_internal.tolist(), distinct_items.tolist()))
    version = register(settings, RUN_DATE, KEYED_MODEL)
    t0 = time.perf_counter()
    publish_lists(keyed, KEYED_MODEL, version, RUN_DATE, user_internal[np.searchsorted(distinct_users, user_ids)],
                  ranks, item_internal[np.searchsorted(distinct_items, items)], scores)
    seconds = time.perf_counter() - t0
    cur.execute("ANALYZE")
    return seconds, lambda user: f"user-{user:08d}"


def percentile_us(samples: list[int], q: float) -> float:
    return float(np.percentile(np.array(samples) / 1000.0, q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--queries", type=int, default=None, help="queries per stream")
    args = parser.parse_args()
    users = 10_000 if args.quick else 100_000
    n_queries = args.queries or (5_000 if args.quick else 20_000)
    user_ids, ranks, items, scores = lists(users)
    import psycopg2

    with tempfile.TemporaryDirectory() as tmp, bench_database("recsys_bench_serving", Path(tmp)) as url:
        settings = Settings.from_env(database_url=url, artifact_dir=Path(tmp))
        # warm-up publish of an older version, so the timed one is a real swap
        register(settings, RUN_DATE - timedelta(days=1))
        publish_lists(settings, MODEL, f"{MODEL}@{RUN_DATE - timedelta(days=1)}", RUN_DATE - timedelta(days=1),
                      *lists(users, seed=1))
        version = register(settings, RUN_DATE)
        t0 = time.perf_counter()
        publish_lists(settings, MODEL, version, RUN_DATE, user_ids, ranks, items, scores)
        publish_s = time.perf_counter() - t0

        conn = psycopg2.connect(devdb._dsn(url))
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SET search_path TO recsys")
        keyed_publish_s, user_key_of = publish_keyed(settings, cur, user_ids, ranks, items, scores)
        cur.execute("CREATE TABLE bare_recs (LIKE recommendations)")
        payload = recommendation_rows(MODEL, version, RUN_DATE, user_ids, ranks, items, scores)
        t0 = time.perf_counter()
        cur.copy_expert("COPY bare_recs (model, model_version, run_date, user_id, rank, item_id, score)"
                        " FROM STDIN WITH (FORMAT binary)", payload)
        copy_s = time.perf_counter() - t0
        cur.execute("CREATE INDEX ON bare_recs (user_id, rank)")
        cur.execute("VACUUM ANALYZE bare_recs")
        cur.execute("ANALYZE")

        live_sql, key_sql = load_sql("serving/top_k"), load_sql("serving/top_k_by_key")
        bare_sql = "SELECT rank, item_id, score FROM bare_recs WHERE user_id = %(user_id)s ORDER BY rank LIMIT %(k)s"
        rng = np.random.default_rng(7)
        picks = rng.integers(0, users, size=n_queries) * 7 + 3
        live_ns, key_ns, bare_ns = [], [], []
        for i, user in enumerate(picks.tolist()):
            params = {"model": MODEL, "user_id": user, "k": 10}
            key_params = {"model": KEYED_MODEL, "user_key": user_key_of(user), "k": 10}
            streams = [(live_sql, params, live_ns), (key_sql, key_params, key_ns), (bare_sql, params, bare_ns)]
            for statement, bound, out in streams[i % 3:] + streams[:i % 3]:  # interleaved, rotating order
                started = time.perf_counter_ns()
                cur.execute(statement, bound)
                rows = cur.fetchall()
                out.append(time.perf_counter_ns() - started)
                if len(rows) != 10:
                    raise RuntimeError(f"user {user}: {len(rows)} rows")
        plans = []
        for statement, bound in ((live_sql, {"model": MODEL, "user_id": 10, "k": 10}),
                                 (key_sql, {"model": KEYED_MODEL, "user_key": user_key_of(10), "k": 10})):
            cur.execute("EXPLAIN " + cur.mogrify(statement, bound).decode())
            plans.append("\n".join(r[0] for r in cur.fetchall()))
        conn.close()

    rows_n = len(user_ids)
    print(f"{users:,} users x {PER_USER} = {rows_n:,} rows; {n_queries:,} queries per stream, interleaved")
    print(f"{'query':<22} {'p50 us':>8} {'p99 us':>8}")
    for name, samples in (("live view by id", live_ns), ("live view by text key", key_ns),
                          ("bare index lookup", bare_ns)):
        print(f"{name:<22} {percentile_us(samples, 50):>8.0f} {percentile_us(samples, 99):>8.0f}")
    print(f"publish: {publish_s:.2f} s ({rows_n / publish_s:,.0f} rows/s, live and indexed); with text keys "
          f"and expiries: {keyed_publish_s:.2f} s; raw COPY into a plain table: {copy_s:.2f} s "
          f"({rows_n / copy_s:,.0f} rows/s)")
    print("plan of the query by id:\n" + plans[0] + "\nplan of the query by key:\n" + plans[1])
    p50, p99, bare_p99 = percentile_us(live_ns, 50), percentile_us(live_ns, 99), percentile_us(bare_ns, 99)
    key_p99 = percentile_us(key_ns, 99)
    print(f"SUMMARY p50_us={p50:.0f} p99_us={p99:.0f} p99_vs_bare={p99 / bare_p99:.2f} "
          f"publish_vs_copy={copy_s / publish_s:.2f} key_p99_us={key_p99:.0f} key_p99_vs_bare={key_p99 / bare_p99:.2f} "
          f"keyed_publish_vs_copy={copy_s / keyed_publish_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
