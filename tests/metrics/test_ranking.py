import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import ndcg_score

from recsys.metrics.ranking import gini, intra_list_diversity, ranking_metrics, temporal_split
from recsys.models.topk import TopK, top_k_factors


def _top(lists):
    users, items, ranks = [], [], []
    for u, items_u in enumerate(lists):
        for r, i in enumerate(items_u, start=1):
            users.append(u), items.append(i), ranks.append(r)
    return TopK(np.array(users), np.array(items), np.array(ranks), -np.array(ranks, dtype=np.float32))


def _relevant(sets, n_items):
    rows = [u for u, s in enumerate(sets) for _ in s]
    cols = [i for s in sets for i in s]
    return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(sets), n_items))


def test_perfect_ranking_scores_one_and_no_hit_scores_zero():
    rel = _relevant([{0, 1}, {2}], 5)
    perfect = ranking_metrics(_top([[0, 1, 4], [2, 3, 4]]), rel, np.arange(2), 3)
    assert {m: perfect[m] for m in ("recall", "ndcg", "map", "hit_rate")} == dict.fromkeys(("recall", "ndcg", "map", "hit_rate"), 1.0)
    assert np.isclose(perfect["precision"], (2 / 3 + 1 / 3) / 2)
    none = ranking_metrics(_top([[2, 3, 4], [0, 1, 4]]), rel, np.arange(2), 3)
    assert all(none[m] == 0.0 for m in ("recall", "ndcg", "map", "hit_rate", "precision"))


def test_hand_computed_case():
    # user 0: relevant {1, 3}, list [0, 1, 2]: one hit at rank 2 of 2 relevant
    m = ranking_metrics(_top([[0, 1, 2]]), _relevant([{1, 3}], 5), np.arange(1), 3)
    assert np.isclose(m["recall"], 0.5)
    assert np.isclose(m["ndcg"], (1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert np.isclose(m["precision"], 1 / 3)
    assert np.isclose(m["map"], (1 / 2) / 2)  # precision@2 at the one hit, over min(K, 2 relevant)
    assert m["hit_rate"] == 1.0


def test_hand_computed_two_users_and_beyond_accuracy():
    # user 0: list [1, 0, 2], relevant {0, 2}: hits at ranks 2 and 3
    # user 1: list [3, 4], relevant {4}: one hit at rank 2 (a list shorter than K)
    top = _top([[1, 0, 2], [3, 4]])
    rel = _relevant([{0, 2}, {4}], 6)
    train = sp.csr_matrix(np.array([[0, 0, 0, 1, 0, 1], [1, 1, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0]], dtype=float))
    m = ranking_metrics(top, rel[[0, 1]], np.arange(2), 3, train=train)
    assert np.isclose(m["recall"], (2 / 2 + 1 / 1) / 2)
    assert np.isclose(m["precision"], (2 / 3 + 1 / 3) / 2)
    assert np.isclose(m["map"], ((1 / 2 + 2 / 3) / 2 + (1 / 2) / 1) / 2)
    d = 1 / np.log2([2, 3, 4])
    assert np.isclose(m["ndcg"], ((d[1] + d[2]) / (d[0] + d[1]) + d[1] / d[0]) / 2)
    assert np.isclose(m["coverage"], 5 / 6)  # items 0..4 recommended, item 5 never
    # users per item in train (3 users): item0 1, item1 2, item2 0, item3 1, item4 0
    share = np.array([1, 2, 0, 1, 0]) / 3
    slots = share[[1, 0, 2, 3, 4]]
    assert np.isclose(m["mean_popularity"], slots.mean())
    assert np.isclose(m["novelty"], (-np.log2(np.maximum(slots, 1 / 3))).mean() / np.log2(3))
    assert np.isclose(m["gini"], gini(np.array([1, 1, 1, 1, 1, 0])))


def test_gini_and_diversity_limits():
    assert gini(np.array([3, 3, 3])) == 0.0
    assert np.isclose(gini(np.array([0, 0, 0, 9])), 3 / 4)
    factors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert np.isclose(intra_list_diversity(_top([[0, 1]]), factors), 0.5)  # orthogonal items
    assert np.isclose(intra_list_diversity(_top([[0, 2]]), factors), 0.0)  # identical directions
    assert np.isclose(intra_list_diversity(_top([[0, 1, 2]]), factors), (0.5 + 0 + 0.5) / 3)
    assert np.isclose(intra_list_diversity(_top([[0, 1]]), np.array([[1.0, 0.0], [-1.0, 0.0]])), 1.0)  # opposite


def test_temporal_split_last_day_and_last_n_never_leak():
    from datetime import datetime, timezone

    from recsys.dataset import WindowDataset

    day = 86400.0
    end = datetime(2026, 1, 10, tzinfo=timezone.utc)
    t_end = end.timestamp()
    # user 0: items 0,1,2 on days -3,-2,-1; user 1: item 1 twice (day -3 and -1), item 3 on day -1
    ds = WindowDataset(user_ids=np.array([7, 8]), item_ids=np.arange(4) * 10,
                       user_index=np.array([0, 0, 0, 1, 1, 1]), item_index=np.array([0, 1, 2, 1, 1, 3]),
                       event_code=np.full(6, 2), ts=t_end - day * np.array([2.5, 1.5, 0.5, 2.5, 0.5, 0.4]),
                       value=np.ones(6))
    hold = temporal_split(ds, ("consume",), end)
    assert hold.relevant.toarray().tolist() == [[0, 0, 1, 0], [0, 0, 0, 1]]  # user 1's repeat of item 1 is not new
    assert hold.train.toarray().tolist() == [[1, 1, 0, 0], [0, 1, 0, 0]]
    val = temporal_split(ds, ("consume",), end, offset=1)
    assert val.relevant.toarray().tolist() == [[0, 1, 0, 0], [0, 0, 0, 0]] and val.users.tolist() == [0]
    assert val.train.toarray().tolist() == [[1, 0, 0, 0], [0, 1, 0, 0]]
    last1 = temporal_split(ds, ("consume",), end, last_n=1)
    assert last1.relevant.toarray().tolist() == [[0, 0, 1, 0], [0, 0, 0, 1]]
    last1_val = temporal_split(ds, ("consume",), end, last_n=1, offset=1)
    assert last1_val.train.toarray().tolist() == [[1, 0, 0, 0], [0, 1, 0, 0]]
    assert last1_val.relevant.toarray().tolist() == [[0, 1, 0, 0], [0, 0, 0, 0]]


def test_temporal_split_user_last_day_holds_out_each_users_own_last_day():
    from datetime import datetime, timezone

    import pytest

    from recsys.dataset import WindowDataset

    day = 86400.0
    end = datetime(2026, 1, 10, tzinfo=timezone.utc)
    t_end = end.timestamp()
    # user 0 (id 7): item 0 on day -5, items 1 and 2 on day -4 (its last day), nothing after;
    # user 1 (id 8): item 1 on day -3, item 3 on day -2, item 0 on day -1 (its last day);
    # user 2 (id 9): one active day only (item 2 twice on day -1): never tested
    ds = WindowDataset(user_ids=np.array([7, 8, 9]), item_ids=np.arange(4) * 10,
                       user_index=np.array([0, 0, 0, 1, 1, 1, 2, 2]),
                       item_index=np.array([0, 1, 2, 1, 3, 0, 2, 2]), event_code=np.full(8, 2),
                       ts=t_end - day * np.array([4.5, 3.9, 3.1, 2.5, 1.5, 0.5, 0.6, 0.2]), value=np.ones(8))
    hold = temporal_split(ds, ("consume",), end, holdout="user_last_day")
    assert hold.relevant.toarray().tolist() == [[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0]]
    assert hold.train.toarray().tolist() == [[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0]]
    assert hold.users.tolist() == [0, 1]  # the window's last day alone would test user 1 only
    assert temporal_split(ds, ("consume",), end).users.tolist() == [1]
    val = temporal_split(ds, ("consume",), end, offset=1, holdout="user_last_day")
    assert val.relevant.toarray().tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert val.train.toarray().tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert val.users.tolist() == [1]  # user 0 has no day before its validation day
    with pytest.raises(ValueError, match="holdout must be one of"):
        temporal_split(ds, ("consume",), end, holdout="yesterday")


def test_ndcg_agrees_with_sklearn_when_all_relevant_items_are_ranked():
    rng = np.random.default_rng(0)
    n_items, k = 8, 8
    scores = rng.random((20, n_items))
    truth = (rng.random((20, n_items)) < 0.3).astype(float)
    truth[truth.sum(1) == 0, 0] = 1
    order = np.argsort(-scores, axis=1)
    top = _top(order.tolist())
    ours = ranking_metrics(top, sp.csr_matrix(truth), np.arange(20), k)["ndcg"]
    assert np.isclose(ours, ndcg_score(truth, scores, k=k))


def test_top_k_excludes_seen_items_and_keeps_ranks_contiguous():
    users = np.eye(3, dtype=np.float32)
    items = np.diag([3.0, 2.0, 1.0]).astype(np.float32)[[0, 1, 2, 0]] + np.array([[0, 0, 0]] * 3 + [[0.5, 0, 0]], dtype=np.float32)
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]))
    top = top_k_factors(users, items, seen, k=2)
    by_user = {u: list(top.item_index[top.user_index == u]) for u in range(3)}
    assert 0 not in by_user[0] and by_user[0][0] == 3
    assert by_user[2] == []  # every item seen: empty list, not -inf rows
    assert list(top.rank[top.user_index == 1]) == [1, 2]


def test_top_k_in_small_batches_equals_one_batch_and_never_returns_seen():
    rng = np.random.default_rng(1)
    users, items = rng.random((50, 4), dtype=np.float32), rng.random((30, 4), dtype=np.float32)
    seen = sp.random(50, 30, density=0.3, random_state=2, format="csr")
    a, b = top_k_factors(users, items, seen, 5, batch_users=7), top_k_factors(users, items, seen, 5, batch_users=4096)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("user_index", "item_index", "rank"))
    assert not np.asarray(seen[a.user_index, a.item_index]).any()


@pytest.mark.parametrize("n_items", [5 * 64 * 8, 5 * 64 * 8 + 37])  # whole blocks, and a padded last block
def test_two_stage_top_k_of_a_large_catalogue_equals_a_full_sort(n_items):
    """The block-maximum top-K path (catalogue >= 8 K blocks) against numpy's full sort, seen items excluded."""
    rng = np.random.default_rng(3)
    n_users, k = 300, 5
    users, items = rng.normal(size=(n_users, 8)).astype(np.float32), rng.normal(size=(n_items, 8)).astype(np.float32)
    seen = sp.random(n_users, n_items, density=0.05, random_state=4, format="lil")
    seen[7] = 1.0  # a user who has seen everything gets an empty list
    seen = seen.tocsr()
    picked = np.array([250, 3, 7, 99, 100])  # unsorted, not contiguous
    for subset in (None, picked):
        top = top_k_factors(users, items, seen, k, batch_users=64, users=subset)
        scores = users @ items.T
        scores[seen.toarray() > 0] = -np.inf
        for u in (range(n_users) if subset is None else subset):
            expected = [i for i in np.argsort(-scores[u], kind="stable")[:k] if np.isfinite(scores[u, i])]
            assert list(top.item_index[top.user_index == u]) == expected
    assert not (top.user_index == 7).any()


def test_per_user_ranking_is_what_ranking_metrics_averages():
    from recsys.metrics.ranking import per_user_ranking

    # user 0: list [1, 0, 2], relevant {0, 2}; user 1: no list; user 2: list [3, 4], relevant {4}
    top = _top([[1, 0, 2], [], [3, 4]])
    rel = _relevant([{0, 2}, {1}, {4}], 6)
    users = np.array([2, 0, 1])
    per_user = per_user_ranking(top, rel, users, 3)
    d = 1 / np.log2([2, 3, 4])
    assert per_user["recall"] == pytest.approx([1.0, 1.0, 0.0])
    assert per_user["ndcg"] == pytest.approx([d[1] / d[0], (d[1] + d[2]) / (d[0] + d[1]), 0.0])
    means = ranking_metrics(top, rel, users, 3)
    assert means["recall"] == pytest.approx(per_user["recall"].mean())
    assert means["ndcg"] == pytest.approx(per_user["ndcg"].mean())


def test_propensity_weighted_recall_and_ndcg_by_hand_and_at_gamma_zero():
    from recsys.metrics.ranking import accuracy_per_user, item_propensities, propensity_weighted_per_user

    # user 0 lists items 0, 1, 2 and held out 1 (popular) and 3 (rare); user 1 lists 3, 0 and held out 3
    top = TopK(np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 3, 0]), np.array([1, 2, 3, 1, 2]),
               np.zeros(5, np.float32))
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 1], [0, 0, 0, 1]], np.float32))
    users = np.array([0, 1])
    p = item_propensities(np.array([10, 100, 5, 25]), gamma=0.5)  # item 1: 1, item 3: 0.5
    assert p[1] == 1.0 and p[3] == pytest.approx(0.5)
    got = propensity_weighted_per_user(top, relevant, users, 3, p)
    # user 0: hit item 1 (weight 1) at rank 2; relevant weights 1 + 2; ideal puts item 3 (2) then item 1 (1)
    assert got["pw_recall"][0] == pytest.approx(1 / 3)
    assert got["pw_ndcg"][0] == pytest.approx((1 / np.log2(3)) / (2 + 1 / np.log2(3)))
    assert got["pw_recall"][1] == got["pw_ndcg"][1] == 1.0
    plain = accuracy_per_user(top, relevant, users, 3)
    flat = propensity_weighted_per_user(top, relevant, users, 3, item_propensities(np.array([10, 100, 5, 25]), 0.0))
    assert np.allclose(flat["pw_recall"], plain["recall"]) and np.allclose(flat["pw_ndcg"], plain["ndcg"])
    with pytest.raises(ValueError, match="gamma"):
        item_propensities(np.array([1, 2]), -1.0)
