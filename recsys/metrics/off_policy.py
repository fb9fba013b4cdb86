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

from recsys.config import SESSION_WEIGHTS

logger = logging.getLogger(__name__)


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


def clip_weights(weights: np.ndarray, cap: float | None, signed: bool = False) -> np.ndarray:
    """min(w, cap) elementwise; `cap=None` leaves the weights as they are.

    `signed` admits negative weights (the pseudo-inverse slate weights); only their
    upper end is clipped.

    Raises:
        ValueError: a non-finite weight, a negative one unless `signed`, or a cap <= 0.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.size and (not np.isfinite(w).all() or (not signed and (w < 0).any())):
        raise ValueError("importance weights must be finite and >= 0")
    if cap is None:
        return w
    if not cap > 0:
        raise ValueError(f"weight cap must be > 0, got {cap}")
    return np.minimum(w, cap)


def importance_weights(target_prob: np.ndarray, logging_prob: np.ndarray, cap: float | None = None,
                       signed: bool = False) -> np.ndarray:
    """w = pi / mu, optionally clipped at `cap`.

    Raises:
        ValueError: a logging probability outside (0, 1] (IPS is undefined there).
    """
    mu = np.asarray(logging_prob, dtype=np.float64)
    if mu.size and ((mu <= 0) | (mu > 1) | ~np.isfinite(mu)).any():
        raise ValueError("logging propensities must be in (0, 1]")
    return clip_weights(np.asarray(target_prob, dtype=np.float64) / mu, cap, signed)


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
    signed: bool = False,
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
        signed: the ratios pi / mu may be negative (pseudo-inverse slate weights passed
            as `target_prob` with `logging_prob` 1).

    Returns:
        Estimates keyed by estimator name.
    """
    r = np.asarray(rewards, np.float64)
    raw = importance_weights(target_prob, logging_prob, None, signed)
    w = clip_weights(raw, weight_cap, signed)
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
    weight_cap: float | None = None, n_bootstrap: int = 200, seed: int = 0, session_weight: str = "mean",
) -> dict[str, dict[str, Estimate]]:
    """Click rate (per impression) and return rate (per session) of a top-K list policy.

    Args:
        user, item, session, propensity, click: (n,) logged impressions (database ids).
        returned: (n,) 1 when the impression's user came back the next day.
        list_users: (m,) sorted user ids with a target list; lists: (m, K) item ids.
            Users without a list get the list of the most frequent list items.
        n_items: catalogue size (the exploration draw's support).
        explore: the target policy's per-slot exploration.
        session_weight: how a session's slot weights make its weight for the return
            rate (SESSION_WEIGHTS): "mean" or "pseudo_inverse".

    Returns:
        {"click": {estimator: Estimate}, "return": {...}}. The return rate uses one
        unit per session, weighted as `session_weight` says, and a cluster bootstrap by
        user; DR uses per-item mean reward models (ItemMeanRewardModel).
    """
    target, item_code, user_list_code, n_codes = _list_policy(user, item, list_users, lists, n_items, explore)
    out: dict[str, dict[str, Estimate]] = {}

    clicks = np.asarray(click, np.float64)
    q_click = ItemMeanRewardModel(n_codes).fit(item_code, clicks)
    off_list_mean = q_click.global_mean
    q_click_target = (1 - explore) * q_click.means[user_list_code].mean(axis=1) + explore * off_list_mean
    out["click"] = evaluate(clicks, target, propensity, q_click.predict(item_code), q_click_target,
                            weight_cap, n_bootstrap, seed, cluster=user)

    terms = _session_return_terms(user, session, propensity, returned, target, item_code, user_list_code,
                                  n_codes, explore, session_weight)
    # weights are already pi/mu: evaluate with mu = 1 so the session weight is used as is
    out["return"] = evaluate(terms.rewards, np.minimum(terms.weights, 1e12), np.ones(terms.rewards.size),
                             terms.q_logged, terms.q_target, weight_cap, n_bootstrap, seed, cluster=terms.user,
                             signed=session_weight == "pseudo_inverse")
    return out


def list_policy_return_difference(
    user: np.ndarray, item: np.ndarray, session: np.ndarray, propensity: np.ndarray, returned: np.ndarray,
    challenger: tuple[np.ndarray, np.ndarray], champion: tuple[np.ndarray, np.ndarray], n_items: int,
    explore: float, weight_cap: float | None = None, n_bootstrap: int = 200, seed: int = 0,
    session_weight: str = "mean",
) -> Estimate:
    """DR estimate of one list policy's return rate minus another's, on the same logged sessions.

    The two estimates share every logged session, so most of their sampling error is
    shared too: the difference of the per-session DR terms is bootstrapped on the same
    resampled users, which gives a much narrower interval than the two intervals
    side by side. The value equals `evaluate_list_policy`'s DR return estimate of
    `challenger` minus that of `champion` (same weight cap), since DR is a mean.

    Args:
        user, item, session, propensity, returned: the logged impressions, as in
            `evaluate_list_policy`.
        challenger, champion: (list_users, lists) of each policy, as in `evaluate_list_policy`.

    Returns:
        An Estimate named "dr_diff"; `ess` is the challenger's weights' ESS.
    """
    def dr_terms(list_users: np.ndarray, lists: np.ndarray) -> tuple[np.ndarray, _SessionTerms, np.ndarray]:
        """Each session's DR term (the summand of `doubly_robust`), its terms and clipped weights."""
        target, item_code, user_list_code, n_codes = _list_policy(user, item, list_users, lists, n_items, explore)
        t = _session_return_terms(user, session, propensity, returned, target, item_code, user_list_code,
                                  n_codes, explore, session_weight)
        w = clip_weights(np.minimum(t.weights, 1e12), weight_cap, session_weight == "pseudo_inverse")
        return t.q_target + w * (t.rewards - t.q_logged), t, w

    mine, terms, w = dr_terms(*challenger)
    theirs, _, _ = dr_terms(*champion)
    diff = mine - theirs
    value = float(diff.mean()) if diff.size else float("nan")
    replicates = _bootstrap_indices(diff.size, n_bootstrap, seed, terms.user)
    if replicates:
        low, high = np.percentile([diff[idx].mean() for idx in replicates], [2.5, 97.5])
    else:
        low = high = value
    clipped = float(np.mean(w < terms.weights)) if w.size else 0.0
    return Estimate("dr_diff", value, float(low), float(high), int(diff.size), effective_sample_size(w),
                    weight_cap, clipped)


@dataclass(frozen=True)
class _SessionTerms:
    """Per logged session: the return reward, the policy's weight and the reward model's two predictions."""

    rewards: np.ndarray
    weights: np.ndarray
    q_logged: np.ndarray
    q_target: np.ndarray
    user: np.ndarray


def _list_policy(user: np.ndarray, item: np.ndarray, list_users: np.ndarray, lists: np.ndarray, n_items: int,
                 explore: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Each impression's target inclusion probability, its item's code, each impression's user's
    list as codes, and the number of codes (items logged or listed)."""
    k = lists.shape[1]
    row = np.searchsorted(list_users, user)
    has = (row < len(list_users)) & (list_users[np.minimum(row, len(list_users) - 1)] == user)
    values, counts = np.unique(lists.ravel(), return_counts=True)
    fallback = values[np.argsort(-counts, kind="stable")][:k]
    user_lists = np.where(has[:, None], lists[np.minimum(row, len(list_users) - 1)], fallback[None, :])
    in_list = (user_lists == item[:, None]).any(axis=1)
    target = list_policy_prob(in_list, explore, n_items, k)
    ids, codes = np.unique(np.concatenate([item, lists.ravel(), fallback]), return_inverse=True)
    return target, codes[: len(item)], np.searchsorted(ids, user_lists), len(ids)


def _session_return_terms(user: np.ndarray, session: np.ndarray, propensity: np.ndarray, returned: np.ndarray,
                          target: np.ndarray, item_code: np.ndarray, user_list_code: np.ndarray, n_codes: int,
                          explore: float, session_weight: str = "mean") -> _SessionTerms:
    """One unit per session: its weight (SESSION_WEIGHTS) and the mean of its slots' per-item
    mean return predictions."""
    if session_weight not in SESSION_WEIGHTS:
        raise ValueError(f"session_weight must be one of {SESSION_WEIGHTS}, got {session_weight!r}")
    _, sess_idx = np.unique(np.stack([user.astype(np.float64), session.astype(np.float64)], axis=1), axis=0,
                            return_inverse=True)
    sess_idx = sess_idx.ravel()
    n_s = int(sess_idx.max()) + 1 if sess_idx.size else 0
    size = np.maximum(np.bincount(sess_idx, minlength=n_s), 1)
    w = importance_weights(target, propensity, None)
    user_sess = np.zeros(n_s, dtype=user.dtype)
    user_sess[sess_idx] = user
    returned = np.asarray(returned, np.float64)
    q_ret = ItemMeanRewardModel(n_codes).fit(item_code, returned)
    q_target_imp = (1 - explore) * q_ret.means[user_list_code].mean(axis=1) + explore * q_ret.global_mean
    slot_weights = np.bincount(sess_idx, weights=w, minlength=n_s)
    return _SessionTerms(rewards=np.bincount(sess_idx, weights=returned, minlength=n_s) / size,
                         weights=slot_weights - (size - 1) if session_weight == "pseudo_inverse"
                         else slot_weights / size,
                         q_logged=np.bincount(sess_idx, weights=q_ret.predict(item_code), minlength=n_s) / size,
                         q_target=np.bincount(sess_idx, weights=q_target_imp, minlength=n_s) / size,
                         user=user_sess)
