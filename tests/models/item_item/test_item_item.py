"""The item-item models on hand-checkable matrices: item-kNN against a direct computation of
its similarities, EASE against a ridge regression of each item on the others, the EASE
memory refusal, the artifact, and the top-K scorer's exclusions. On MovieLens 100K, the
neighbours agree with `implicit`'s CosineRecommender and BM25Recommender."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.errors import ConfigurationError, ModelFitError
from recsys.models.item_item.ease import WORKING_COPIES, check_memory, fit_ease, required_bytes
from recsys.models.item_item.knn import KNNParams, item_knn, item_vectors
from recsys.models.item_item.model import ItemItemModel, binary_history
from recsys.models.saved import load_model
from recsys.models.topk import top_k_item_item

# 4 users x 5 items; item 4 has no user. Counts > 1 are read as 1.
X = sp.csr_matrix(np.array([[1, 1, 0, 0, 0],
                            [1, 3, 1, 0, 0],
                            [0, 1, 1, 1, 0],
                            [0, 0, 0, 1, 0]], dtype=np.float32))


def _random_history(n_users: int, n_items: int, density: float, seed: int) -> sp.csr_matrix:
    matrix = sp.random(n_users, n_items, density=density, random_state=seed, format="csr", dtype=np.float32)
    matrix.data[:] = 1.0
    return matrix


def test_cosine_neighbours_are_the_hand_computed_cosines_without_the_item_itself():
    s = item_knn(X, KNNParams(neighbours=4, weighting="cosine")).toarray()
    # items as user vectors: 0 = {u0, u1}, 1 = {u0, u1, u2}, 2 = {u1, u2}, 3 = {u2, u3}
    cos01, cos02, cos12, cos13, cos23 = 2 / np.sqrt(6), 1 / 2, 2 / np.sqrt(6), 1 / np.sqrt(6), 1 / 2
    expected = np.array([[0, cos01, cos02, 0, 0],
                         [cos01, 0, cos12, cos13, 0],
                         [cos02, cos12, 0, cos23, 0],
                         [0, cos13, cos23, 0, 0],
                         [0, 0, 0, 0, 0]])
    np.testing.assert_allclose(s, expected, rtol=1e-6)
    # one neighbour each: the most similar other item (ties: either)
    one = item_knn(X, KNNParams(neighbours=1)).toarray()
    assert (np.count_nonzero(one, axis=1) == [1, 1, 1, 1, 0]).all()
    assert one[0, 1] == pytest.approx(cos01) and one[3, 2] == pytest.approx(cos23)
    # shrinkage divides by |x_i||x_j| + shrinkage
    shrunk = item_knn(X, KNNParams(neighbours=4, shrinkage=1.0)).toarray()
    assert shrunk[0, 1] == pytest.approx(2 / (np.sqrt(6) + 1.0))


def test_bm25_weights_the_item_user_matrix_as_implicit_does():
    params = KNNParams(weighting="bm25", bm25_k1=1.2, bm25_b=0.75)
    w = item_vectors(binary_history(X), params).toarray()
    n_items = 5
    item_users = np.array([2, 3, 2, 2, 0])
    user_items = np.array([2, 3, 3, 1])
    length_norm = 0.25 + 0.75 * item_users / item_users.mean()
    idf = np.log(n_items) - np.log1p(user_items)
    expected = (X.toarray() > 0) * 2.2 / (1.2 * length_norm[None, :] + 1.0) * idf[:, None]
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    s = item_knn(X, KNNParams(neighbours=4, weighting="bm25")).toarray()
    direct = expected.T @ expected
    np.fill_diagonal(direct, 0.0)
    np.testing.assert_allclose(s, np.where(direct > 0, direct, 0.0), rtol=1e-6)


def test_knn_refuses_bad_hyper_parameters():
    for bad in (KNNParams(neighbours=0), KNNParams(weighting="jaccard"), KNNParams(shrinkage=-1.0),
                KNNParams(weighting="bm25", bm25_b=1.5)):
        with pytest.raises(ModelFitError, match="item-kNN needs"):
            item_knn(X, bad)


def test_ease_is_the_ridge_regression_of_each_item_on_the_others():
    history = _random_history(60, 12, 0.3, seed=3)
    l2 = 4.0
    b = fit_ease(history, l2, max_memory_mb=64)
    x = history.toarray().astype(np.float64)
    assert b.dtype == np.float32 and b.shape == (12, 12)
    for j in range(12):
        others = [i for i in range(12) if i != j]
        a = x[:, others]
        # argmin |x_j - A b|^2 + l2 |b|^2, solved directly
        direct = np.linalg.solve(a.T @ a + l2 * np.eye(11), a.T @ x[:, j])
        np.testing.assert_allclose(b[others, j], direct, rtol=1e-4, atol=1e-6)
        assert b[j, j] == 0.0
    # and the closed form of Steck (2019) with numpy's inverse
    p = np.linalg.inv(x.T @ x + l2 * np.eye(12))
    closed = np.eye(12) - p / np.diag(p)[None, :]
    np.fill_diagonal(closed, 0.0)
    np.testing.assert_allclose(b, closed, rtol=1e-4, atol=1e-6)
    with pytest.raises(ModelFitError, match="lambda > 0"):
        fit_ease(history, 0.0, max_memory_mb=64)


def test_ease_refuses_a_catalogue_whose_gram_matrix_does_not_fit_the_memory_setting():
    n_items = 20_000
    needed = n_items ** 2 * 8 * WORKING_COPIES
    with pytest.raises(ConfigurationError) as refused:
        check_memory(n_items, 4096)
    message = str(refused.value)
    assert "20,000 items" in message and f"{needed:,} bytes" in message
    assert "RECSYS_EASE_MAX_MEMORY_MB=4096" in message and "room for 16,384 items" in message
    check_memory(16_384, 4096)  # exactly fits
    # refused before anything is allocated, from the item count alone
    huge = sp.csr_matrix((3, n_items), dtype=np.float32)
    with pytest.raises(ConfigurationError, match="EASE refuses 20,000 items"):
        fit_ease(huge, 100.0, max_memory_mb=4096)


def test_the_refusals_estimate_bounds_what_the_solve_really_allocates():
    history = _random_history(2000, 1200, 0.02, seed=5)
    tracemalloc.start()
    try:
        fit_ease(history, 50.0, max_memory_mb=1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 1200 ** 2 * 8 <= peak <= required_bytes(1200), (peak, required_bytes(1200))


def test_item_item_top_k_excludes_seen_and_unavailable_items_and_fills_from_popularity():
    history = binary_history(X)
    s = item_knn(X, KNNParams(neighbours=4))
    brute = (history @ s).toarray()
    top = top_k_item_item(s, history, X, k=5)
    for user in range(4):
        items = top.item_index[top.user_index == user]
        assert not set(items) & set(X[user].indices)  # never a seen item
        reached = [i for i in np.argsort(-brute[user], kind="stable")
                   if brute[user, i] > 0 and i not in X[user].indices]
        assert list(items) == reached  # without a fill, only the items her neighbours reach
    # user 3 has item 3 only: its neighbours 1 and 2 first, then the fill's order of the rest
    fill = np.array([0.9, 0.1, 0.2, 0.3, 0.5])
    filled = top_k_item_item(s, history, X, k=4, users=np.array([3]), fill=fill)
    assert filled.item_index.tolist() == [2, 1, 0, 4]
    assert filled.score[2:].tolist() == [0.0, 0.0] and (filled.score[:2] > 0).all()
    # an unavailable item never comes out, and a dense matrix scores the same lists as its sparse self
    without = top_k_item_item(s.toarray(), history, X, k=4, users=np.array([3]), exclude_items=np.array([2]))
    assert without.item_index.tolist()[0] == 1 and 2 not in without.item_index


def test_item_item_top_k_matches_a_brute_force_ranking_in_small_batches():
    history = _random_history(50, 700, 0.02, seed=8)  # 700 items: the two-stage block top-K
    weights = fit_ease(history, 10.0, max_memory_mb=64)
    top = top_k_item_item(weights, history, history, k=5, batch_users=7)
    scores = (history @ weights).astype(np.float64)
    scores[history.toarray() > 0] = -np.inf
    for user in range(50):
        ours = top.score[top.user_index == user]
        np.testing.assert_allclose(ours, np.sort(scores[user])[::-1][:5], rtol=1e-5, atol=1e-6)


def test_the_artifact_round_trips_checks_its_checksum_and_aligns_to_new_ids(tmp_path: Path):
    s = item_knn(X, KNNParams(neighbours=2))
    ids = np.array([10, 20, 30, 40, 50])
    sparse = ItemItemModel(s, np.arange(4), ids, {"model": "itemknn"})
    npz, digest = sparse.save(tmp_path / "knn")
    loaded = load_model(npz, expected_sha256=digest)
    assert isinstance(loaded, ItemItemModel) and sp.issparse(loaded.similarity)
    assert (loaded.similarity != s).nnz == 0 and loaded.meta["model"] == "itemknn"
    with pytest.raises(ModelFitError, match="checksum mismatch"):
        load_model(npz, expected_sha256="0" * 64)
    dense = ItemItemModel(s.toarray(), np.arange(4), ids)
    npz, digest = dense.save(tmp_path / "ease")
    assert isinstance(load_model(npz, digest).similarity, np.ndarray)
    # tonight: item 20 is gone, 60 is new
    tonight = np.array([10, 30, 40, 50, 60])
    for model in (sparse, dense):
        aligned, known = model.aligned(tonight)
        aligned = aligned.toarray() if sp.issparse(aligned) else aligned
        assert known.tolist() == [True, True, True, True, False]
        np.testing.assert_array_equal(aligned[:4, :4], s.toarray()[np.ix_([0, 2, 3, 4], [0, 2, 3, 4])])
        assert not aligned[4].any() and not aligned[:, 4].any()
    with pytest.raises(ModelFitError, match="NaN"):
        ItemItemModel(np.full((2, 2), np.nan, np.float32), np.arange(1), np.arange(2)).save(tmp_path / "bad")


@pytest.mark.filterwarnings("ignore:Method expects CSR input")  # implicit's own normalise hands itself a COO
@pytest.mark.parametrize("weighting", ["cosine", "bm25"])
def test_neighbours_agree_with_implicit_on_movielens_100k(movielens_100k, weighting):
    implicit_nn = pytest.importorskip("implicit.nearest_neighbours")
    raw = np.loadtxt(movielens_100k, dtype=np.int64)
    users, items = np.unique(raw[:, 0], return_inverse=True)[1], np.unique(raw[:, 1], return_inverse=True)[1]
    matrix = sp.csr_matrix((np.ones(len(raw), np.float32), (users, items)))
    k = 50
    ours = item_knn(matrix, KNNParams(neighbours=k, weighting=weighting))
    # implicit keeps the item itself among its K: ask it for K + 1 and drop the item
    reference = (implicit_nn.CosineRecommender(K=k + 1, num_threads=1) if weighting == "cosine" else
                 implicit_nn.BM25Recommender(K=k + 1, K1=1.2, B=0.75, num_threads=1))
    reference.fit(matrix, show_progress=False)
    theirs = reference.similarity.tocsr()
    n_items = matrix.shape[1]
    same = total = 0
    for item in range(n_items):
        row = theirs[item]
        keep = row.indices != item
        values = np.sort(row.data[keep])[::-1][:k]
        mine = np.sort(ours[item].data)[::-1]
        # the same K similarities (which of several tied items is kept may differ)
        np.testing.assert_allclose(mine, values[:len(mine)], rtol=1e-4)
        assert len(mine) == len(values[values > 0])
        neighbours = set(row.indices[keep][np.argsort(-row.data[keep], kind="stable")][:k])
        same += len(neighbours & set(ours[item].indices))
        total += len(mine)
    assert same / total > 0.97, same / total  # the others tie with the K-th similarity (cosine: 0.976 measured)
    # and so do the top-10 lists of every user, seen items excluded
    top = top_k_item_item(ours, matrix, matrix, k=10)
    their_lists, _ = reference.recommend(np.arange(matrix.shape[0]), matrix, N=10)
    overlap = np.mean([len(set(top.item_index[top.user_index == user]) & set(their_lists[user])) / 10
                       for user in range(matrix.shape[0])])
    assert overlap > 0.99, overlap  # 0.9994 (cosine) and 1.0 (bm25) measured
