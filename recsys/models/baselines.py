"""What a team gets for free: the window's most popular items, and the most popular with
recent events weighing more ("trending"). Every learned model is compared with them.

Both are one score per item, the same for every user, so they are served as factor
models with one column: user factors all 1, item factors the item's score. Seen items
are excluded at scoring time as for any model.

* popularity: the number of positive events of the item in the window;
* trending: sum over the item's positive events of 2^(-age / half_life), age measured
  from the newest event of the window, so an event `half_life_days` older counts half.
  (The reference time only scales every score alike: the ranking does not depend on it.)
"""

from __future__ import annotations

import numpy as np

SECONDS_PER_DAY = 86_400.0


def popularity_scores(item_index: np.ndarray, n_items: int) -> np.ndarray:
    """(n_items,) count of the given positive events per item."""
    return np.bincount(item_index, minlength=n_items).astype(np.float64)


def trending_scores(item_index: np.ndarray, ts: np.ndarray, n_items: int, half_life_days: float) -> np.ndarray:
    """(n_items,) recency-weighted count: each event weighs 2^(-(t_max - t) / half_life).

    Raises:
        ValueError: a half-life that is not a positive number of days.
    """
    if not half_life_days > 0:  # NaN fails too
        raise ValueError(f"the trending half-life must be > 0 days, got {half_life_days!r}")
    if len(ts) == 0:
        return np.zeros(n_items)
    age_days = (float(np.max(ts)) - np.asarray(ts, dtype=np.float64)) / SECONDS_PER_DAY
    return np.bincount(item_index, weights=np.exp2(-age_days / half_life_days), minlength=n_items)


def as_factors(scores: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_users, 1) ones and (n_items, 1) scores scaled to [0, 1]: dot products are the scores."""
    top = float(scores.max()) if scores.size and scores.max() > 0 else 1.0
    return np.ones((n_users, 1), np.float32), (scores / top)[:, None].astype(np.float32)


METHODS = ("popularity", "trending")


def baseline_scores(method: str, item_index: np.ndarray, ts: np.ndarray, n_items: int,
                    half_life_days: float) -> np.ndarray:
    """(n_items,) the score of each item by `method` over the given positive events."""
    if method == "popularity":
        return popularity_scores(item_index, n_items)
    if method == "trending":
        return trending_scores(item_index, ts, n_items, half_life_days)
    raise ValueError(f"unknown baseline method {method!r}; expected one of {METHODS}")
