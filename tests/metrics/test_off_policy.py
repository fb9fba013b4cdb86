"""Off-policy estimators on a bandit whose true value is known in closed form."""

import numpy as np
import pytest

from recsys.metrics import off_policy as ope

# A contextual bandit: 4 contexts (uniform), 3 actions, Bernoulli rewards.
P_REWARD = np.array([[0.9, 0.1, 0.3], [0.2, 0.7, 0.4], [0.5, 0.5, 0.9], [0.1, 0.3, 0.6]])
MU = np.array([[0.6, 0.3, 0.1], [0.2, 0.6, 0.2], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4]])  # logging policy
PI = np.array([[0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]])  # target policy
TRUE_VALUE = float(np.mean(np.sum(PI * P_REWARD, axis=1)))  # E_x sum_a pi(a|x) r(x, a)


def _log(rng, n):
    x = rng.integers(0, 4, n)
    a = (rng.random(n)[:, None] > np.cumsum(MU[x], axis=1)).sum(axis=1)
    r = (rng.random(n) < P_REWARD[x, a]).astype(float)
    return x, a, r


def test_ips_and_dr_are_unbiased_and_snips_consistent():
    rng = np.random.default_rng(0)
    wrong_q = np.full((4, 3), 0.5)  # a deliberately wrong reward model: DR stays unbiased
    runs = {"ips": [], "snips": [], "dr": [], "dr_wrong": []}
    for _ in range(400):
        x, a, r = _log(rng, 500)
        w = PI[x, a] / MU[x, a]
        q = P_REWARD  # the right reward model
        runs["ips"].append(ope.ips(r, w))
        runs["snips"].append(ope.snips(r, w))
        runs["dr"].append(ope.doubly_robust(r, w, q[x, a], np.sum(PI[x] * q[x], axis=1)))
        runs["dr_wrong"].append(ope.doubly_robust(r, w, wrong_q[x, a], np.sum(PI[x] * wrong_q[x], axis=1)))
    for name, values in runs.items():
        values = np.array(values)
        se = values.std(ddof=1) / np.sqrt(len(values))
        assert abs(values.mean() - TRUE_VALUE) < 4 * se + (0.003 if name == "snips" else 0), (name, values.mean())
    # DR with the right model has lower variance than IPS
    assert np.std(runs["dr"]) < np.std(runs["ips"])


def test_evaluate_interval_covers_the_truth_and_reports_ess():
    rng = np.random.default_rng(1)
    x, a, r = _log(rng, 4000)
    model = ope.ItemMeanRewardModel(3).fit(a, r)  # per-action means: a context-free reward model
    q_target = PI[x] @ model.means
    est = ope.evaluate(r, PI[x, a], MU[x, a], model.predict(a), q_target, n_bootstrap=200, seed=3)
    assert set(est) == {"ips", "snips", "dr"}
    for e in est.values():
        assert e.ci_low <= TRUE_VALUE <= e.ci_high, e
        assert 0 < e.ess < 4000 and e.n == 4000
    again = ope.evaluate(r, PI[x, a], MU[x, a], model.predict(a), q_target, n_bootstrap=200, seed=3)
    assert again == est  # seeded bootstrap


def test_weight_capping_matches_hand_computed_values():
    r = np.array([1.0, 0.0, 1.0])
    target, logging = np.array([0.25, 0.4, 1.0]), np.array([0.5, 0.2, 0.1])  # w = 0.5, 2, 10
    np.testing.assert_allclose(ope.importance_weights(target, logging, cap=3.0), [0.5, 2.0, 3.0])
    est = ope.evaluate(r, target, logging, np.full(3, 0.5), np.full(3, 0.4), weight_cap=3.0, n_bootstrap=0)
    assert est["ips"].value == pytest.approx(3.5 / 3)
    assert est["snips"].value == pytest.approx(3.5 / 5.5)
    assert est["dr"].value == pytest.approx(0.4 + (0.5 * 0.5 + 2 * -0.5 + 3 * 0.5) / 3)
    assert est["ips"].ess == pytest.approx(5.5**2 / (0.25 + 4 + 9))
    assert est["ips"].clipped_share == pytest.approx(1 / 3)
    uncapped = ope.evaluate(r, target, logging, n_bootstrap=0)
    assert uncapped["ips"].value == pytest.approx(10.5 / 3) and "dr" not in uncapped


def test_limits_and_bad_input():
    assert ope.effective_sample_size(np.ones(7)) == pytest.approx(7)
    assert ope.effective_sample_size(np.array([0, 0, 5.0])) == pytest.approx(1)
    assert ope.effective_sample_size(np.zeros(3)) == 0
    assert np.isnan(ope.ips(np.array([]), np.array([])))
    assert np.isnan(ope.snips(np.array([1.0]), np.array([0.0])))
    with pytest.raises(ValueError):
        ope.importance_weights(np.array([0.5]), np.array([0.0]))
    with pytest.raises(ValueError):
        ope.clip_weights(np.array([1.0]), 0.0)


def test_cluster_bootstrap_resamples_whole_clusters():
    r = np.array([1.0, 1.0, 0.0, 0.0])
    est = ope.evaluate(r, np.ones(4), np.ones(4), cluster=np.array([7, 7, 9, 9]), n_bootstrap=50, seed=0)
    # each replicate holds two clusters, so the mean is 0, 0.5 or 1, never 0.25
    assert est["ips"].ci_low in (0.0, 0.5) and est["ips"].ci_high in (0.5, 1.0)


def test_list_policy_estimate_recovers_a_simulated_list_policys_value():
    """Logging: uniform random slates; target: a fixed list per user with exploration. The click
    rate of the target is known in closed form from the per-item click probabilities."""
    rng = np.random.default_rng(4)
    n_items, k, n_users, explore = 40, 4, 3000, 0.2
    p_click = rng.uniform(0.0, 0.5, n_items)
    lists = np.tile(np.argsort(-p_click)[:k], (n_users, 1))  # the best items
    slates = np.stack([rng.choice(n_items, k, replace=False) for _ in range(n_users)])
    prop = np.full(slates.shape, k / n_items)  # inclusion probability of a uniform slate
    clicks = rng.random(slates.shape) < p_click[slates]
    user = np.repeat(np.arange(n_users), k)
    est = ope.evaluate_list_policy(user, slates.ravel(), user, prop.ravel(), clicks.ravel().astype(float),
                                   np.zeros(user.size), np.arange(n_users), lists, n_items, explore,
                                   n_bootstrap=100, seed=0)
    truth = (1 - explore) * p_click[lists[0]].mean() + explore * np.delete(p_click, lists[0]).mean()
    np.testing.assert_allclose(ope.list_policy_prob(np.array([True, False]), 0.2, 40, 4), [0.8, 4 * 0.2 / 36])
    for name in ("ips", "snips", "dr"):
        e = est["click"][name]
        assert abs(e.value - truth) < 0.03, (name, e.value, truth)
    assert est["return"]["ips"].value == 0.0


def _additive_slate_log(seed: int, n_items: int = 40, k: int = 4, n_users: int = 4000):
    """Uniform random slates of k distinct items; a session's user returns with the mean
    return probability of its slate's items (a reward additive over the slate)."""
    rng = np.random.default_rng(seed)
    p_return = rng.uniform(0.1, 0.9, n_items)
    slates = np.stack([rng.choice(n_items, k, replace=False) for _ in range(n_users)])
    returned = np.repeat(rng.random(n_users) < p_return[slates].mean(axis=1), k).astype(float)
    user = np.repeat(np.arange(n_users), k)
    return p_return, (user, slates.ravel(), user, np.full(user.size, k / n_items)), returned


def _list_value(p_return, items, explore):
    """True return rate of a list policy with per-slot exploration in the additive slate world."""
    return (1 - explore) * p_return[items].mean() + explore * np.delete(p_return, items).mean()


def test_pseudo_inverse_session_weight_recovers_a_slate_level_return_rate_and_the_mean_does_not():
    n_items, k, n_users, explore = 40, 4, 4000, 0.1
    for seed in (0, 1):
        p_return, log, returned = _additive_slate_log(seed, n_items, k, n_users)
        items = np.argsort(-p_return)[:k]
        truth = _list_value(p_return, items, explore)
        logging_value = p_return.mean()  # uniform slates
        est = {weight: ope.evaluate_list_policy(*log, np.zeros(returned.size), returned, np.arange(n_users),
                                                np.tile(items, (n_users, 1)), n_items, explore, weight_cap=None,
                                                n_bootstrap=100, seed=0, session_weight=weight)["return"]
               for weight in ope.SESSION_WEIGHTS}
        pi = est["pseudo_inverse"]
        assert pi["ips"].ci_low <= truth <= pi["ips"].ci_high and pi["dr"].ci_low <= truth <= pi["dr"].ci_high
        assert abs(pi["dr"].value - truth) < 0.05
        # the mean of the slot weights lands about a quarter of the way from the logging value to the truth
        mean_ips = est["mean"]["ips"].value
        assert abs(mean_ips - (truth + (k - 1) * logging_value) / k) < 0.05 and mean_ips < truth - 0.15
    with pytest.raises(ValueError, match="session_weight"):
        ope.evaluate_list_policy(*log, np.zeros(returned.size), returned, np.arange(n_users),
                                 np.tile(items, (n_users, 1)), n_items, explore, session_weight="max")


def test_paired_return_difference_of_two_list_policies():
    """The paired estimate is the difference of the two DR estimates, covers the truth (with
    the unbiased pseudo-inverse weight), and is far narrower than the two intervals side by
    side when the lists overlap, as a retrained model's lists overlap the live model's."""
    n_items, k, n_users, explore = 40, 4, 4000, 0.1
    p_return, log, returned = _additive_slate_log(11, n_items, k, n_users)
    best = np.argsort(-p_return)
    mine, theirs = best[:k], np.r_[best[:k - 1], best[k + 4]]  # three items in common

    def lists(items):
        return np.arange(n_users), np.tile(items, (n_users, 1))

    truth = _list_value(p_return, mine, explore) - _list_value(p_return, theirs, explore)
    for weight in ope.SESSION_WEIGHTS:
        diff = ope.list_policy_return_difference(*log, returned, lists(mine), lists(theirs), n_items, explore,
                                                 weight_cap=20, n_bootstrap=200, seed=0, session_weight=weight)
        each = [ope.evaluate_list_policy(*log, np.zeros(returned.size), returned, *lists(items), n_items, explore,
                                         weight_cap=20, n_bootstrap=200, seed=0,
                                         session_weight=weight)["return"]["dr"] for items in (mine, theirs)]
        assert diff.estimator == "dr_diff" and diff.n == n_users
        assert diff.value == pytest.approx(each[0].value - each[1].value, abs=1e-12)
        side_by_side = (each[0].ci_high - each[0].ci_low) + (each[1].ci_high - each[1].ci_low)
        assert diff.ci_high - diff.ci_low < 0.5 * side_by_side, weight
        if weight == "pseudo_inverse":
            assert diff.ci_low <= truth <= diff.ci_high and abs(diff.value - truth) < 0.03
    same = ope.list_policy_return_difference(*log, returned, lists(mine), lists(mine), n_items, explore,
                                             n_bootstrap=50, seed=0)
    assert same.value == same.ci_low == same.ci_high == 0.0
