"""Top-K lists for many users in batches, excluding items each user has seen.

`top_k_factors` ranks by user x item dot products (factor models), `top_k_item_item` by
a user's history times an item-item matrix (item-kNN, EASE), `top_k_popular` by one
score for everyone; all three share the masking and the two-stage top-K below.

Scores are computed one batch of users at a time (matrix product and
`torch.topk`); seen items are masked from the sparse seen-matrix rows of the
batch, so memory is bounded by batch x items, never users x items. The batch
is also capped so that one score block holds at most `MAX_BATCH_SCORES`
floats (64 MiB), whatever the catalogue size.

Two things make it as fast as `implicit`'s batched `recommend` (bench/mf.py):

* One score buffer is allocated for the whole run and every batch's product
  is written into it. A fresh 64 MiB block per batch is served by `mmap`, so
  every batch paid a page fault per 4 KiB of scores: about 40% of the time
  of all users' top-10 at 100,000 users x 20,000 items.
* Large catalogues take an exact two-stage top-K (`_block_top_k`): the
  maximum of each block of `BLOCK` consecutive items, the K blocks with the
  largest maxima, then the top K of those blocks' items. A full `torch.topk`
  over 20,000 scores per user cost 2.5x as much.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

MAX_BATCH_SCORES = 16 << 20
BLOCK = 64  # items per block of the two-stage top-K: about sqrt(items / K) at 20,000 items and K = 10
MIN_BLOCKS_PER_K = 8  # below blocks >= 8 K the single-stage topk is as fast, and simpler


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
                  k: int, batch_users: int = 2048, users: np.ndarray | None = None,
                  exclude_items: np.ndarray | None = None) -> TopK:
    """Top-K items by dot product for `users` (default: every row of `user_factors`).

    Args:
        user_factors: (n_users, f); item_factors: (n_items, f).
        seen: (n_users, n_items) CSR; stored entries are excluded.
        k: list length.
        batch_users: users scored per matrix product.
        users: (n,) row indices to score.
        exclude_items: item indices no list may hold (unavailable in the catalogue).
    """
    users = np.arange(user_factors.shape[0]) if users is None else np.asarray(users)
    n_items = item_factors.shape[0]
    k_eff = min(k, n_items)
    blocked = n_items >= MIN_BLOCKS_PER_K * k_eff * BLOCK
    width = -(-n_items // BLOCK) * BLOCK if blocked else n_items  # padded to whole blocks
    item_t = torch.zeros((width, item_factors.shape[1]), dtype=torch.float32)
    item_t[:n_items] = torch.from_numpy(np.asarray(item_factors, dtype=np.float32))
    item_t = item_t.T.contiguous()
    user_t = torch.from_numpy(np.ascontiguousarray(user_factors, dtype=np.float32))
    batch_users = max(1, min(batch_users, len(users), MAX_BATCH_SCORES // max(width, 1)))
    buffer = torch.empty((batch_users, width), dtype=torch.float32)
    exclude = None if exclude_items is None or not len(exclude_items) else torch.from_numpy(
        np.asarray(exclude_items, dtype=np.int64))
    contiguous = len(users) > 0 and users[-1] - users[0] + 1 == len(users) and bool(np.all(np.diff(users) == 1))
    parts = []
    for lo in range(0, len(users), batch_users):
        batch = users[lo:lo + batch_users]
        scores = buffer[:len(batch)]
        if contiguous:  # a slice: no copy of the factor rows or of the seen rows
            first = int(batch[0])
            torch.mm(user_t[first:first + len(batch)], item_t, out=scores)
            seen_rows = seen[first:first + len(batch)]
        else:
            torch.mm(user_t[torch.from_numpy(batch)], item_t, out=scores)
            seen_rows = seen[batch]
        if width > n_items:
            scores[:, n_items:] = -torch.inf
        if exclude is not None:
            scores.index_fill_(1, exclude, -torch.inf)
        _mask_rows(scores, seen_rows)
        values, indices = _block_top_k(scores, k_eff) if blocked else torch.topk(scores, k_eff, dim=1)
        parts.append(_top_of(values, indices, batch))
    return _concat(parts)


def top_k_popular(popularity: np.ndarray, seen: sp.csr_matrix, k: int, users: np.ndarray,
                  batch_users: int = 2048, exclude_items: np.ndarray | None = None) -> TopK:
    """Most popular unseen items for each of `users` (the cold-start fallback), never one of `exclude_items`."""
    popularity_t = torch.from_numpy(popularity.astype(np.float32))
    if exclude_items is not None and len(exclude_items):
        popularity_t[torch.from_numpy(np.asarray(exclude_items, dtype=np.int64))] = -torch.inf
    k_eff = min(k, popularity.shape[0])
    batch_users = max(1, min(batch_users, MAX_BATCH_SCORES // max(popularity.shape[0], 1)))
    parts = []
    for lo in range(0, len(users), batch_users):
        batch = np.asarray(users[lo:lo + batch_users])
        scores = popularity_t.expand(len(batch), -1).clone()
        _mask_rows(scores, seen[batch])
        parts.append(_top_of(*torch.topk(scores, k_eff, dim=1), batch))
    return _concat(parts)


def top_k_item_item(similarity: sp.spmatrix | np.ndarray, history: sp.csr_matrix, seen: sp.csr_matrix, k: int,
                     batch_users: int = 2048, users: np.ndarray | None = None,
                     exclude_items: np.ndarray | None = None, fill: np.ndarray | None = None) -> TopK:
    """Top-K items by x_u S for `users` (default: every row of `history`), an item-item model's lists.

    Args:
        similarity: (n_items, n_items) S, a sparse matrix (item-kNN) or an ndarray (EASE).
        history: (n_users, n_items) CSR, x_u (`recsys.models.item_item.model.binary_history`).
        seen: (n_users, n_items) CSR; stored entries are excluded.
        k: list length.
        batch_users: users scored per product (capped so a score block holds MAX_BATCH_SCORES floats).
        users: (n,) row indices to score.
        exclude_items: item indices no list may hold (unavailable in the catalogue).
        fill: (n_items,) values in [0, 1), for a sparse S only: the order of the items none of
            the user's items has as a neighbour, which then come after every item her
            neighbours reach, with score 0 (None: such items are left out, and a list can be short).
    """
    users = np.arange(history.shape[0]) if users is None else np.asarray(users)
    n_items = similarity.shape[1]
    k_eff = min(k, n_items)
    dense = not sp.issparse(similarity)
    matrix = np.asarray(similarity, dtype=np.float32) if dense else sp.csr_matrix(similarity, dtype=np.float32)
    blocked = n_items >= MIN_BLOCKS_PER_K * k_eff * BLOCK
    width = -(-n_items // BLOCK) * BLOCK if blocked else n_items
    batch_users = max(1, min(batch_users, len(users), MAX_BATCH_SCORES // max(width, 1)))
    buffer = torch.full((batch_users, width), -torch.inf, dtype=torch.float32)  # the padding stays -inf
    exclude = None if exclude_items is None or not len(exclude_items) else torch.from_numpy(
        np.asarray(exclude_items, dtype=np.int64))
    unreached = None if dense or fill is None else torch.from_numpy(np.asarray(fill, dtype=np.float32) - 1.0)
    parts = []
    for lo in range(0, len(users), batch_users):
        batch = users[lo:lo + batch_users]
        scores = buffer[:len(batch)]
        product = history[batch] @ matrix
        if dense:
            scores[:, :n_items] = torch.from_numpy(np.ascontiguousarray(product, dtype=np.float32))
        else:
            product = sp.csr_matrix(product)
            scores[:, :n_items] = -torch.inf if unreached is None else unreached
            row_pos = np.repeat(np.arange(len(batch), dtype=np.int64) * scores.stride(0), np.diff(product.indptr))
            scores.view(-1)[torch.from_numpy(row_pos + product.indices)] = torch.from_numpy(product.data)
        if exclude is not None:
            scores.index_fill_(1, exclude, -torch.inf)
        _mask_rows(scores, seen[batch])
        values, indices = _block_top_k(scores, k_eff) if blocked else torch.topk(scores, k_eff, dim=1)
        if unreached is not None:  # the filled items' scores (fill - 1 < 0) are published as 0
            values = torch.where(torch.isfinite(values), values.clamp(min=0.0), values)
        parts.append(_top_of(values, indices, batch))
    return _concat(parts)


def _mask_rows(scores: torch.Tensor, rows: sp.csr_matrix) -> None:
    """Set the scores of the stored entries of `rows` (one per score row) to -inf."""
    if rows.nnz:
        row_pos = np.repeat(np.arange(rows.shape[0], dtype=np.int64) * scores.stride(0), np.diff(rows.indptr))
        flat = torch.from_numpy(row_pos + rows.indices)
        scores.view(-1).index_fill_(0, flat, -torch.inf)


def _block_top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`torch.topk(scores, k, dim=1)` in two stages; `scores.shape[1]` is a multiple of BLOCK.

    Exact: an item in a row's top K lies in a block whose maximum is at least
    its score, and fewer than K other blocks can have a larger maximum (each
    would hold an item above it), so its block is among the K largest maxima.
    """
    rows, width = scores.shape
    blocks = scores.view(rows, width // BLOCK, BLOCK)
    _, best_blocks = torch.topk(blocks.amax(dim=2), k, dim=1, sorted=False)
    candidates = torch.gather(blocks, 1, best_blocks[:, :, None].expand(rows, k, BLOCK)).view(rows, k * BLOCK)
    values, position = torch.topk(candidates, k, dim=1)
    items = torch.gather(best_blocks, 1, position // BLOCK) * BLOCK + position % BLOCK
    return values, items


def _top_of(values: torch.Tensor, indices: torch.Tensor, batch: np.ndarray) -> TopK:
    values, indices = values.numpy(), indices.numpy()
    keep = np.isfinite(values)  # masked (seen) items and padding come out as -inf
    ranks = np.broadcast_to(np.arange(1, values.shape[1] + 1, dtype=np.int16), values.shape)
    return TopK(np.broadcast_to(batch[:, None], values.shape)[keep], indices[keep], ranks[keep], values[keep])


def _concat(parts: list[TopK]) -> TopK:
    if not parts:
        return TopK(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int16), np.empty(0, np.float32))
    return TopK(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("user_index", "item_index", "rank", "score")))
