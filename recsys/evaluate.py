"""Ranking metrics on a temporal hold-out, for a model and a popularity baseline.

Conventions: relevance is binary (a positive event on the hold-out day for an
item the user had not interacted with positively before); recall@K divides the
hits by the number of relevant items; NDCG@K uses log2(rank + 1) discounts and
an ideal DCG over min(K, relevant) items. Users with no relevant item are not
evaluated. Metrics are averaged over evaluated users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.score import TopK


def hits_matrix(top: TopK, relevant: sp.csr_matrix, n_rows: int, k: int) -> np.ndarray:
    """(n_rows, k) 0/1 array: whether the item at each rank is relevant for that user."""
    hits = np.zeros((n_rows, k), dtype=np.float64)
    rel = relevant.tocsr()
    is_hit = np.asarray(rel[top.user_index, top.item_index]).ravel() > 0
    hits[top.user_index[is_hit], top.rank[is_hit].astype(np.int64) - 1] = 1.0
    return hits


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> float:
    """Mean over users of hits in the top K / number of relevant items."""
    return float(np.mean(hits.sum(axis=1) / n_relevant))


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> float:
    """Mean over users of DCG@K / ideal DCG@K with binary gains."""
    k = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discounts
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return float(np.mean(dcg / ideal))


def ranking_metrics(top: TopK, relevant: sp.csr_matrix, users: np.ndarray, k: int) -> dict[str, float]:
    """recall@K and NDCG@K of `top` restricted to `users` (rows of `relevant`).

    `top.user_index` must index rows of `relevant`; only rows in `users` count.
    """
    position = np.full(relevant.shape[0], -1, dtype=np.int64)
    position[users] = np.arange(len(users))
    keep = position[top.user_index] >= 0
    local = TopK(position[top.user_index[keep]], top.item_index[keep], top.rank[keep], top.score[keep])
    sub = relevant[users]
    hits = hits_matrix(local, sub, len(users), k)
    n_relevant = np.diff(sub.indptr)
    return {"recall": recall_at_k(hits, n_relevant), "ndcg": ndcg_at_k(hits, n_relevant)}
