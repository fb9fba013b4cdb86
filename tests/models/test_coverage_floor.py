"""The coverage floor: collapsed lists spread over at least the floor's items, each user's own
order kept; lists that do not collapse untouched."""

import numpy as np

from recsys.models.coverage_floor import distinct_items, spread_over_items
from recsys.models.topk import TopK

K = 10


def ranked(items: np.ndarray) -> TopK:
    """(users, M) ranked item indices -> TopK candidates with decreasing scores."""
    users, m = items.shape
    return TopK(np.repeat(np.arange(users), m), items.ravel(), np.tile(np.arange(1, m + 1), users).astype(np.int16),
                np.tile(np.linspace(1.0, 0.0, m), users).astype(np.float32))


def collapsed(users: int = 500, m: int = 50, seed: int = 0) -> TopK:
    """Everyone ranks nearly the same few items first (a collapsed policy)."""
    rng = np.random.default_rng(seed)
    return ranked(np.stack([np.argsort(np.arange(200) + rng.normal(0, 0.7, 200))[:m] for _ in range(users)]))


def test_collapsed_lists_hold_the_floor_keep_their_length_and_each_users_own_order():
    candidates = collapsed()
    head = candidates.rank <= K
    assert len(np.unique(candidates.item_index[head])) < 20  # the case the floor is for
    spread = spread_over_items(candidates, K, 20)
    assert distinct_items(spread) >= 20
    assert np.all(np.bincount(spread.user_index) == K)
    assert np.bincount(spread.item_index).max() <= 500 * K // 20  # no item in more than 1/floor of the slots
    for user in (0, 17, 499):
        mine = spread.user_index == user
        theirs = candidates.user_index == user
        order = {item: r for item, r in zip(candidates.item_index[theirs], candidates.rank[theirs])}
        got = spread.item_index[mine][np.argsort(spread.rank[mine])]
        assert list(spread.rank[mine][np.argsort(spread.rank[mine])]) == list(range(1, K + 1))
        assert all(item in order for item in got)  # only the user's own candidates
        assert [order[i] for i in got] == sorted(order[i] for i in got)  # in her own order
        assert len(set(got)) == K


def test_lists_above_the_floor_and_a_floor_of_zero_change_nothing():
    rng = np.random.default_rng(1)
    varied = ranked(np.stack([rng.permutation(300)[:40] for _ in range(200)]))
    for floor in (20, 0):
        got = spread_over_items(varied, K, floor)
        head = varied.rank <= K
        assert np.array_equal(np.sort(got.item_index * 1000 + got.user_index),
                              np.sort(varied.item_index[head] * 1000 + varied.user_index[head]))
    assert distinct_items(spread_over_items(collapsed(), K, 0)) < 20


def test_users_with_few_candidates_keep_what_they_have():
    candidates = collapsed(users=100, m=K + 40)
    short = candidates.user_index != 3
    short |= candidates.rank <= 4  # user 3 has four unseen items only
    candidates = TopK(*(getattr(candidates, f)[short] for f in ("user_index", "item_index", "rank", "score")))
    spread = spread_over_items(candidates, K, 20)
    assert np.bincount(spread.user_index)[3] == 4 and distinct_items(spread) >= 20
