"""recsys.metrics.exposure on hand-computed cases."""

import numpy as np
import pytest

from recsys.metrics.exposure import exposure, gini


def test_gini_of_hand_made_counts():
    assert gini(np.array([5, 5, 5, 5])) == 0.0
    assert gini(np.array([0, 0, 0, 8])) == pytest.approx(3 / 4)  # all on one of n: (n - 1) / n
    # x = 1, 2, 3: 2 * (1 + 4 + 9) / (3 * 6) - 4 / 3 = 28/18 - 24/18
    assert gini(np.array([3, 1, 2])) == pytest.approx(4 / 18)
    assert gini(np.array([])) == 0.0 and gini(np.zeros(3)) == 0.0


def test_exposure_of_lists_over_a_catalogue():
    # three users, two slots each, over a catalogue of five items: item 1 in every list
    users = np.array([1, 1, 2, 2, 3, 3])
    items = np.array([10, 11, 10, 12, 10, 11])
    got = exposure(users, items, n_items=5)
    assert (got.users, got.distinct_items, got.coverage, got.top_item_share) == (3, 3, 3 / 5, 1.0)
    assert got.gini == pytest.approx(gini(np.array([3, 2, 1, 0, 0])))
    # one list for everyone: two distinct items whatever the number of users
    same = exposure(np.repeat(np.arange(1000), 2), np.tile([10, 11], 1000), n_items=100)
    assert same.distinct_items == 2 and same.gini > 0.97 and same.top_item_share == 1.0
    # a catalogue size below what was listed counts the listed items
    assert exposure(users, items, n_items=1).coverage == 1.0
