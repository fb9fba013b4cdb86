"""An open-loop synthetic interaction log: impressions, clicks and consumption.

The logging policy does not learn from what it logs (a closed-loop simulator comes
later, in another module). The world, drawn once per seed:

* Items have a Zipf popularity (exponent `zipf_exponent`, ranks shuffled over ids), one
  of `topics` topics, and an appeal in (0, 1) drawn from a Beta distribution
  independently of popularity.
* Users arrive on day `floor(days * Beta(*arrival_beta))` (spread over the period, more
  early), stay for a Geometric(h) number of days with a churn hazard h ~ Beta(*churn_beta),
  and on each later day before churning come back with their own return propensity
  p ~ Beta(*return_beta). Each user's topic preference is Dirichlet(topic_concentration).

On each active day a user has 1 + Binomial(2, extra_session_prob) sessions (1-3), each in
its own slice of the day so sessions never overlap. A session shows a slate of
`slate_size` distinct items drawn from the logging policy
pi = explore * uniform + (1 - explore) * popularity, slot by slot without replacement
(Plackett-Luce). Each impression has `model_version = 'sim_logging_policy'` and
`propensity` = the probability of drawing that item at that slot given the items
already above it, pi_i / (1 - sum of pi over the earlier slots), which is in (0, 1].
The user clicks an item with probability appeal * (click_floor + (1 - click_floor) *
preference[topic]) and consumes a clicked item with probability `consume_prob`. A
`consume` event's `value` is a 1-5 star rating (the same scale as MovieLens), higher
for appealing items of preferred topics; impressions and clicks have a NULL value.
Times: impressions at the session start (1 ms apart, in slot order), then for each
clicked item in slot order a 2-30 s pause, the click, and for consumed items a
30-600 s dwell ending in the consume event. So impression < click < consume.

Sessions have `session_id = (day + 1) * 1e9 + session index within the day`. The world
comes from one random stream per seed and each day from its own stream, so one seed
always gives the same events, and a day does not depend on how the others were consumed.

Sizes: events grow linearly with `users` and sub-linearly with `days` (users arrive and
churn, so each user is active on a few days only). With the defaults one user makes
about 18 events over 1 day, 45 over 7, 100 over 28 and 170 over 90, whatever the number
of items: 28 days x 100,000 users is about 10 million events, and
`users_for_target_events(1_000_000, 28)` is about 10,000. `expected_events` is the
expectation over seeds; one seed's count is within a few percent of it. Every user
arrives within the period and sees at least one slate, so a run has at least
`slate_size` (10) events per user: 1,000,000 events cannot come from 100,000 users.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Iterator

import numpy as np
import pandas as pd
from scipy.special import betainc
from tqdm import tqdm

from recsys.config import Settings
from recsys.loaders.copy_writer import EVENT_TYPES, replace_source_rows

logger = logging.getLogger(__name__)

LOGGING_POLICY = "sim_logging_policy"
SESSION_ID_STRIDE = 1_000_000_000  # session_id = (day + 1) * stride + index of the session in its day
_DAY_US = 86_400_000_000
_SLOT_US = 1_000  # impressions of a slate are 1 ms apart
_THINK_S = (2.0, 30.0)
_DWELL_S = (30.0, 600.0)


@dataclass(frozen=True)
class SimParams:
    """Knobs of the simulated world; the defaults are what the CLI and benchmarks use."""

    topics: int = 20
    slate_size: int = 10
    zipf_exponent: float = 1.0
    explore: float = 0.3
    arrival_beta: tuple[float, float] = (1.0, 2.0)
    return_beta: tuple[float, float] = (2.0, 2.5)
    churn_beta: tuple[float, float] = (1.5, 20.0)
    extra_session_prob: float = 0.3
    topic_concentration: float = 0.3
    appeal_beta: tuple[float, float] = (2.0, 2.0)
    click_floor: float = 0.1
    consume_prob: float = 0.5


@dataclass(frozen=True)
class SimulationSummary:
    """What `simulate_log` wrote: events, the simulated users and items (every user
    arrives within the period), days, wall-clock seconds and the `source` of the rows."""

    events: int
    users: int
    items: int
    days: int
    seconds: float
    source: str


@dataclass(frozen=True)
class _World:
    arrival: np.ndarray  # (users,) first active day
    last_day: np.ndarray  # (users,) last day before churning
    return_p: np.ndarray  # (users,)
    preference: np.ndarray  # (users, topics), rows sum to 1
    topic: np.ndarray  # (items,)
    appeal: np.ndarray  # (items,)
    policy: np.ndarray  # (items,) logging policy pi, sums to 1
    cdf: np.ndarray = field(repr=False)  # (items,) cumulative pi


def simulate_log(
    settings: Settings,
    days: int,
    users: int,
    items: int,
    seed: int,
    start_date: date = date(2026, 1, 1),
    progress: bool = False,
    params: SimParams | None = None,
) -> SimulationSummary:
    """Generate the log day by day and replace the rows of source `simulate:seed=<seed>`.

    Interactions stream through COPY one day at a time; `items` gets each item's topic.

    Returns:
        Counts written and the seconds taken.
    """
    start = time.perf_counter()
    params = params or SimParams()
    source = f"simulate:seed={seed}"
    day_frames = iter_day_events(days, users, items, seed, start_date, params)
    with tqdm(day_frames, total=days, unit="day", desc=source, disable=not progress) as bar:
        events = replace_source_rows(settings, source, bar, item_catalog(items, seed, params))
    summary = SimulationSummary(events, users, items, days, time.perf_counter() - start, source)
    logger.info(
        "simulated %d events (%d users, %d items, %d days) in %.1f s", events, users, items, days, summary.seconds
    )
    return summary


def generate_events(
    days: int, users: int, items: int, seed: int, start_date: date = date(2026, 1, 1), params: SimParams | None = None
) -> pd.DataFrame:
    """The whole log as one frame in event-time order (see `iter_day_events` for the columns)."""
    frames = list(iter_day_events(days, users, items, seed, start_date, params))
    return pd.concat(frames, ignore_index=True)


def iter_day_events(
    days: int, users: int, items: int, seed: int, start_date: date = date(2026, 1, 1), params: SimParams | None = None
) -> Iterator[pd.DataFrame]:
    """One frame per day, each in event-time order; the same seed gives the same frames.

    Columns: event_time (UTC), user_id, item_id, event_type, value, session_id,
    model_version, propensity: the columns of `interactions` except `source`.

    Raises:
        ValueError: at once (not on the first day) for sizes the simulator cannot run.
    """
    params = params or SimParams()
    _check_sizes(days, users, items, seed, params)
    world = _make_world(days, users, items, seed, params)
    day0 = int(datetime(start_date.year, start_date.month, start_date.day, tzinfo=timezone.utc).timestamp()) * 1_000_000

    def frames() -> Iterator[pd.DataFrame]:
        for day in range(days):
            rng = np.random.default_rng([seed, 2, day])  # one stream per day: days are independent
            yield _day_events(world, day, day0 + day * _DAY_US, rng, params)

    return frames()


def item_catalog(items: int, seed: int, params: SimParams | None = None) -> pd.DataFrame:
    """`items` rows of the simulated world: item_id and topic ('topic_00', ...)."""
    params = params or SimParams()
    topic, _, _ = _draw_items(items, seed, params)
    return pd.DataFrame({"item_id": np.arange(items, dtype=np.int64), "topic": [f"topic_{t:02d}" for t in topic]})


def slate_inclusion_probability(items: int, seed: int, params: SimParams | None = None, draws: int = 200_000,
                                draw_seed: int = 0) -> np.ndarray:
    """(items,) P(item in slate) under the logging policy, by Monte Carlo over `draws` slates.

    The logged `propensity` is the per-slot draw probability (see the module docstring); an
    item-level estimator wants the inclusion probability of the whole slate instead, which
    has no closed form for slot-by-slot sampling without replacement. The logging policy does
    not depend on the user, so one vector serves every session. The slates come from the
    simulator's own sampler (`_draw_slates`) with a stream of their own (`draw_seed`), so the
    log is not touched; the standard error of an entry p is sqrt(p (1 - p) / draws).
    """
    params = params or SimParams()
    _, _, policy = _draw_items(items, seed, params)
    cdf = np.cumsum(policy)
    cdf[-1] = 1.0
    world = _World(arrival=np.zeros(0, np.int64), last_day=np.zeros(0, np.int64), return_p=np.zeros(0),
                   preference=np.zeros((0, params.topics)), topic=np.zeros(items, np.int64),
                   appeal=np.zeros(items), policy=policy, cdf=cdf)
    rng = np.random.default_rng([seed, 3, draw_seed])
    counts = np.zeros(items)
    for lo in range(0, draws, 50_000):
        slate, _ = _draw_slates(world, min(50_000, draws - lo), params.slate_size, rng)
        counts += np.bincount(slate.ravel(), minlength=items)
    return counts / max(draws, 1)


def expected_events(days: int, users: int, params: SimParams | None = None) -> float:
    """Expected number of events of a `days` x `users` simulation (items do not matter)."""
    p = params or SimParams()
    if days < 1:
        raise ValueError(f"need days >= 1, got {days}")
    edges = betainc(*p.arrival_beta, np.arange(days + 1) / days)
    arrival_prob = np.diff(edges)  # P(arrival day = a), a = 0 .. days-1
    j = np.arange(max(days - 1, 0))
    alpha_h, beta_h = p.churn_beta
    survival = np.cumprod((beta_h + j) / (alpha_h + beta_h + j))  # E[(1-h)^k], k = 1 .. days-1
    after = np.concatenate([[0.0], np.cumsum(survival)])  # sum over k = 1 .. m of E[(1-h)^k]
    mean_return = p.return_beta[0] / sum(p.return_beta)
    active_days = float(np.sum(arrival_prob * (1 + mean_return * after[days - 1 - np.arange(days)])))
    click_rate = p.appeal_beta[0] / sum(p.appeal_beta) * (p.click_floor + (1 - p.click_floor) / p.topics)
    per_session = p.slate_size * (1 + click_rate * (1 + p.consume_prob))
    return users * active_days * (1 + 2 * p.extra_session_prob) * per_session


def users_for_target_events(target_events: int, days: int, params: SimParams | None = None) -> int:
    """Number of users whose `days`-day simulation is expected to log about `target_events`."""
    return max(1, round(target_events / expected_events(days, 1, params)))


def _check_sizes(days: int, users: int, items: int, seed: int, params: SimParams) -> None:
    if days < 1 or users < 1 or seed < 0:
        raise ValueError(f"need days >= 1, users >= 1 and seed >= 0, got {days}, {users}, {seed}")
    if items < params.slate_size:
        raise ValueError(f"need at least slate_size={params.slate_size} items, got {items}")
    if 3 * users >= SESSION_ID_STRIDE:
        raise ValueError(f"at most {SESSION_ID_STRIDE // 3 - 1} users, got {users}")


def _draw_items(items: int, seed: int, p: SimParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0])
    rank = rng.permutation(items)  # rank 0 is the most popular item
    popularity = (rank + 1.0) ** -p.zipf_exponent
    policy = p.explore / items + (1 - p.explore) * popularity / popularity.sum()
    return rng.integers(0, p.topics, items), rng.beta(*p.appeal_beta, items), policy


def _make_world(days: int, users: int, items: int, seed: int, p: SimParams) -> _World:
    topic, appeal, policy = _draw_items(items, seed, p)
    rng = np.random.default_rng([seed, 1])
    arrival = np.minimum((days * rng.beta(*p.arrival_beta, users)).astype(np.int64), days - 1)
    hazard = rng.beta(*p.churn_beta, users)
    lifetime = np.minimum(rng.geometric(np.maximum(hazard, 1e-12)), days)  # days until churn, >= 1
    cdf = np.cumsum(policy)
    cdf[-1] = 1.0
    return _World(
        arrival=arrival,
        last_day=arrival + lifetime - 1,
        return_p=rng.beta(*p.return_beta, users),
        preference=rng.dirichlet(np.full(p.topics, p.topic_concentration), users),
        topic=topic, appeal=appeal, policy=policy, cdf=cdf,
    )


def _day_events(w: _World, day: int, day_start_us: int, rng: np.random.Generator, p: SimParams) -> pd.DataFrame:
    returns = rng.random(len(w.arrival)) < w.return_p
    active = np.flatnonzero((w.arrival <= day) & (day <= w.last_day) & ((w.arrival == day) | returns))
    n_sessions = 1 + rng.binomial(2, p.extra_session_prob, len(active))
    owner = np.repeat(active, n_sessions)
    n = len(owner)
    per_user = np.repeat(n_sessions, n_sessions)
    index_in_day = np.arange(n) - np.repeat(np.cumsum(n_sessions) - n_sessions, n_sessions)
    # Session k of a user with m sessions starts in the first half of slice k of m of the
    # day; the longest session (1.75 h) then ends before the next slice begins.
    block = _DAY_US // per_user
    start = day_start_us + index_in_day * block + (rng.random(n) * 0.5 * block).astype(np.int64)
    slate, propensity = _draw_slates(w, n, p.slate_size, rng)

    affinity = w.preference[owner[:, None], w.topic[slate]]  # (sessions, slate)
    appeal = w.appeal[slate]
    click = rng.random(slate.shape) < appeal * (p.click_floor + (1 - p.click_floor) * affinity)
    consume = click & (rng.random(slate.shape) < p.consume_prob)
    think = (rng.uniform(*_THINK_S, slate.shape) * 1e6).astype(np.int64)
    dwell = np.where(consume, (rng.uniform(*_DWELL_S, slate.shape) * 1e6).astype(np.int64), 0)
    quality = 0.5 * appeal + 0.5 * np.minimum(1.0, 3.0 * affinity)
    rating = np.clip(np.rint(1 + 4 * quality + rng.normal(0.0, 0.75, slate.shape)), 1, 5)
    finished = np.cumsum(np.where(click, think + dwell, 0), axis=1)  # end of each clicked item's visit
    click_time = start[:, None] + p.slate_size * _SLOT_US + finished - dwell
    impression_time = start[:, None] + np.arange(p.slate_size) * _SLOT_US

    clicked, consumed = np.flatnonzero(click), np.flatnonzero(consume)
    session = np.repeat((day + 1) * SESSION_ID_STRIDE + np.arange(n, dtype=np.int64), p.slate_size)
    users = np.repeat(owner, p.slate_size)
    flat_slate = slate.ravel()
    n_imp, n_click, n_cons = flat_slate.size, clicked.size, consumed.size
    times = np.concatenate([
        impression_time.ravel(), click_time.ravel()[clicked], (click_time + dwell).ravel()[consumed]
    ])
    order = np.argsort(times, kind="stable")
    nan_click, nan_cons = np.full(n_click, np.nan), np.full(n_cons, np.nan)
    type_code = np.repeat(np.arange(3, dtype=np.int8), [n_imp, n_click, n_cons])
    return pd.DataFrame({
        "event_time": pd.to_datetime(times[order], unit="us", utc=True),
        "user_id": np.concatenate([users, users[clicked], users[consumed]])[order],
        "item_id": np.concatenate([flat_slate, flat_slate[clicked], flat_slate[consumed]])[order],
        "event_type": pd.Categorical.from_codes(type_code[order], EVENT_TYPES),
        "value": np.concatenate([np.full(n_imp, np.nan), nan_click, rating.ravel()[consumed]])[order],
        "session_id": np.concatenate([session, session[clicked], session[consumed]])[order],
        "model_version": pd.Categorical.from_codes(np.where(type_code[order] == 0, 0, -1), [LOGGING_POLICY]),
        "propensity": np.concatenate([propensity.ravel(), nan_click, nan_cons])[order],
    })


def _draw_slates(w: _World, n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, size) distinct items per slate drawn slot by slot from pi, and their propensities.

    A draw that repeats an item already in its slate is redrawn: rejection from pi is
    exactly sampling from pi restricted to the items not yet shown, so the propensity of
    the item at a slot is pi_i / (1 - pi mass of the earlier slots).
    """
    slate = np.empty((n, size), dtype=np.int64)
    propensity = np.empty((n, size))
    shown_mass = np.zeros(n)
    last = len(w.policy) - 1
    for k in range(size):
        pick = np.minimum(np.searchsorted(w.cdf, rng.random(n), side="right"), last)
        redo = np.flatnonzero((slate[:, :k] == pick[:, None]).any(axis=1))
        for _ in range(1000):
            if redo.size == 0:
                break
            pick[redo] = np.minimum(np.searchsorted(w.cdf, rng.random(redo.size), side="right"), last)
            redo = redo[(slate[redo, :k] == pick[redo, None]).any(axis=1)]
        for row in redo:  # only when almost all of pi's mass is already shown (tiny catalogues)
            weights = w.policy.copy()
            weights[slate[row, :k]] = 0.0
            pick[row] = rng.choice(len(weights), p=weights / weights.sum())
        slate[:, k] = pick
        propensity[:, k] = np.minimum(w.policy[pick] / np.maximum(1.0 - shown_mass, w.policy[pick]), 1.0)
        shown_mass += w.policy[pick]
    return slate, propensity

