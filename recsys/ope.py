"""Off-policy evaluation: IPS, self-normalised IPS and doubly robust, with bootstrap CIs.

A logged unit i (an impression, or a session) has a reward r_i, the logging
(behaviour) probability mu_i of what was shown, and the target policy's probability
pi_i of the same thing; w_i = pi_i / mu_i. For a cap c > 0 the weights are clipped,
w_i <- min(w_i, c), which trades a downward bias for variance (Ionides 2008).

* IPS (Horvitz and Thompson 1952): V = (1/n) sum_i w_i r_i. Unbiased when c is
  None (or never binds) and mu_i > 0 wherever pi_i > 0.
* SNIPS (Swaminathan and Joachims 2015): V = sum_i w_i r_i / sum_i w_i. Biased in
  small samples, consistent, and bounded by the range of r.
* DR (Dudik, Langford and Li 2011): V = (1/n) sum_i [qhat_pi(x_i) + w_i (r_i - qhat(x_i, a_i))],
  where qhat is a reward model and qhat_pi(x) = E_{a ~ pi(.|x)} qhat(x, a). Unbiased
  if either the weights or qhat are right.

Intervals are percentile bootstraps over units (resampling rows of the arrays
together, or whole clusters when `cluster` is given: e.g. the user, since a
user's sessions are correlated). The effective sample size of weights w is
ESS = (sum w)^2 / sum w^2 (Kong 1992): n for equal weights, 1 when one weight dominates.

Conventions: an estimate over zero units, or SNIPS when every weight is 0, is NaN
(never 0), so a caller cannot mistake "no data" for "zero reward".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

logger = logging.getLogger(__name__)

ESTIMATORS = ("ips", "snips", "dr")


@dataclass(frozen=True)
class Estimate:
    """One estimator's value with its bootstrap 95% interval and the weights' ESS."""

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    ess: float
    weight_cap: float | None
    clipped_share: float  # share of units whose weight the cap lowered


def clip_weights(weights: np.ndarray, cap: float | None) -> np.ndarray:
    """min(w, cap) elementwise; `cap=None` leaves the weights as they are.

    Raises:
        ValueError: a negative or non-finite weight, or a cap <= 0.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.size and (not np.isfinite(w).all() or (w < 0).any()):
        raise ValueError("importance weights must be finite and >= 0")
    if cap is None:
        return w
    if not cap > 0:
        raise ValueError(f"weight cap must be > 0, got {cap}")
    return np.minimum(w, cap)


def importance_weights(target_prob: np.ndarray, logging_prob: np.ndarray, cap: float | None = None) -> np.ndarray:
    """w = pi / mu, optionally clipped at `cap`.

    Raises:
        ValueError: a logging probability outside (0, 1] (IPS is undefined there).
    """
    mu = np.asarray(logging_prob, dtype=np.float64)
    if mu.size and ((mu <= 0) | (mu > 1) | ~np.isfinite(mu)).any():
        raise ValueError("logging propensities must be in (0, 1]")
    return clip_weights(np.asarray(target_prob, dtype=np.float64) / mu, cap)


def effective_sample_size(weights: np.ndarray) -> float:
    """(sum w)^2 / sum w^2; 0 when every weight is 0 or there are none."""
    w = np.asarray(weights, dtype=np.float64)
    sq = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / sq if sq > 0 else 0.0


def ips(rewards: np.ndarray, weights: np.ndarray) -> float:
    """(1/n) sum w r; NaN for n = 0."""
    r, w = np.asarray(rewards, np.float64), np.asarray(weights, np.float64)
    return float(np.mean(w * r)) if r.size else float("nan")


def snips(rewards: np.ndarray, weights: np.ndarray) -> float:
    """sum w r / sum w; NaN when sum w = 0."""
    r, w = np.asarray(rewards, np.float64), np.asarray(weights, np.float64)
    total = float(np.sum(w))
    return float(np.sum(w * r)) / total if total > 0 else float("nan")


def doubly_robust(rewards: np.ndarray, weights: np.ndarray, q_logged: np.ndarray, q_target: np.ndarray) -> float:
    """(1/n) sum [q_target + w (r - q_logged)]; NaN for n = 0.

    Args:
        rewards, weights: (n,) logged rewards and importance weights.
        q_logged: (n,) reward model's prediction for the logged action.
        q_target: (n,) reward model's expectation under the target policy, E_{a~pi} qhat(x, a).
    """
    r, w = np.asarray(rewards, np.float64), np.asarray(weights, np.float64)
    if not r.size:
        return float("nan")
    return float(np.mean(np.asarray(q_target, np.float64) + w * (r - np.asarray(q_logged, np.float64))))


class ItemMeanRewardModel:
    """qhat(a) = (sum of rewards of a + m * global mean) / (count of a + m): per-item means
    shrunk towards the global mean with `prior_strength` m pseudo-observations.

    The simplest reward model DR needs; items never logged get the global mean.
    """

    def __init__(self, n_items: int, prior_strength: float = 5.0) -> None:
        self.n_items, self.prior_strength = n_items, prior_strength
        self.means = np.zeros(n_items)
        self.global_mean = 0.0

    def fit(self, item_index: np.ndarray, rewards: np.ndarray) -> "ItemMeanRewardModel":
        r = np.asarray(rewards, np.float64)
        self.global_mean = float(r.mean()) if r.size else 0.0
        sums = np.bincount(item_index, weights=r, minlength=self.n_items)
        counts = np.bincount(item_index, minlength=self.n_items)
        self.means = (sums + self.prior_strength * self.global_mean) / (counts + self.prior_strength)
        return self

    def predict(self, item_index: np.ndarray) -> np.ndarray:
        return self.means[np.asarray(item_index)]


def evaluate(
    rewards: np.ndarray,
    target_prob: np.ndarray,
    logging_prob: np.ndarray,
    q_logged: np.ndarray | None = None,
    q_target: np.ndarray | None = None,
    weight_cap: float | None = None,
    n_bootstrap: int = 200,
    seed: int = 0,
    cluster: np.ndarray | None = None,
) -> dict[str, Estimate]:
    """IPS, SNIPS and (when the reward model's predictions are given) DR, with bootstrap CIs.

    Args:
        rewards: (n,) logged rewards.
        target_prob, logging_prob: (n,) pi and mu of each logged unit's action.
        q_logged, q_target: (n,) reward model predictions (see `doubly_robust`); DR is
            left out when either is None.
        weight_cap: clip importance weights at this value (None: no clipping).
        n_bootstrap: bootstrap replicates (0: no interval, ci = value).
        seed: seed of the bootstrap resampling.
        cluster: (n,) optional cluster ids; the bootstrap resamples whole clusters.

    Returns:
        Estimates keyed by estimator name.
    """
    r = np.asarray(rewards, np.float64)
    raw = importance_weights(target_prob, logging_prob, None)
    w = clip_weights(raw, weight_cap)
    clipped = float(np.mean(w < raw)) if r.size else 0.0
    fns: dict[str, Callable[[np.ndarray], float]] = {
        "ips": lambda idx: ips(r[idx], w[idx]),
        "snips": lambda idx: snips(r[idx], w[idx]),
    }
    if q_logged is not None and q_target is not None:
        ql, qt = np.asarray(q_logged, np.float64), np.asarray(q_target, np.float64)
        fns["dr"] = lambda idx: doubly_robust(r[idx], w[idx], ql[idx], qt[idx])
    everything = np.arange(r.size)
    replicates = _bootstrap_indices(r.size, n_bootstrap, seed, cluster)
    ess = effective_sample_size(w)
    out = {}
    for name, fn in fns.items():
        value = fn(everything)
        if replicates:
            boots = np.array([fn(idx) for idx in replicates])
            boots = boots[np.isfinite(boots)]
            low, high = (np.percentile(boots, [2.5, 97.5]) if boots.size else (np.nan, np.nan))
        else:
            low = high = value
        out[name] = Estimate(name, value, float(low), float(high), int(r.size), ess, weight_cap, clipped)
    logger.debug("OPE over %d units: %s (ESS %.1f, %.1f%% clipped)", r.size,
                 {k: round(v.value, 4) for k, v in out.items()}, ess, 100 * clipped)
    return out


def _bootstrap_indices(n: int, replicates: int, seed: int, cluster: np.ndarray | None) -> list[np.ndarray]:
    if n == 0 or replicates <= 0:
        return []
    rng = np.random.default_rng(seed)
    if cluster is None:
        return [rng.integers(0, n, n) for _ in range(replicates)]
    keys, inverse = np.unique(np.asarray(cluster), return_inverse=True)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    out = []
    for _ in range(replicates):
        picked = rng.integers(0, len(keys), len(keys))
        out.append(np.concatenate([members[c] for c in picked]))
    return out


def list_policy_prob(in_list: np.ndarray, explore: float, n_items: int, k: int) -> np.ndarray:
    """Inclusion probability P(a in slate) of an item under a top-K list policy with exploration.

    The policy shows its list's k-th item at slot k with probability 1 - explore and
    otherwise a uniform draw among the items neither in its list nor already shown
    (how the closed-loop simulator serves). A list item is in the slate with
    probability 1 - explore; the explored items form a uniform subset of the n - K
    others whose expected size is K * explore, so each is in with K * explore / (n - K).

    With inclusion probabilities on both sides, w = pi_incl / mu_incl and the mean of
    w * r over impressions estimates the target's per-impression reward when an item's
    reward does not depend on its slot (the item-position-free assumption).
    """
    return np.where(in_list, 1.0 - explore, k * explore / max(n_items - k, 1))


def evaluate_list_policy(
    user: np.ndarray, item: np.ndarray, session: np.ndarray, propensity: np.ndarray, click: np.ndarray,
    returned: np.ndarray, list_users: np.ndarray, lists: np.ndarray, n_items: int, explore: float,
    weight_cap: float | None = None, n_bootstrap: int = 200, seed: int = 0,
) -> dict[str, dict[str, Estimate]]:
    """Click rate (per impression) and return rate (per session) of a top-K list policy.

    Args:
        user, item, session, propensity, click: (n,) logged impressions (database ids).
        returned: (n,) 1 when the impression's user came back the next day.
        list_users: (m,) sorted user ids with a target list; lists: (m, K) item ids.
            Users without a list get the list of the most frequent list items.
        n_items: catalogue size (the exploration draw's support).
        explore: the target policy's per-slot exploration.

    Returns:
        {"click": {estimator: Estimate}, "return": {...}}. The return rate uses one
        unit per session with the mean of its slots' weights (the additive, pseudo-
        inverse-style approximation of a slate weight) and a cluster bootstrap by user;
        DR uses per-item mean reward models (ItemMeanRewardModel).
    """
    k = lists.shape[1]
    row = np.searchsorted(list_users, user)
    has = (row < len(list_users)) & (list_users[np.minimum(row, len(list_users) - 1)] == user)
    values, counts = np.unique(lists.ravel(), return_counts=True)
    fallback = values[np.argsort(-counts, kind="stable")][:k]
    user_lists = np.where(has[:, None], lists[np.minimum(row, len(list_users) - 1)], fallback[None, :])
    in_list = (user_lists == item[:, None]).any(axis=1)
    target = list_policy_prob(in_list, explore, n_items, k)

    ids, codes = np.unique(np.concatenate([item, lists.ravel(), fallback]), return_inverse=True)
    item_code = codes[: len(item)]
    user_list_code = np.searchsorted(ids, user_lists)
    out: dict[str, dict[str, Estimate]] = {}

    clicks = np.asarray(click, np.float64)
    q_click = ItemMeanRewardModel(len(ids)).fit(item_code, clicks)
    off_list_mean = q_click.global_mean
    q_click_target = (1 - explore) * q_click.means[user_list_code].mean(axis=1) + explore * off_list_mean
    out["click"] = evaluate(clicks, target, propensity, q_click.predict(item_code), q_click_target,
                            weight_cap, n_bootstrap, seed, cluster=user)

    _, sess_idx = np.unique(np.stack([user.astype(np.float64), session.astype(np.float64)], axis=1), axis=0,
                            return_inverse=True)
    sess_idx = sess_idx.ravel()
    n_s = int(sess_idx.max()) + 1 if sess_idx.size else 0
    size = np.bincount(sess_idx, minlength=n_s)
    w = importance_weights(target, propensity, None)
    w_sess = np.bincount(sess_idx, weights=w, minlength=n_s) / np.maximum(size, 1)
    r_sess = np.bincount(sess_idx, weights=np.asarray(returned, np.float64), minlength=n_s) / np.maximum(size, 1)
    user_sess = np.zeros(n_s, dtype=user.dtype)
    user_sess[sess_idx] = user
    q_ret = ItemMeanRewardModel(len(ids)).fit(item_code, np.asarray(returned, np.float64))
    q_logged = np.bincount(sess_idx, weights=q_ret.predict(item_code), minlength=n_s) / np.maximum(size, 1)
    q_target_imp = (1 - explore) * q_ret.means[user_list_code].mean(axis=1) + explore * q_ret.global_mean
    q_target = np.bincount(sess_idx, weights=q_target_imp, minlength=n_s) / np.maximum(size, 1)
    # weights are already pi/mu: evaluate with mu = 1 so the session weight is used as is
    out["return"] = evaluate(r_sess, np.minimum(w_sess, 1e12), np.ones(n_s), q_logged, q_target,
                             weight_cap, n_bootstrap, seed, cluster=user_sess)
    return out
