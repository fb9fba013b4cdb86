"""The paired bootstrap the ranking gate reads, and the per-user figures it resamples."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.metrics.paired import paired_bootstrap
from recsys.metrics.ranking import ACCURACY_METRICS, accuracy_per_user, ranking_metrics
from recsys.models.topk import TopK


def _pairs(n=500, seed=0):
    rng = np.random.default_rng(seed)
    champion = (rng.random(n) < 0.3) / np.log2(rng.integers(2, 12, n))  # NDCG-like: 0 or 1/log2(rank + 1)
    challenger = np.where(rng.random(n) < 0.2, rng.random(n), champion)
    return challenger, champion


def test_interval_is_the_percentile_bootstrap_of_the_mean_difference_computed_directly():
    a, b = _pairs()
    result = paired_bootstrap(a, b, n_samples=400, seed=11)
    # the same resamples drawn at once: row r is replicate r's users
    rng = np.random.default_rng(11)
    means = (a - b)[rng.integers(0, len(a), (400, len(a)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    assert result.mean == pytest.approx(np.mean(a - b), abs=1e-15)
    assert (result.low, result.high) == (pytest.approx(low, abs=1e-15), pytest.approx(high, abs=1e-15))
    assert result.n_users == 500 and result.level == 0.95 and result.n_samples == 400
    # a 90% interval lies inside the 95% one
    narrower = paired_bootstrap(a, b, n_samples=400, seed=11, level=0.9)
    assert result.low <= narrower.low <= narrower.high <= result.high


def test_pairing_removes_what_the_users_share():
    rng = np.random.default_rng(3)
    shared = rng.random(2000)  # how easy each user is, for both models
    a, b = shared + 0.01, shared
    paired = paired_bootstrap(a, b, 300, seed=0)
    assert paired.low == pytest.approx(0.01) and paired.high == pytest.approx(0.01)
    # resampling the two means independently would give an interval of about +-2.5e-2
    assert paired_bootstrap(a, rng.permutation(b), 300, seed=0).high - 0.01 > 0.01


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    a, b = _pairs(seed=5)
    first, again = paired_bootstrap(a, b, 1000, seed=42), paired_bootstrap(a.copy(), b.copy(), 1000, seed=42)
    assert first == again
    other = paired_bootstrap(a, b, 1000, seed=43)
    assert other.mean == first.mean and (other.low, other.high) != (first.low, first.high)


def test_limits_no_users_no_samples_and_bad_input():
    empty = paired_bootstrap(np.empty(0), np.empty(0), 100, seed=0)
    assert empty.n_users == 0 and np.isnan(empty.mean) and np.isnan(empty.low)
    a, b = _pairs(50)
    exact = paired_bootstrap(a, b, 0, seed=0)
    assert exact.low == exact.mean == exact.high
    identical = paired_bootstrap(a, a, 200, seed=0)
    assert identical.low == identical.mean == identical.high == 0.0
    with pytest.raises(ValueError, match="one length"):
        paired_bootstrap(a, b[:-1], 10, seed=0)
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap(a, b, 10, seed=0, level=95)


def test_per_user_figures_average_to_the_ranking_metrics():
    rng = np.random.default_rng(1)
    n_users, n_items, k = 40, 30, 5
    relevant = sp.random(n_users, n_items, density=0.1, random_state=2, format="csr")
    relevant.data[:] = 1.0
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)[::2]  # a subset of the users with relevant items
    lists = np.array([rng.permutation(n_items)[:k] for _ in range(n_users)])
    top = TopK(np.repeat(np.arange(n_users), k), lists.ravel(), np.tile(np.arange(1, k + 1), n_users),
               np.tile(np.linspace(1, 0, k), n_users))
    per_user = accuracy_per_user(top, relevant, users, k)
    means = ranking_metrics(top, relevant, users, k)
    assert list(per_user) == list(ACCURACY_METRICS)
    for metric, values in per_user.items():
        assert values.shape == (len(users),) and values.mean() == means[metric], metric
    # a user's own NDCG: rank r of the first hit among one relevant item gives 1/log2(r + 1)
    hit_users = [i for i, u in enumerate(users) if relevant[u].nnz == 1 and set(lists[u]) & set(relevant[u].indices)]
    for i in hit_users:
        rank = list(lists[users[i]]).index(relevant[users[i]].indices[0]) + 1
        assert per_user["ndcg"][i] == pytest.approx(1 / np.log2(rank + 1))
