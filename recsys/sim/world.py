"""A user-choice world with long-term satisfaction, in the spirit of RecSim's
long-term-satisfaction environment (Ie et al. 2019). Pure numpy: no database.

Items have a topic, a quality q in (0, 1) and an immediate appeal in (0, 1). Appeal
is drawn negatively correlated with quality (`appeal_quality_corr`): clickbait
exists, so a click model is pulled towards appealing, low-quality items.

Each user u has a topic preference (Dirichlet), a base return propensity b_u and a
satisfaction s_u in [0, 1]. On a day the user comes, they see a slate and, slot by slot:

* click with probability appeal * (click_floor + (1 - click_floor) * affinity), where
  affinity = preference[topic] / max(preference) (so the favourite topic has 1);
* a click moves satisfaction towards the item's quality, s <- s + click_rate * (q - s);
  a consumed click (probability consume_base + consume_quality * q) moves it again by
  consume_rate; a day with no click costs `boredom` (s <- max(0, s - boredom)).

After the day every user in the system (came or not) may churn for good with
probability churn_base + churn_satisfaction * (1 - s), and otherwise comes back the
next day with probability b_u * (return_floor + (1 - return_floor) * s). The true
probability of coming back tomorrow is therefore
    return_prob = (1 - churn) * b_u * (return_floor + (1 - return_floor) * s),
increasing in satisfaction, which rises with the quality of what was consumed.
Users arrive on day floor(days * Beta(1, 3)) (most early), each on their first day.

Every random draw comes from a stream keyed by (seed, purpose, day), so a seed and the
same slates always give the same day, and a `copy()` of the world can be rolled out
under another policy without disturbing the original.
"""

from __future__ import annotations

import copy as copy_module
from dataclasses import dataclass
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class WorldParams:
    """Knobs of the closed-loop world; the defaults are what the CLI and benchmark use."""

    topics: int = 10
    slate_size: int = 10
    quality_beta: tuple[float, float] = (2.0, 2.0)
    appeal_quality_corr: float = -0.6  # < 0: appealing items tend to be worse (clickbait)
    click_floor: float = 0.1
    consume_base: float = 0.2
    consume_quality: float = 0.7
    click_rate: float = 0.05  # satisfaction step towards the quality of a clicked item
    consume_rate: float = 0.15  # extra step when the item is consumed
    boredom: float = 0.05
    initial_satisfaction_beta: tuple[float, float] = (5.0, 5.0)
    base_return_beta: tuple[float, float] = (8.0, 2.0)
    return_floor: float = 0.2
    churn_base: float = 0.01
    churn_satisfaction: float = 0.06
    topic_concentration: float = 0.3


@dataclass(frozen=True)
class DayOutcome:
    """What one day did. Arrays over the day's active users (in `users` order) x slate slots.

    Attributes:
        users: (n,) active users (indices into the world's users).
        slate: (n, K) items shown; click, consume: (n, K) booleans.
        in_system: (m,) users in the system today (arrived, not churned before today).
        satisfaction, return_prob, churned: (m,) ground truth after the day for `in_system`.
    """

    day: int
    users: np.ndarray
    slate: np.ndarray
    click: np.ndarray
    consume: np.ndarray
    in_system: np.ndarray
    satisfaction: np.ndarray
    return_prob: np.ndarray
    churned: np.ndarray


class World:
    """The simulated users and items; `step` advances one day given the slates served."""

    def __init__(self, users: int, items: int, days: int, seed: int, params: WorldParams | None = None) -> None:
        p = params or WorldParams()
        if users < 1 or days < 1 or seed < 0:
            raise ValueError(f"need users >= 1, days >= 1, seed >= 0, got {users}, {days}, {seed}")
        if items < 2 * p.slate_size:
            raise ValueError(f"need at least 2 * slate_size = {2 * p.slate_size} items, got {items}")
        self.params, self.seed, self.n_users, self.n_items = p, seed, users, items
        rng = np.random.default_rng([seed, 0])
        self.topic = rng.integers(0, p.topics, items)
        self.quality = rng.beta(*p.quality_beta, items)
        # Gaussian copula: appeal's latent correlates with quality's normal score
        z_q = _normal_score(self.quality)
        latent = p.appeal_quality_corr * z_q + np.sqrt(1 - p.appeal_quality_corr**2) * rng.standard_normal(items)
        self.appeal = 1.0 / (1.0 + np.exp(-1.2 * latent))
        rng = np.random.default_rng([seed, 1])
        self.arrival = np.minimum((days * rng.beta(1.0, 3.0, users)).astype(np.int64), days - 1)
        self.preference = rng.dirichlet(np.full(p.topics, p.topic_concentration), users)
        self.affinity = self.preference / self.preference.max(axis=1, keepdims=True)
        self.base_return = rng.beta(*p.base_return_beta, users)
        self.satisfaction = rng.beta(*p.initial_satisfaction_beta, users)
        self.churned = np.zeros(users, dtype=bool)
        self.returns_next = np.zeros(users, dtype=bool)  # drawn at the end of the previous day

    def copy(self) -> "World":
        return copy_module.deepcopy(self)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every array of the world, drawn and evolving: with params and seed, what `restore` needs.

        Taken from the instance rather than listed, so an array added to the world cannot be
        left out of a saved state by mistake (`restore` then refuses the unknown name).
        """
        return {name: value for name, value in vars(self).items() if isinstance(value, np.ndarray)}

    @classmethod
    def restore(cls, params: WorldParams, seed: int, arrays: Mapping[str, np.ndarray]) -> "World":
        """The world whose `state_arrays()` these are, without drawing anything again.

        The closed loop run as a DAG keeps the world in a file between the day tasks
        (recsys.sim.stepwise); a restored world steps exactly as the original would.
        """
        missing, unknown = set(_STATE_ARRAYS) - set(arrays), set(arrays) - set(_STATE_ARRAYS)
        if missing or unknown:
            raise ValueError(f"world state arrays: missing {sorted(missing)}, unknown {sorted(unknown)}")
        world = cls.__new__(cls)
        world.params, world.seed = params, seed
        world.n_users, world.n_items = len(arrays["arrival"]), len(arrays["topic"])
        for name in _STATE_ARRAYS:
            setattr(world, name, np.array(arrays[name]))
        return world

    def active_users(self, day: int) -> np.ndarray:
        """Users who come on `day`: arrivals of the day and returning users."""
        arrived = self.arrival == day
        return np.flatnonzero(~self.churned & (arrived | ((self.arrival < day) & self.returns_next)))

    def return_prob(self, satisfaction: np.ndarray, users: np.ndarray) -> np.ndarray:
        """True probability that `users` come back the next day at this satisfaction."""
        p = self.params
        churn = np.clip(p.churn_base + p.churn_satisfaction * (1 - satisfaction), 0, 1)
        return (1 - churn) * self.base_return[users] * (p.return_floor + (1 - p.return_floor) * satisfaction)

    def step(self, day: int, users: np.ndarray, slate: np.ndarray) -> DayOutcome:
        """Show slate[j] to users[j] (the active users of the day), then advance to the next day."""
        p = self.params
        rng = np.random.default_rng([self.seed, 2, day])
        aff = self.affinity[users[:, None], self.topic[slate]]
        click = rng.random(slate.shape) < self.appeal[slate] * (p.click_floor + (1 - p.click_floor) * aff)
        consume = click & (rng.random(slate.shape) < p.consume_base + p.consume_quality * self.quality[slate])
        s = self.satisfaction[users].copy()
        for k in range(slate.shape[1]):  # slot order matters: each step starts where the last ended
            q = self.quality[slate[:, k]]
            s += click[:, k] * p.click_rate * (q - s)
            s += consume[:, k] * p.consume_rate * (q - s)
        s = np.where(click.any(axis=1), s, np.maximum(0.0, s - p.boredom))
        self.satisfaction[users] = np.clip(s, 0.0, 1.0)

        in_system = np.flatnonzero(~self.churned & (self.arrival <= day))
        sat = self.satisfaction[in_system]
        churn_p = np.clip(p.churn_base + p.churn_satisfaction * (1 - sat), 0, 1)
        ret_p = self.base_return[in_system] * (p.return_floor + (1 - p.return_floor) * sat)
        rng_after = np.random.default_rng([self.seed, 3, day])
        churned = rng_after.random(len(in_system)) < churn_p
        comes_back = rng_after.random(len(in_system)) < ret_p
        self.churned[in_system] = churned
        self.returns_next[:] = False
        self.returns_next[in_system] = comes_back & ~churned
        return DayOutcome(day, users, slate, click, consume, in_system, sat.copy(), (1 - churn_p) * ret_p, churned)


_STATE_ARRAYS = ("topic", "quality", "appeal", "arrival", "preference", "affinity", "base_return",
                 "satisfaction", "churned", "returns_next")


def _normal_score(x: np.ndarray) -> np.ndarray:
    """Ranks of x mapped to standard-normal quantiles (approximate probit of the ranks)."""
    u = (np.argsort(np.argsort(x)) + 0.5) / len(x)
    # Acklam-free approximation good enough for a copula: logit scaled to unit variance
    return np.log(u / (1 - u)) / 1.702
