"""The closed loop: a simulated day served from the published tables, then the nightly retraining.

Each simulated day d (date start_date + d):

1. The day's active users (`World.active_users`) are split into arms by a stable
   hash of the user id (`arm_of`): one arm per model of the catalogue among the arms
   (by default its `closed_loop_arm` models) plus `random` and `popularity`.
2. A model arm serves each user the model's live list (`live_recommendations`),
   padded with popular items when shorter than the slate (a user the model has not
   seen yet gets the popularity list). Slot k shows the list's k-th item with
   probability 1 - explore, otherwise an item drawn uniformly from the catalogue
   minus the list and the slate so far. The logged propensity is the item's exact
   inclusion probability P(item in slate) under the arm's policy: 1 - explore for a
   list item; K * explore / (items - K) for an exploratory one (the explored items
   are a uniform subset of the non-list items, of expected size K * explore).
   `popularity` does the same with the most clicked items of the last 7 simulated
   days; `random` shows a uniform slate without replacement (propensity K / items).
   Inclusion probabilities are what item-level off-policy estimators need
   (recsys.metrics.off_policy.list_policy_prob); propensity / K is the single-draw probability the
   RL behaviour correction uses.
   Impressions carry the arm's live version (`<model>@<date>`; `<arm>@sim` for the
   two baselines, `<model>@bootstrap` before the model has ever been published).
3. The world responds (`World.step`); impressions, clicks and consumption are written
   to `interactions` as source `closed_loop:seed=<seed>:day=<date>` (a re-run of a
   day replaces its rows), and the ground truth of every user in the system to
   `sim_user_days` (never read by training).
4. `nightly(run_date=d + 1)` runs: normally `recsys.pipeline.run_night`.

Arms are assigned per user for the whole run, so per-model retention in
`model_retention` is the A/B read-out.

`run_closed_loop` (the CLI, the benchmark) keeps the world in memory across days;
recsys.sim.stepwise plays the same days one task at a time from a saved state (the
`recsys_closed_loop` DAG), and writes the same rows for a seed.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from recsys import catalogue
from recsys.config import Settings
from recsys.db.engine import copy_in, load_sql, raw_connection, require_tables
from recsys.loaders.copy_writer import EVENT_TYPES, replace_source_rows
from recsys.sim.world import DayOutcome, World, WorldParams

logger = logging.getLogger(__name__)

BASELINE_ARMS = ("random", "popularity")
DEFAULT_ARMS = BASELINE_ARMS + tuple(catalogue.closed_loop_arms())
SESSION_ID_STRIDE = 1_000_000_000
_ARM_SALT = np.uint64(0x9E3779B97F4A7C15)
_POPULARITY_DAYS = 7


@dataclass(frozen=True)
class ClosedLoopSummary:
    """What a closed-loop run wrote: events, days, per-arm served users, and the nightly reports."""

    sim_source: str
    days: int
    events: int
    served: dict[str, int]
    seconds: float
    nights: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class DayResult:
    """What one simulated day wrote: its index and date, active users, events, served users per arm."""

    day: int
    date: date
    active_users: int
    events: int
    served: dict[str, int]


def arm_of(user_ids: np.ndarray, n_arms: int) -> np.ndarray:
    """Stable arm number of each user id: a salted 64-bit multiplicative hash, mod n_arms."""
    with np.errstate(over="ignore"):
        mixed = (np.asarray(user_ids).astype(np.uint64) + np.uint64(1)) * _ARM_SALT
    return ((mixed >> np.uint64(33)) % np.uint64(n_arms)).astype(np.int64)


def sim_source(seed: int) -> str:
    return f"closed_loop:seed={seed}"


class ArmServer:
    """Builds the slates of one day for every arm, with their per-slot propensities."""

    def __init__(self, n_items: int, slate_size: int, explore: float, seed: int) -> None:
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"explore must be in [0, 1], got {explore}")
        self.n_items, self.k, self.explore, self.seed = n_items, slate_size, explore, seed
        self.click_history: list[np.ndarray] = []  # per day, clicks per item

    def popularity_list(self) -> np.ndarray:
        """The K most clicked items of the last 7 days (seeded random tie-break)."""
        counts = np.sum(self.click_history[-_POPULARITY_DAYS:], axis=0) if self.click_history else np.zeros(self.n_items)
        tiebreak = np.random.default_rng([self.seed, 5]).random(self.n_items)
        return np.lexsort((tiebreak, -counts))[: self.k]

    def record_clicks(self, outcome: DayOutcome) -> None:
        self.click_history.append(np.bincount(outcome.slate[outcome.click], minlength=self.n_items))

    def random_slates(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        slate = np.stack([rng.choice(self.n_items, self.k, replace=False) for _ in range(n)]) if n else \
            np.empty((0, self.k), np.int64)
        propensity = np.full((n, self.k), self.k / self.n_items)
        return slate, propensity

    def explored_slates(self, lists: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(n, K) slates from (n, K) lists (slot k keeps the list item with prob 1 - explore) and
        each shown item's inclusion probability."""
        n, k = lists.shape
        explore = rng.random((n, k)) < self.explore
        slate = lists.copy()
        propensity = np.full((n, k), 1.0 - self.explore)
        for slot in range(k):
            rows = np.flatnonzero(explore[:, slot])
            picks = rng.integers(0, self.n_items, rows.size)
            for _ in range(10_000):  # rejection = uniform over the items not excluded
                bad = (lists[rows] == picks[:, None]).any(axis=1) | (slate[rows, :slot] == picks[:, None]).any(axis=1)
                if not bad.any():
                    break
                picks[bad] = rng.integers(0, self.n_items, int(bad.sum()))
            slate[rows, slot] = picks
            propensity[rows, slot] = k * self.explore / (self.n_items - k)
        return slate, propensity


def fill_lists(lists: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """(n, K) lists with -1 holes filled, in order, by fallback items not already in the row."""
    out = lists.copy()
    for row in np.flatnonzero((out < 0).any(axis=1)):
        present = set(out[row][out[row] >= 0].tolist())
        extra = iter([i for i in fallback.tolist() if i not in present])
        out[row] = [v if v >= 0 else next(extra) for v in out[row]]
    return out


def read_live_lists(settings: Settings, model: str, user_ids: np.ndarray, k: int) -> tuple[np.ndarray, str | None]:
    """(n, K) live item ids of `model` for `user_ids` (-1 where missing) and the live version."""
    lists = np.full((len(user_ids), k), -1, dtype=np.int64)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "live_recommendations", "live_models")
        cur.execute(load_sql("sim/live_version"), {"model": model})
        row = cur.fetchone()
        if row is None:
            return lists, None
        cur.execute(load_sql("sim/live_lists"), {"model": model, "users": [int(u) for u in user_ids]})
        rows = np.array(cur.fetchall(), dtype=object).reshape(-1, 4)
    if rows.size:
        pos = np.searchsorted(user_ids, rows[:, 0].astype(np.int64))
        rank = rows[:, 1].astype(np.int64) - 1
        keep = rank < k
        lists[pos[keep], rank[keep]] = rows[keep, 2].astype(np.int64)
    return lists, row[0]


def run_closed_loop(
    settings: Settings,
    days: int,
    users: int,
    items: int,
    seed: int,
    start_date: date = date(2026, 1, 1),
    params: WorldParams | None = None,
    arms: Sequence[str] = DEFAULT_ARMS,
    explore: float = 0.1,
    nightly: Callable[[date], Any] | None = None,
    world: World | None = None,
    on_day: Callable[..., None] | None = None,
    before_day: Callable[..., None] | None = None,
) -> ClosedLoopSummary:
    """Simulate `days` days; after each, call `nightly(run_date)` (the retraining).

    Args:
        settings: database, schema and K (the slate size is params.slate_size).
        days, users, items, seed: size of the world and its seed.
        arms: arm names; names other than `random` / `popularity` are model names
            served from `live_recommendations`.
        explore: per-slot exploration rate of the list arms.
        nightly: called with the as-of date d + 1 after day d is written.
        world: an existing world to continue (e.g. a benchmark keeping a handle on it).
        on_day: called after each simulated day with (day, world, outcome, propensity, versions),
            before the night.
        before_day: called with (day, world, server, active users) before the day is served
            (e.g. to roll a policy out on `world.copy()`).
    """
    started = time.perf_counter()
    params = params or WorldParams()
    world = world or World(users, items, days, seed, params)
    server = ArmServer(world.n_items, params.slate_size, explore, seed)
    write_items(settings, sim_source(seed), world)
    served = {a: 0 for a in arms}
    events, nights = 0, []
    for day in range(days):
        result = play_day(settings, world, server, arms, seed, day, start_date, before_day, on_day)
        events += result.events
        for name, n in result.served.items():
            served[name] += n
        if nightly is not None:
            nights.append(nightly(result.date + timedelta(days=1)))
    return ClosedLoopSummary(sim_source(seed), days, events, served, time.perf_counter() - started, nights)


def play_day(settings: Settings, world: World, server: ArmServer, arms: Sequence[str], seed: int, day: int,
             start_date: date, before_day: Callable[..., None] | None = None,
             on_day: Callable[..., None] | None = None) -> DayResult:
    """Serve, step and log simulated day `day` (steps 1-3 of the module docstring); no night.

    `world` and `server` advance in place. Every random draw is keyed by (seed, purpose,
    day), so the same world and server state always give the same day, whether they were
    kept in memory (run_closed_loop) or restored from a file (recsys.sim.stepwise).
    """
    today = start_date + timedelta(days=day)
    source = sim_source(seed)
    active = world.active_users(day)
    if before_day is not None:
        before_day(day, world, server, active)
    slate, propensity, versions = serve(settings, server, arms, active, np.random.default_rng([seed, 4, day]))
    outcome = world.step(day, active, slate)
    server.record_clicks(outcome)
    arm = arm_of(active, len(arms))
    served = {name: int((arm == a).sum()) for a, name in enumerate(arms)}
    frame = day_events(outcome, propensity, versions, today, world.quality, np.random.default_rng([seed, 6, day]))
    events = replace_source_rows(settings, f"{source}:day={today.isoformat()}", frame)
    _write_truth(settings, source, today, outcome, world, arm_of(outcome.in_system, len(arms)), arms)
    if on_day is not None:
        on_day(day, world, outcome, propensity, versions)
    logger.info("closed loop day %s: %d active users, %d events", today, len(active), len(frame))
    return DayResult(day, today, len(active), events, served)


def serve(settings: Settings, server: ArmServer, arms: Sequence[str], active: np.ndarray,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slates, per-slot propensities and the serving version of each active user."""
    k = server.k
    slate = np.empty((len(active), k), dtype=np.int64)
    propensity = np.empty((len(active), k))
    versions = np.empty(len(active), dtype=object)
    arm = arm_of(active, len(arms))
    popular = server.popularity_list()
    for a, name in enumerate(arms):
        rows = np.flatnonzero(arm == a)
        if name == "random":
            slate[rows], propensity[rows] = server.random_slates(rows.size, rng)
            versions[rows] = "random@sim"
            continue
        if name == "popularity":
            lists, version = np.tile(popular, (rows.size, 1)), "popularity@sim"
        else:
            lists, version = read_live_lists(settings, name, active[rows], k)
            version = version or f"{name}@bootstrap"
        slate[rows], propensity[rows] = server.explored_slates(fill_lists(lists, popular), rng)
        versions[rows] = version
    return slate, propensity, versions


def day_events(outcome: DayOutcome, propensity: np.ndarray, versions: np.ndarray, day: date,
               quality: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """The day's interactions: one session per active user, impression < click < consume."""
    n, k = outcome.slate.shape
    day0 = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * 1_000_000
    start = day0 + (rng.random(n) * 20 * 3600e6).astype(np.int64)
    imp_t = start[:, None] + np.arange(k) * 1_000
    click_t = start[:, None] + k * 1_000 + np.arange(k) * 60_000_000 + (rng.random((n, k)) * 30e6).astype(np.int64)
    cons_t = click_t + 30_000_000
    rating = np.clip(np.rint(1 + 4 * quality[outcome.slate] + rng.normal(0, 0.5, (n, k))), 1, 5)
    user = np.repeat(outcome.users, k).reshape(n, k)
    session = np.repeat((outcome.day + 1) * SESSION_ID_STRIDE + outcome.users, k).reshape(n, k)
    ver = np.repeat(versions, k).reshape(n, k)
    c, s = outcome.click, outcome.consume
    parts = [
        (imp_t.ravel(), user.ravel(), outcome.slate.ravel(), 0, np.full(n * k, np.nan), session.ravel(),
         ver.ravel(), propensity.ravel()),
        (click_t[c], user[c], outcome.slate[c], 1, np.full(int(c.sum()), np.nan), session[c],
         np.full(int(c.sum()), None, dtype=object), np.full(int(c.sum()), np.nan)),
        (cons_t[s], user[s], outcome.slate[s], 2, rating[s], session[s],
         np.full(int(s.sum()), None, dtype=object), np.full(int(s.sum()), np.nan)),
    ]
    frame = pd.DataFrame({
        "event_time": pd.to_datetime(np.concatenate([p[0] for p in parts]), unit="us", utc=True),
        "user_id": np.concatenate([p[1] for p in parts]).astype(np.int64),
        "item_id": np.concatenate([p[2] for p in parts]).astype(np.int64),
        "event_type": pd.Categorical.from_codes(
            np.concatenate([np.full(len(p[0]), p[3], np.int8) for p in parts]), EVENT_TYPES),
        "value": np.concatenate([p[4] for p in parts]),
        "session_id": np.concatenate([p[5] for p in parts]).astype(np.int64),
        "model_version": np.concatenate([p[6] for p in parts]),
        "propensity": np.concatenate([p[7] for p in parts]),
    })
    return frame.sort_values("event_time", kind="stable").reset_index(drop=True)


def write_items(settings: Settings, source: str, world: World) -> None:
    """The catalogue (items with topics) in the log, and the items' true quality and appeal in sim_items."""
    catalog = pd.DataFrame({"item_id": np.arange(world.n_items, dtype=np.int64),
                            "topic": [f"topic_{t:02d}" for t in world.topic]})
    # the catalogue goes with the source of the whole run (no interactions of its own)
    replace_source_rows(settings, source, iter([]), catalog)
    truth = pd.DataFrame({"sim_source": source, "item_id": np.arange(world.n_items), "topic": world.topic,
                          "quality": world.quality, "appeal": world.appeal})
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "sim_items")
        cur.execute(load_sql("sim/items_clear"), {"source": source})
        copy_in(cur, "sim_items", list(truth.columns), io.BytesIO(truth.to_csv(index=False, header=False).encode()))


def _write_truth(settings: Settings, source: str, day: date, outcome: DayOutcome, world: World,
                 arm_index: np.ndarray, arms: Sequence[str]) -> None:
    """Replace the ground-truth rows of (source, day) in sim_user_days."""
    m = outcome.in_system
    active = np.isin(m, outcome.users)
    clicks = np.zeros(len(m), np.int64)
    consumed = np.zeros(len(m), np.int64)
    quality_sum = np.zeros(len(m))
    pos = np.searchsorted(m, outcome.users)
    clicks[pos] = outcome.click.sum(axis=1)
    consumed[pos] = outcome.consume.sum(axis=1)
    quality_sum[pos] = (world.quality[outcome.slate] * outcome.consume).sum(axis=1)
    truth = pd.DataFrame({
        "sim_source": source, "day": day.isoformat(), "user_id": m, "arm": np.asarray(arms, dtype=object)[arm_index],
        "active": active, "satisfaction": outcome.satisfaction, "return_prob": outcome.return_prob,
        "churned": outcome.churned, "clicks": clicks, "consumed": consumed,
        "consumed_quality": np.where(consumed > 0, quality_sum / np.maximum(consumed, 1), np.nan),
    })
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "sim_user_days")
        cur.execute(load_sql("sim/user_days_clear"), {"source": source, "day": day})
        copy_in(cur, "sim_user_days", list(truth.columns),
                io.BytesIO(truth.to_csv(index=False, header=False, na_rep="").encode()))
