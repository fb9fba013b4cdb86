"""Scores of arbitrary (user, item) pairs, as each kind of model ranks items in its lists.

The per-impression metrics (`recsys.metrics.impressions`) rank the items shown together
by the model's score, so a model must score the shown items, not only its own top K:

* factor models (MF, the popularity baselines, RL's serving projection): u_user . v_item;
* item-item models (item-kNN, EASE): x_u S at the item, x_u the user's binary history.
  With a sparse S, an item none of the user's items reaches scores as the served lists
  order it (`recsys.stages.train_item_item.item_item_top`'s fill): below every reached
  item, in popularity order, at popularity / (max + 1) - 1 in [-1, 0).

Pairs are given as index arrays into the model's own rows; `recsys.models.saved.pair_scores`
aligns a saved model to tonight's ids first.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.models.item_item.model import binary_history


def factor_pair_scores(user_factors: np.ndarray, item_factors: np.ndarray, users: np.ndarray,
                       items: np.ndarray) -> np.ndarray:
    """(n,) float64 u[users[j]] . v[items[j]]; user_factors (n_users, f), item_factors (n_items, f)."""
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    if len(users) != len(items):
        raise ValueError(f"users and items must pair up, got lengths {len(users)} and {len(items)}")
    return np.einsum("nf,nf->n", np.asarray(user_factors[users], np.float64),
                     np.asarray(item_factors[items], np.float64))


def item_item_pair_scores(similarity: sp.spmatrix | np.ndarray, seen: sp.csr_matrix, users: np.ndarray,
                          items: np.ndarray) -> np.ndarray:
    """(n,) float64 (x_u S)[items[j]] for u = users[j], x_u the binary history of `seen`'s row.

    Args:
        similarity: (n_items, n_items) S, sparse (item-kNN) or dense (EASE).
        seen: (n_users, n_items) the users' positive events (repeats count once in x_u; the
            column sums are the popularity of the sparse fill).
        users, items: (n,) row and column indices.
    """
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    if len(users) != len(items):
        raise ValueError(f"users and items must pair up, got lengths {len(users)} and {len(items)}")
    if not len(users):
        return np.zeros(0)
    unique, inverse = np.unique(users, return_inverse=True)
    product = binary_history(seen)[unique] @ similarity
    if not sp.issparse(similarity):
        return np.asarray(product, dtype=np.float64)[inverse.reshape(-1), items]
    reached = sp.csr_matrix(product)
    popularity = np.asarray(seen.sum(axis=0), dtype=np.float64).ravel()
    out = popularity[items] / (popularity.max(initial=0.0) + 1.0) - 1.0
    # the stored entries of the product overwrite the fill, as in the served lists (a stored 0 too)
    n_items = reached.shape[1]
    rows = np.repeat(np.arange(reached.shape[0], dtype=np.int64), np.diff(reached.indptr))
    stored_keys = rows * n_items + reached.indices.astype(np.int64)
    order = np.argsort(stored_keys, kind="stable")
    stored_keys, values = stored_keys[order], reached.data[order]
    wanted = inverse.reshape(-1).astype(np.int64) * n_items + items
    pos = np.minimum(np.searchsorted(stored_keys, wanted), max(len(stored_keys) - 1, 0))
    hit = (stored_keys[pos] == wanted) if len(stored_keys) else np.zeros(len(wanted), bool)
    out[hit] = values[pos[hit]]
    return out
