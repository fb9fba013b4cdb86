"""Warm start: carry the previous model's factors over to tonight's id maps.

Users and items are rows by their position in tonight's sorted id arrays;
the previous model saved its own id arrays next to its factors. A row whose
database id the previous model knew starts from its old factors; a new user or
item gets an all-NaN row, which the fit replaces with fresh random factors
(`recsys.models.mf.common.start_factors`).
"""

from __future__ import annotations

import numpy as np

from recsys.models.factors import FactorModel


def align_factors(previous_ids: np.ndarray, previous_factors: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Rows of `previous_factors` re-indexed to `ids`; returns ((len(ids), f) with NaN rows for unknown ids, known count).

    Args:
        previous_ids: (n_prev,) sorted database ids of the previous model's rows.
        previous_factors: (n_prev, f).
        ids: (n,) sorted database ids of tonight's rows.
    """
    out = np.full((len(ids), previous_factors.shape[1]), np.nan, dtype=np.float32)
    if len(previous_ids) == 0:
        return out, 0
    pos = np.minimum(np.searchsorted(previous_ids, ids), len(previous_ids) - 1)
    known = previous_ids[pos] == ids
    out[known] = previous_factors[pos[known]]
    return out, int(known.sum())


def warm_start_factors(previous: FactorModel, user_ids: np.ndarray, item_ids: np.ndarray,
                       n_columns: int) -> tuple[tuple[np.ndarray, np.ndarray], dict[str, int]] | None:
    """Initial (user, item) factors from `previous`, or None when its factor count differs.

    `n_columns` is the factor columns tonight's model will have (BPR: factors + 1).
    """
    if previous.user_factors.shape[1] != n_columns:
        return None
    users, known_users = align_factors(previous.user_ids, previous.user_factors, user_ids)
    items, known_items = align_factors(previous.item_ids, previous.item_factors, item_ids)
    return (users, items), {"known_users": known_users, "new_users": len(user_ids) - known_users,
                            "known_items": known_items, "new_items": len(item_ids) - known_items}
