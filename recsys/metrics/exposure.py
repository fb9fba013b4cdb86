"""How a model's published lists spread exposure over the catalogue.

A policy that gives nearly everyone the same few items (an RL policy collapsed onto
the most clicked articles) shows as few distinct items and a Gini of exposure near 1;
the gate blocks such lists for the RL models (recsys.stages.gate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Exposure:
    """Exposure of one set of lists over a catalogue of `n_items`.

    Attributes:
        users: lists (users with at least one item).
        distinct_items: items in at least one list.
        coverage: distinct_items / n_items.
        gini: Gini coefficient of the per-item list counts over the whole catalogue (items in
            no list count 0): 0 when every item is listed equally often, near 1 when a few
            items take every slot.
        top_item_share: share of lists that hold the most listed item.
    """

    users: int
    distinct_items: int
    coverage: float
    gini: float
    top_item_share: float


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: equal; (n-1)/n: all on one); 0 for no counts."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), float(x.sum())
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(2.0 * (ranks * x).sum() / (n * total) - (n + 1.0) / n)


def exposure(user_ids: np.ndarray, item_ids: np.ndarray, n_items: int) -> Exposure:
    """Exposure of lists given as one (user, item) entry per slot, over a catalogue of `n_items`
    items (at least the items listed: an item listed was exposed, whatever the catalogue says)."""
    users = int(len(np.unique(user_ids)))
    listed, counts = np.unique(item_ids, return_counts=True)
    n_items = max(int(n_items), len(listed))
    all_counts = np.zeros(n_items, dtype=np.int64)
    all_counts[: len(counts)] = counts  # the zeros of the unlisted items, in any order: Gini sorts
    top = int(counts.max()) if len(counts) else 0
    return Exposure(users=users, distinct_items=int(len(listed)), coverage=len(listed) / n_items if n_items else 0.0,
                    gini=gini(all_counts), top_item_share=top / users if users else 0.0)
