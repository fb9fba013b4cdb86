"""Item-item nearest neighbours (Sarwar et al., WWW 2001; Deshpande & Karypis, TOIS 2004),
weighted as `implicit`'s CosineRecommender and BM25Recommender.

Item i is a vector over users, column i of the binary history X (`binary_history`),
optionally BM25-weighted. The similarity of items i != j is

* cosine: s_ij = x_i . x_j / (|x_i| |x_j| + shrinkage)  (shrinkage 0: the cosine; a
  shrinkage > 0 pulls the similarity of items with few users towards 0);
* bm25: s_ij = w_i . w_j with w_ui = x_ui (K1 + 1) / (K1 L_i + x_ui) idf_u, where
  L_i = (1 - B) + B n_i / mean_j(n_j) normalises item i's length (n_i: its users) and
  idf_u = log(n_items) - log(1 + n_u) (n_u: the user's items), as `implicit.nearest_neighbours.bm25_weight`
  weighs the item-user matrix (Robertson & Zaragoza 2009). No normalisation after it.

Row i of S keeps the `neighbours` largest s_ij > 0 with j != i: an item is never its own
neighbour (`implicit` keeps the item itself among its K, so its K is our K + 1 when the
item is its own nearest, as under cosine). A user's score of item j is (x_u S)_j: the
similarities of j to the items she has, over the items that count j among their neighbours.

S is computed `block` items at a time, so memory is block x n_items floats, and S holds
at most n_items x neighbours entries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.errors import ModelFitError
from recsys.models.item_item.model import binary_history

logger = logging.getLogger(__name__)

WEIGHTINGS = ("cosine", "bm25")
BLOCK_SCORES = 4 << 20  # similarities of one block: 4M float64 (32 MiB)


@dataclass(frozen=True)
class KNNParams:
    """Hyper-parameters of one item-kNN fit (what the nightly search picks and the model file records)."""

    neighbours: int = 100
    weighting: str = "cosine"
    shrinkage: float = 0.0  # cosine only
    bm25_k1: float = 1.2
    bm25_b: float = 0.75


def item_knn(user_items: sp.spmatrix, params: KNNParams) -> sp.csr_matrix:
    """The (n_items, n_items) float32 CSR of each item's `neighbours` nearest items (see the module doc).

    Raises:
        ModelFitError: an unknown weighting, neighbours < 1, a negative shrinkage or K1, B outside [0, 1].
    """
    if params.weighting not in WEIGHTINGS or params.neighbours < 1 or params.shrinkage < 0 \
            or params.bm25_k1 < 0 or not 0 <= params.bm25_b <= 1:
        raise ModelFitError(f"item-kNN needs a weighting in {WEIGHTINGS}, neighbours >= 1, shrinkage >= 0, "
                            f"K1 >= 0 and 0 <= B <= 1: {params}")
    started = time.perf_counter()
    weighted = item_vectors(binary_history(user_items), params)  # (n_users, n_items)
    n_items = weighted.shape[1]
    by_item = weighted.T.tocsr()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=0)).ravel())
    keep = min(params.neighbours, max(n_items - 1, 0))
    block = max(1, BLOCK_SCORES // max(n_items, 1))
    rows, cols, values = [], [], []
    for lo in range(0, n_items, block):
        hi = min(lo + block, n_items)
        dots = np.asarray((by_item[lo:hi] @ weighted).todense(), dtype=np.float64)  # (hi - lo, n_items)
        if params.weighting == "cosine":
            denominator = norms[lo:hi, None] * norms[None, :] + params.shrinkage
            np.divide(dots, denominator, out=dots, where=denominator > 0)
        dots[np.arange(hi - lo), np.arange(lo, hi)] = 0.0  # never its own neighbour
        if keep == 0:
            continue
        top = np.argpartition(-dots, keep - 1, axis=1)[:, :keep]
        best = np.take_along_axis(dots, top, axis=1)
        positive = best > 0
        rows.append(np.broadcast_to(np.arange(lo, hi)[:, None], top.shape)[positive])
        cols.append(top[positive])
        values.append(best[positive])
    rows, cols, values = (np.concatenate(parts) if parts else np.empty(0) for parts in (rows, cols, values))
    similarity = sp.csr_matrix((values.astype(np.float32), (rows.astype(np.int64), cols.astype(np.int64))),
                               shape=(n_items, n_items))
    similarity.sort_indices()
    logger.info("item-kNN (%s, %d neighbours) of %d items: %d entries in %.2fs", params.weighting, params.neighbours,
                n_items, similarity.nnz, time.perf_counter() - started)
    return similarity


def item_vectors(history: sp.csr_matrix, params: KNNParams) -> sp.csr_matrix:
    """(n_users, n_items) the history as the weighting sees it: as is (cosine) or BM25-weighted."""
    if params.weighting == "cosine":
        return history.astype(np.float64)
    coo = history.astype(np.float64).tocoo()
    n_users, n_items = history.shape
    idf = np.log(float(n_items)) - np.log1p(np.bincount(coo.row, minlength=n_users))
    item_length = np.bincount(coo.col, weights=coo.data, minlength=n_items)
    average = item_length.mean() if n_items else 1.0
    length_norm = (1.0 - params.bm25_b) + params.bm25_b * item_length / (average if average > 0 else 1.0)
    data = coo.data * (params.bm25_k1 + 1.0) / (params.bm25_k1 * length_norm[coo.col] + coo.data) * idf[coo.row]
    return sp.csr_matrix((data, (coo.row, coo.col)), shape=history.shape)
