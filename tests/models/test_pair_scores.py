"""Scores of (user, item) pairs: the same order as each model's served lists, and saved models
aligned to tonight's ids."""

import numpy as np
import scipy.sparse as sp

from recsys.models.factors import FactorModel
from recsys.models.item_item.model import ItemItemModel
from recsys.models.pair_scores import factor_pair_scores, item_item_pair_scores
from recsys.models.saved import load_model, pair_scores
from recsys.models.topk import top_k_item_item

SEEN = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 2, 1, 0, 0], [1, 1, 1, 1, 0]], np.float32))


def test_factor_pairs_are_dot_products():
    users, items = np.array([[1.0, 2.0], [0.0, -1.0]]), np.array([[3.0, 1.0], [1.0, 1.0], [0.5, 2.0]])
    assert factor_pair_scores(users, items, np.array([0, 1, 0]), np.array([2, 0, 1])).tolist() == [4.5, -1.0, 3.0]


def test_sparse_item_item_pairs_order_items_as_the_served_list():
    # item 0's neighbours: 1 (0.5) and 2 (0.2); the others reach nothing: they come after, by popularity
    s = sp.csr_matrix(np.array([[0, 0.5, 0.2, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0],
                                [0, 0, 0, 0, 0]], np.float32))
    items = np.arange(5)
    scores = item_item_pair_scores(s, SEEN, np.zeros(5, np.int64), items)
    popularity = np.asarray(SEEN.sum(axis=0)).ravel()
    assert scores[1] == np.float32(0.5) and scores[2] == np.float32(0.2)
    assert np.allclose(scores[[3, 4]], popularity[[3, 4]] / (popularity.max() + 1) - 1)
    served = top_k_item_item(s, (SEEN > 0).astype(np.float32).tocsr(), SEEN, 4, users=np.array([0]),
                             fill=popularity / (popularity.max() + 1))
    ranked_unseen = [i for i in np.argsort(-scores, kind="stable") if i != 0]
    assert served.item_index[np.argsort(served.rank)].tolist() == ranked_unseen


def test_dense_item_item_pairs_are_the_history_times_s():
    s = np.arange(25, dtype=np.float32).reshape(5, 5)
    scores = item_item_pair_scores(s, SEEN, np.array([1, 2, 1]), np.array([4, 0, 3]))
    history = (SEEN.toarray() > 0).astype(np.float32)
    assert scores.tolist() == [(history[1] @ s)[4], (history[2] @ s)[0], (history[1] @ s)[3]]


def test_saved_models_score_tonights_ids_and_never_seen_items_rank_last(tmp_path):
    factors = FactorModel(np.array([[1.0], [2.0]], np.float32), np.array([[3.0], [1.0]], np.float32),
                          user_ids=np.array([10, 20]), item_ids=np.array([100, 300]))
    npz, _ = factors.save(tmp_path / "f")
    tonight_users, tonight_items = np.array([10, 20, 30]), np.array([100, 200, 300])  # 200 and user 30 are new
    seen = sp.csr_matrix((3, 3), dtype=np.float32)
    got = pair_scores(load_model(npz), tonight_users, tonight_items, seen, np.array([1, 1, 2, 0]),
                      np.array([0, 1, 2, 2]))
    assert got.tolist() == [6.0, -np.inf, 0.0, 1.0]

    item_item = ItemItemModel(sp.csr_matrix(np.array([[0, 0.7], [0.4, 0]], np.float32)), np.array([10, 20]),
                              np.array([100, 300]))
    npz, _ = item_item.save(tmp_path / "i")
    history = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], np.float32))
    got = pair_scores(load_model(npz), tonight_users, tonight_items, history, np.array([0, 0, 1]),
                      np.array([2, 1, 0]))
    assert got[0] == np.float32(0.7) and got[1] == -np.inf and got[2] == np.float32(0.4)
