"""The baselines on hand-computed cases."""

import numpy as np
import pytest

from recsys.models.baselines import as_factors, baseline_scores, popularity_scores, trending_scores

DAY = 86_400.0


def test_popularity_counts_the_events_of_each_item():
    assert popularity_scores(np.array([0, 2, 2, 2, 1]), 4).tolist() == [1.0, 1.0, 3.0, 0.0]


def test_trending_halves_an_event_per_half_life_of_age():
    # item 0: one event now; item 1: two events one half-life (2 days) ago; item 2: one 4 days ago
    items = np.array([0, 1, 1, 2])
    ts = np.array([10 * DAY, 8 * DAY, 8 * DAY, 6 * DAY])
    np.testing.assert_allclose(trending_scores(items, ts, 3, half_life_days=2.0), [1.0, 1.0, 0.25])
    # a longer half-life favours the item with more (older) events; popularity is the limit
    long = trending_scores(items, ts, 3, half_life_days=1e9)
    np.testing.assert_allclose(long, popularity_scores(items, 3), rtol=1e-6)
    assert trending_scores(np.array([], np.int64), np.array([]), 2, 1.0).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="half-life must be > 0"):
        trending_scores(items, ts, 3, half_life_days=0.0)


def test_as_factors_serve_the_scores_to_every_user_and_unknown_methods_are_refused():
    users, items = as_factors(np.array([2.0, 4.0, 0.0]), n_users=2)
    np.testing.assert_allclose(users @ items.T, [[0.5, 1.0, 0.0], [0.5, 1.0, 0.0]])
    with pytest.raises(ValueError, match="unknown baseline method 'random'"):
        baseline_scores("random", np.array([0]), np.array([0.0]), 1, 1.0)
