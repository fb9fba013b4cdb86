"""Issue #19's fresh-news figures: how soon a new item reaches the live lists through the hourly
job, what one hourly run costs, and the MIND replay's AUC of the hybrid and of popularity.

(a) and (b) run on one throwaway database holding a synthetic live `hybrid` model (random user
factors and content map, registered and published like a night's; its lists are each user's
top-K of the catalogue by the model's own scores) and a catalogue of synthetic texts, embedded
by the real TF-IDF encoder before the new items arrive (so the hourly run encodes them itself,
as it does for items published after the night):

(a) time to list: items are published at uniformly random minutes of a few consecutive hours;
    after each hour the real hourly stage (`recsys.stages.fresh.run_fresh_hour`, the body of the
    `recsys_fresh_items` DAG's task) runs on that hour's interval. An item's time to list is
    (hour end + the run's measured seconds) - published_at, for the items found in
    live_recommendations after their hour's run (those no user's list took are counted apart).
    Airflow's scheduling delay (seconds, usually) is not in it: the run is timed from its start.
(b) one hourly run at U users x N new items (100,000 x 1,000; --quick: 10,000 x 200, said in the
    output): wall seconds and this process's peak RSS during the run (it holds the database
    client side only: PostgreSQL's own memory is not counted). Goal: under 60 s on 2 cores.
(c) the MIND replay (`recsys.stages.replay`) on the shared sample, on its own database: AUC per
    impression of the hybrid and of popularity, the mean over the replayed days (--quick: the
    last day only), with the cold share and the cold/warm figures printed per day.

Ends with `SUMMARY time_to_list_min=<median minutes> hourly_s=<seconds> peak_rss_mb=<MB>
mind_auc_hybrid=<AUC> mind_auc_popularity=<AUC>` (the MIND figures are nan without the shared
datasets).

    python bench/fresh.py            # 100,000 users x 1,000 new items, every MIND day
    python bench/fresh.py --quick    # 10,000 x 200, one MIND day
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]
DATASETS_DIR = REPO.parent / "shared" / "datasets"
MIND = DATASETS_DIR / "mind-small-sample"

from _common import PeakRss, bench_database  # noqa: E402

from recsys.config import Settings  # noqa: E402
from recsys.db.engine import raw_connection  # noqa: E402
from recsys.db.registry import model_version  # noqa: E402
from recsys.interval import DataInterval  # noqa: E402
from recsys.loaders.catalogue import write_catalogue  # noqa: E402
from recsys.models.hybrid import HybridModel  # noqa: E402
from recsys.stages.embed import embed_catalogue, load_vectors  # noqa: E402
from recsys.stages.fresh import run_fresh_hour  # noqa: E402
from recsys.stages.publish import publish_lists  # noqa: E402
from recsys.stages.train import save_and_register  # noqa: E402

logger = logging.getLogger("bench.fresh")

NIGHT = date(2026, 5, 4)                       # the synthetic model's as-of date
FIRST_HOUR = datetime(2026, 5, 4, 6, tzinfo=timezone.utc)
OLD_ITEMS = 2000                               # the catalogue the night embedded and listed
MF_FACTORS = 16
TOPICS = ("sports", "politics", "finance", "weather", "health", "travel", "music", "science", "autos", "food")


def _texts(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    """(titles, topics) of n synthetic articles: words drawn mostly from the article's topic's own
    vocabulary, so TF-IDF has structure to find."""
    vocab = {t: [f"{t}{w}" for w in range(60)] for t in TOPICS}
    common = [f"word{w}" for w in range(200)]
    topics = [TOPICS[i] for i in rng.integers(0, len(TOPICS), n)]
    titles = [" ".join(list(rng.choice(vocab[t], 6)) + list(rng.choice(common, 4))) for t in topics]
    return titles, topics


def _add_items(settings: Settings, first_id: int, titles: list[str], topics: list[str],
               published: list[datetime]) -> np.ndarray:
    ids = np.arange(first_id, first_id + len(titles), dtype=np.int64)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        write_catalogue(cur, "bench", ids, None, {"title": titles, "topic": topics, "published_at": published})
    return ids


def live_hybrid(settings: Settings, users: int, seed: int) -> None:
    """A live synthetic hybrid over OLD_ITEMS embedded catalogue items, its lists its own top-K."""
    rng = np.random.default_rng(seed)
    titles, topics = _texts(rng, OLD_ITEMS)
    old_ids = _add_items(settings, 1, titles, topics, [FIRST_HOUR - timedelta(days=2)] * OLD_ITEMS)
    embedded = embed_catalogue(settings)
    ids, vectors = load_vectors(settings, embedded.encoder_version, item_ids=old_ids)
    d = vectors.shape[1]
    content_map = rng.normal(0, 1 / math.sqrt(d), (d, MF_FACTORS)).astype(np.float32)
    item_factors = np.hstack([vectors @ content_map, vectors]).astype(np.float32)
    user_factors = rng.normal(0, 1, (users, MF_FACTORS + d)).astype(np.float32)
    user_ids = np.arange(1, users + 1, dtype=np.int64)
    interval = DataInterval.for_date(NIGHT)
    version = model_version("hybrid", NIGHT)
    meta = {"model": "hybrid", "model_version": version, "encoder_version": embedded.encoder_version,
            "profile_weight": 1.0, "mf_factors": MF_FACTORS,
            "data_interval": [interval.start.isoformat(), interval.end.isoformat()]}
    save_and_register(settings, interval, HybridModel(user_factors, item_factors, user_ids, ids, meta, content_map),
                      "hybrid", users, users, {"algorithm": "hybrid", "encoder_version": embedded.encoder_version,
                                               "synthetic": True}, "bench")
    k = settings.k
    top_items = np.empty((users, k), np.int64)
    top_scores = np.empty((users, k), np.float32)
    for lo in range(0, users, 8192):  # the night's lists: each user's top-K by the model, in chunks
        scores = user_factors[lo:lo + 8192] @ item_factors.T
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1)
        best = np.take_along_axis(best, order, axis=1)
        top_items[lo:lo + 8192], top_scores[lo:lo + 8192] = ids[best], np.take_along_axis(scores, best, axis=1)
    assert publish_lists(settings, "hybrid", version, NIGHT, np.repeat(user_ids, k),
                         np.tile(np.arange(1, k + 1, dtype=np.int16), users), top_items.ravel(), top_scores.ravel())


def listed_items(settings: Settings, ids: np.ndarray) -> set[int]:
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT DISTINCT item_id FROM live_recommendations WHERE model = 'hybrid' AND item_id = ANY(%s)",
                    (ids.tolist(),))
        return {int(r[0]) for r in cur.fetchall()}


def fresh_figures(settings: Settings, users: int, new_items: int, hours: int, per_hour: int,
                  seed: int) -> dict[str, float]:
    """(a) and (b) on one database: see the module doc."""
    rng = np.random.default_rng(seed + 1)
    started = time.perf_counter()
    live_hybrid(settings, users, seed)
    print(f"setup: live synthetic hybrid, {users:,} users x {OLD_ITEMS:,} items, in "
          f"{time.perf_counter() - started:.1f}s")
    next_id = OLD_ITEMS + 1
    # (b) the cost of one hour with `new_items` items
    titles, topics = _texts(rng, new_items)
    minutes = rng.uniform(0, 60, new_items)
    _add_items(settings, next_id, titles, topics, [FIRST_HOUR + timedelta(minutes=float(m)) for m in minutes])
    next_id += new_items
    with PeakRss() as rss:
        t0 = time.perf_counter()
        manifest = run_fresh_hour(settings, FIRST_HOUR, FIRST_HOUR + timedelta(hours=1))
        hourly_s = time.perf_counter() - t0
    print(f"(b) one hourly run, {users:,} users x {manifest.new_items:,} new items: {hourly_s:.2f}s "
          f"(goal < 60 s: {'met' if hourly_s < 60 else 'NOT met'}), peak RSS {rss.mb:.0f} MB, "
          f"{manifest.users_changed:,} lists changed")
    # (a) time to list over `hours` more hours of `per_hour` items each
    delays: list[float] = []
    unlisted = 0
    for h in range(1, hours + 1):
        start = FIRST_HOUR + timedelta(hours=h)
        titles, topics = _texts(rng, per_hour)
        published = [start + timedelta(minutes=float(m)) for m in rng.uniform(0, 60, per_hour)]
        ids = _add_items(settings, next_id, titles, topics, published)
        next_id += per_hour
        t0 = time.perf_counter()
        run_fresh_hour(settings, start, start + timedelta(hours=1))
        run_s = time.perf_counter() - t0
        listed = listed_items(settings, ids)
        unlisted += per_hour - len(listed)
        ready = start + timedelta(hours=1, seconds=run_s)
        delays += [(ready - p).total_seconds() / 60 for i, p in zip(ids.tolist(), published) if i in listed]
    median = float(np.median(delays)) if delays else float("nan")
    print(f"(a) time to list: {len(delays)} of {hours * per_hour} items listed after their hour's run "
          f"({unlisted} in no user's top {settings.k}); median {median:.1f} min, max {max(delays, default=math.nan):.1f}"
          f" min (goal: within one interval, 60 min, plus the run)")
    return {"time_to_list_min": median, "hourly_s": hourly_s, "peak_rss_mb": rss.mb}


def mind_figures(settings: Settings, quick: bool) -> dict[str, float]:
    """(c): the MIND replay on `settings`' (empty) database."""
    from recsys.loaders.mind import load_mind
    from recsys.stages.replay import replay, report_lines

    if not (MIND / "behaviors.tsv").exists():
        print(f"(c) MIND replay skipped: {MIND} missing")
        return {"mind_auc_hybrid": math.nan, "mind_auc_popularity": math.nan}
    load_mind(settings, MIND)
    s = dataclasses.replace(settings, source_table="mind_events", train_window_days=7)
    result = replay(s, days=[date(2019, 11, 14)] if quick else None)
    print("(c) MIND replay")
    for line in report_lines(result):
        print("  " + line)
    return {"mind_auc_hybrid": result.mean("hybrid", "all", "auc"),
            "mind_auc_popularity": result.mean("baseline_popular", "all", "auc")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 users x 200 new items, one MIND day")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    users, new_items, hours, per_hour = (10_000, 200, 2, 20) if args.quick else (100_000, 1_000, 3, 40)
    if args.quick:
        print(f"--quick: {users:,} users x {new_items:,} new items (the goal is stated at 100,000 x 1,000), "
              "one MIND day")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        with bench_database("bench_fresh", Path(tmp)) as url:
            figures = fresh_figures(Settings(database_url=url, artifact_dir=Path(tmp) / "a"), users, new_items,
                                    hours, per_hour, args.seed)
        with bench_database("bench_fresh_mind", Path(tmp)) as url:
            figures.update(mind_figures(Settings(database_url=url, artifact_dir=Path(tmp) / "m"), args.quick))
    print(f"total {time.perf_counter() - started:.1f}s")
    print("SUMMARY " + " ".join(f"{key}={value:.4f}" if key.startswith("mind") else f"{key}={value:.2f}"
                                for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
