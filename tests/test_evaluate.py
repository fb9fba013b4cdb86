import numpy as np
import scipy.sparse as sp
from sklearn.metrics import ndcg_score

from recsys.evaluate import ranking_metrics
from recsys.score import TopK, top_k_factors


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
    assert perfect == {"recall": 1.0, "ndcg": 1.0}
    none = ranking_metrics(_top([[2, 3, 4], [0, 1, 4]]), rel, np.arange(2), 3)
    assert none == {"recall": 0.0, "ndcg": 0.0}


def test_hand_computed_case():
    # user 0: relevant {1, 3}, list [0, 1, 2]: one hit at rank 2 of 2 relevant
    m = ranking_metrics(_top([[0, 1, 2]]), _relevant([{1, 3}], 5), np.arange(1), 3)
    assert np.isclose(m["recall"], 0.5)
    assert np.isclose(m["ndcg"], (1 / np.log2(3)) / (1 + 1 / np.log2(3)))


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
