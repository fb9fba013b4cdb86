"""The closed-loop world: reproducible for a seed; return probability follows quality."""

import numpy as np

from recsys.sim.closed_loop import ArmServer, arm_of, fill_lists
from recsys.sim.world import World


def _run(world, days, pick):
    outcomes = []
    for day in range(days):
        users = world.active_users(day)
        outcomes.append(world.step(day, users, pick(users)))
    return outcomes


def test_same_seed_and_slates_give_the_same_days():
    def pick(users):
        return np.tile(np.arange(10), (len(users), 1))
    a, b = _run(World(300, 100, 5, seed=3), 5, pick), _run(World(300, 100, 5, seed=3), 5, pick)
    for x, y in zip(a, b):
        for f in ("users", "click", "consume", "satisfaction", "return_prob", "churned"):
            np.testing.assert_array_equal(getattr(x, f), getattr(y, f))
    c = _run(World(300, 100, 5, seed=4), 5, pick)
    assert any(len(x.users) != len(y.users) or (x.click != y.click).any() for x, y in zip(a, c))


def test_return_probability_rises_with_the_quality_served():
    world = World(2000, 200, 1, seed=5)
    best, worst = np.argsort(-world.quality)[:10], np.argsort(world.quality)[:10]
    assert world.appeal[worst].mean() > world.appeal[best].mean()  # clickbait: worse items appeal more
    users = world.active_users(0)
    high = users % 2 == 0
    slate = np.where(high[:, None], best[None, :], worst[None, :])
    out = world.step(0, users, slate)
    clicks_high, clicks_low = out.click[high].mean(), out.click[~high].mean()
    assert clicks_low > clicks_high  # low quality gets more clicks now ...
    ret = dict(zip(out.in_system.tolist(), out.return_prob))
    ret_high = np.mean([ret[u] for u in users[high]])
    ret_low = np.mean([ret[u] for u in users[~high]])
    assert ret_high > ret_low + 0.02  # ... but fewer returns later
    # and the formula is monotone in satisfaction
    s = np.linspace(0, 1, 11)
    assert np.all(np.diff(world.return_prob(s, np.zeros(11, np.int64))) > 0)


def test_arms_are_stable_and_balanced():
    ids = np.arange(20_000)
    arms = arm_of(ids, 4)
    np.testing.assert_array_equal(arms, arm_of(ids, 4))
    shares = np.bincount(arms, minlength=4) / len(ids)
    assert np.all(np.abs(shares - 0.25) < 0.02)


def test_explored_slates_log_exact_inclusion_probabilities():
    server = ArmServer(n_items=50, slate_size=5, explore=0.2, seed=0)
    lists = np.tile(np.arange(5), (2000, 1))
    slate, prop = server.explored_slates(lists, np.random.default_rng(0))
    assert all(len(set(row)) == 5 for row in slate)
    listed = slate == lists
    assert abs(listed.mean() - 0.8) < 0.02
    np.testing.assert_allclose(prop[listed], 0.8)
    # an exploratory item is in the slate with probability K * explore / (items - K) = 1 / 45
    np.testing.assert_allclose(prop[~listed], 5 * 0.2 / 45)
    assert abs(np.mean(slate == 7) * 5 - 1 / 45) < 0.004  # item 7 (not listed): empirical inclusion
    np.testing.assert_array_equal(fill_lists(np.array([[3, -1, -1]]), np.array([3, 7, 8])), [[3, 7, 8]])
