"""Top-K lists for many users in batches, excluding items each user has seen.

Scores are computed one batch of users at a time (matrix product and
`torch.topk`); seen items are masked from the sparse seen-matrix rows of the
batch, so memory is bounded by batch x items, never users x items. The batch
is also capped so that one score block holds at most `MAX_BATCH_SCORES`
floats (64 MiB), whatever the catalogue size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

MAX_BATCH_SCORES = 16 << 20


@dataclass(frozen=True)
class TopK:
    """Flat top-K lists: row j is user `user_index[j]`'s item at `rank[j]` (1-based).

    Users with fewer than K unseen items get shorter lists.
    """

    user_index: np.ndarray
    item_index: np.ndarray
    rank: np.ndarray
    score: np.ndarray


def top_k_factors(user_factors: np.ndarray, item_factors: np.ndarray, seen: sp.csr_matrix,
                  k: int, batch_users: int = 2048, users: np.ndarray | None = None) -> TopK:
    """Top-K items by dot product for `users` (default: every row of `user_factors`).

    Args:
        user_factors: (n_users, f); item_factors: (n_items, f).
        seen: (n_users, n_items) CSR; stored entries are excluded.
        k: list length.
        batch_users: users scored per matrix product.
        users: (n,) row indices to score.
    """
    users = np.arange(user_factors.shape[0]) if users is None else np.asarray(users)
    item_t = torch.from_numpy(np.ascontiguousarray(item_factors, dtype=np.float32)).T.contiguous()
    k_eff = min(k, item_factors.shape[0])
    batch_users = max(1, min(batch_users, MAX_BATCH_SCORES // max(item_factors.shape[0], 1)))
    parts = []
    for lo in range(0, len(users), batch_users):
        batch = users[lo:lo + batch_users]
        scores = torch.from_numpy(np.ascontiguousarray(user_factors[batch], dtype=np.float32)) @ item_t
        _mask_seen(scores, seen, batch)
        parts.append(_top_of(scores, batch, k_eff))
    return _concat(parts)


def top_k_popular(popularity: np.ndarray, seen: sp.csr_matrix, k: int, users: np.ndarray,
                  batch_users: int = 2048) -> TopK:
    """Most popular unseen items for each of `users` (the cold-start fallback)."""
    popularity_t = torch.from_numpy(popularity.astype(np.float32))
    k_eff = min(k, popularity.shape[0])
    batch_users = max(1, min(batch_users, MAX_BATCH_SCORES // max(popularity.shape[0], 1)))
    parts = []
    for lo in range(0, len(users), batch_users):
        batch = np.asarray(users[lo:lo + batch_users])
        scores = popularity_t.expand(len(batch), -1).clone()
        _mask_seen(scores, seen, batch)
        parts.append(_top_of(scores, batch, k_eff))
    return _concat(parts)


def _mask_seen(scores: torch.Tensor, seen: sp.csr_matrix, batch: np.ndarray) -> None:
    rows = seen[batch]
    if rows.nnz:
        row_pos = np.repeat(np.arange(len(batch)), np.diff(rows.indptr))
        scores[torch.from_numpy(row_pos), torch.from_numpy(rows.indices.astype(np.int64))] = -torch.inf


def _top_of(scores: torch.Tensor, batch: np.ndarray, k: int) -> TopK:
    values, indices = torch.topk(scores, k, dim=1)
    values, indices = values.numpy(), indices.numpy()
    keep = np.isfinite(values)  # masked (seen) items come out as -inf
    ranks = np.broadcast_to(np.arange(1, k + 1, dtype=np.int16), values.shape)
    return TopK(np.broadcast_to(batch[:, None], values.shape)[keep], indices[keep], ranks[keep], values[keep])


def _concat(parts: list[TopK]) -> TopK:
    if not parts:
        return TopK(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int16), np.empty(0, np.float32))
    return TopK(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("user_index", "item_index", "rank", "score")))
