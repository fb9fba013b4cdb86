"""Ranking and beyond-accuracy metrics on a temporal hold-out.

Conventions:

* Relevance is binary: a positive event in the hold-out for an item the user
  had no positive event for before it. Users with no relevant item, or with no
  history to recommend from, are not evaluated; figures are means over the
  evaluated users.
* recall@K = hits / relevant; precision@K = hits / K (K even when a list is
  shorter); NDCG@K uses 1/log2(rank + 1) discounts and an ideal DCG over
  min(K, relevant) items; AP@K = sum over hit ranks r of precision@r, divided
  by min(K, relevant) (MAP@K is its mean); hit rate = share of users with at
  least one hit. Lists come ranked, so ties are already broken by the ranker.
* Beyond accuracy, over all recommended slots of the evaluated users:
  coverage = distinct recommended items / catalogue size; mean popularity =
  mean share of training users who interacted with a recommended item;
  novelty = mean self-information -log2(share) of a recommended item (share
  floored at 1/n_users), divided by log2(n_users) so that it lies in [0, 1];
  Gini of exposure = Gini index of how often each catalogue item is
  recommended (0 = every item equally often, towards 1 = a few items take
  every slot); intra-list diversity = mean over users of the mean pairwise
  cosine distance of the item factors in their list, halved to lie in [0, 1]
  ((1 - cos) / 2: 0 = same direction, 0.5 = orthogonal, 1 = opposite; needs
  item factors and lists of two or more).

Propensity-weighted recall and NDCG (Yang et al., RecSys 2018, "Unbiased offline
recommender evaluation for missing-not-at-random implicit feedback"): a held-out positive
of item i weighs 1 / p_i, p_i = (n_i / max n)^gamma the chance it was observed, n_i the
item's users in the window; per user, normalised by the weights of her relevant items
(the self-normalised estimator): pw_recall@K = sum of hit weights / sum of relevant
weights; pw_ndcg@K = sum of hit weights / log2(rank + 1), over the ideal DCG that puts
her min(K, relevant) heaviest relevant items first. gamma 0 gives recall and NDCG.

The split is chronological: the hold-out is the last day of the window, or
each user's last N positive events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import scipy.sparse as sp

from recsys.dataset import WindowDataset
from recsys.models.topk import TopK


@dataclass(frozen=True)
class Split:
    """A chronological split: `train` (n_users, n_items) counts before the test part,
    `relevant` (n_users, n_items) 0/1 new positives in it, `users` the evaluated rows,
    `train_mask` (n_events,) the dataset's events that make `train` (for models that
    read event times, such as the trending baseline)."""

    train: sp.csr_matrix
    relevant: sp.csr_matrix
    users: np.ndarray
    train_mask: np.ndarray | None = None


HOLDOUTS = ("last_day", "user_last_day", "last_n")


def temporal_split(dataset: WindowDataset, positive_types: tuple[str, ...], end: datetime, last_n: int = 0,
                   offset: int = 0, holdout: str = "last_day", strengths: np.ndarray | None = None) -> Split:
    """Split the window's positive events chronologically.

    Args:
        dataset: the window.
        positive_types: event types that count as positive.
        end: end of the window (exclusive).
        last_n: N > 0 = the test part is each user's N most recent positive events
            (whatever `holdout` says).
        offset: 0 = the last day (or last N events); 1 = the day (or N events) before
            that, with everything after it dropped: the validation split of the
            hyper-parameter search, which never sees the hold-out.
        holdout: 'last_day' = the window's last day (the same day for everyone: what the
            champion/challenger gate needs); 'user_last_day' = each user's own last
            active UTC day (every user with two active days is tested, so the figure
            is steadier); 'last_n' = each user's last `last_n` events.
        strengths: (n_events,) what each event adds to `train` (`WindowDataset.strengths`, the
            MF confidence); None: counts. `relevant` is 0/1 either way.
    """
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout must be one of {HOLDOUTS}, got {holdout!r}")
    positive = dataset.positive_mask(positive_types)
    if last_n <= 0 and holdout == "user_last_day":
        day_rank = _day_recency_rank(dataset.user_index, dataset.ts, positive)
        train_mask = positive & (day_rank > offset)
        test_mask = positive & (day_rank == offset)
    elif last_n <= 0:
        test_end = (end - timedelta(days=offset)).timestamp()
        test_start = (end - timedelta(days=offset + 1)).timestamp()
        train_mask = positive & (dataset.ts < test_start)
        test_mask = positive & (dataset.ts >= test_start) & (dataset.ts < test_end)
    else:
        recency = _recency_rank(dataset.user_index, dataset.ts, positive)
        train_mask = positive & (recency >= (offset + 1) * last_n)
        test_mask = positive & (recency >= offset * last_n) & (recency < (offset + 1) * last_n)
    train = dataset.user_item_matrix(train_mask, strengths)
    later = dataset.user_item_matrix(test_mask)
    relevant = later - later.multiply(train > 0)  # only items new to the user count
    relevant.eliminate_zeros()
    relevant.data[:] = 1.0
    relevant = relevant.tocsr()
    users = np.flatnonzero((np.diff(train.indptr) > 0) & (np.diff(relevant.indptr) > 0))
    return Split(train, relevant, users, train_mask)


def _day_recency_rank(user_index: np.ndarray, ts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per event, how many of its user's active UTC days (on the mask) are more recent than
    its own day (0 = the user's last day); -1 off the mask."""
    idx = np.flatnonzero(mask)
    day = np.floor_divide(ts[idx], 86_400).astype(np.int64)
    order = np.lexsort((-day, user_index[idx]))  # by user, newest day first
    users, days = user_index[idx][order], day[order]
    new_user = np.r_[True, users[1:] != users[:-1]]
    distinct_day = np.cumsum(new_user | np.r_[True, days[1:] != days[:-1]]) - 1
    starts = np.flatnonzero(new_user)
    first_day_of_user = np.repeat(distinct_day[starts], np.diff(np.r_[starts, len(order)]))
    out = np.full(len(ts), -1, dtype=np.int64)
    out[idx[order]] = distinct_day - first_day_of_user
    return out


def _recency_rank(user_index: np.ndarray, ts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per event, how many of its user's masked events are more recent (0 = the latest); -1 off the mask."""
    idx = np.flatnonzero(mask)
    order = idx[np.lexsort((-ts[idx], user_index[idx]))]  # by user, newest first
    users = user_index[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ranks = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    out = np.full(len(ts), -1, dtype=np.int64)
    out[order] = ranks
    return out


def hits_matrix(top: TopK, relevant: sp.csr_matrix, n_rows: int, k: int) -> np.ndarray:
    """(n_rows, k) 0/1 array: whether the item at each rank is relevant for that user."""
    hits = np.zeros((n_rows, k), dtype=np.float64)
    rel = relevant.tocsr()
    is_hit = np.asarray(rel[top.user_index, top.item_index]).ravel() > 0
    hits[top.user_index[is_hit], top.rank[is_hit].astype(np.int64) - 1] = 1.0
    return hits


def recall_per_user(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """(n_users,) hits in the top K / number of relevant items."""
    return hits.sum(axis=1) / n_relevant


def precision_per_user(hits: np.ndarray) -> np.ndarray:
    """(n_users,) hits in the top K / K."""
    return hits.sum(axis=1) / hits.shape[1]


def ndcg_per_user(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """(n_users,) DCG@K / ideal DCG@K with binary gains."""
    k = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discounts
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return dcg / ideal


def map_per_user(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """(n_users,) sum_r precision@r * hit_r / min(K, relevant)."""
    k = hits.shape[1]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return (precision_at * hits).sum(axis=1) / np.minimum(n_relevant, k)


def hit_per_user(hits: np.ndarray) -> np.ndarray:
    """(n_users,) 1.0 where the top K holds at least one relevant item, else 0.0."""
    return (hits.sum(axis=1) > 0).astype(np.float64)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> float:
    """Mean over users of hits in the top K / number of relevant items."""
    return float(np.mean(recall_per_user(hits, n_relevant)))


def precision_at_k(hits: np.ndarray) -> float:
    """Mean over users of hits in the top K / K."""
    return float(np.mean(precision_per_user(hits)))


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> float:
    """Mean over users of DCG@K / ideal DCG@K with binary gains."""
    return float(np.mean(ndcg_per_user(hits, n_relevant)))


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> float:
    """Mean over users of sum_r precision@r * hit_r / min(K, relevant)."""
    return float(np.mean(map_per_user(hits, n_relevant)))


def hit_rate_at_k(hits: np.ndarray) -> float:
    """Share of users with at least one relevant item in the top K."""
    return float(np.mean(hit_per_user(hits)))


def gini(counts: np.ndarray) -> float:
    """Gini index of non-negative `counts` (0 = all equal; (n-1)/n = one holds everything)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    return float(((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * total))


def intra_list_diversity(top: TopK, item_factors: np.ndarray) -> float:
    """Mean over users (lists of >= 2 items) of the mean pairwise (1 - cos) / 2 of their items' factors."""
    norms = np.linalg.norm(item_factors, axis=1, keepdims=True)
    unit = item_factors / np.where(norms > 0, norms, 1.0)
    order = np.lexsort((top.rank, top.user_index))
    users, items = top.user_index[order], top.item_index[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.empty(0, np.int64)
    lengths = np.diff(np.r_[starts, len(users)])
    values = []
    for length in np.unique(lengths):
        if length < 2:
            continue
        rows = starts[lengths == length]
        lists = unit[items[rows[:, None] + np.arange(length)]]  # (n_lists, length, f)
        sims = np.einsum("lif,ljf->lij", lists, lists)
        pair_sum = (sims.sum(axis=(1, 2)) - np.trace(sims, axis1=1, axis2=2)) / (length * (length - 1))
        values.append((1.0 - pair_sum) / 2.0)
    return float(np.concatenate(values).mean()) if values else 0.0


def accuracy_per_user(top: TopK, relevant: sp.csr_matrix, users: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Each accuracy metric (ACCURACY_METRICS) per user of `users`, in that order: (len(users),) arrays
    whose means are `ranking_metrics`' figures. The gate's paired comparison reads these."""
    hits, n_relevant, _ = _hits_of(top, relevant, users, k)
    return _accuracy(hits, n_relevant)


ACCURACY_METRICS = ("recall", "precision", "ndcg", "map", "hit_rate")


def _accuracy(hits: np.ndarray, n_relevant: np.ndarray) -> dict[str, np.ndarray]:
    return {"recall": recall_per_user(hits, n_relevant), "precision": precision_per_user(hits),
            "ndcg": ndcg_per_user(hits, n_relevant), "map": map_per_user(hits, n_relevant),
            "hit_rate": hit_per_user(hits)}


def _hits_of(top: TopK, relevant: sp.csr_matrix, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, TopK]:
    """The (len(users), k) hits of `top` restricted to `users`, their relevant counts, and `top`
    re-indexed to positions in `users`."""
    position = np.full(relevant.shape[0], -1, dtype=np.int64)
    position[users] = np.arange(len(users))
    keep = position[top.user_index] >= 0
    local = TopK(position[top.user_index[keep]], top.item_index[keep], top.rank[keep], top.score[keep])
    sub = relevant[users]
    return hits_matrix(local, sub, len(users), k), np.diff(sub.indptr), local


def ranking_metrics(top: TopK, relevant: sp.csr_matrix, users: np.ndarray, k: int,
                    train: sp.csr_matrix | None = None, item_factors: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy metrics of `top` restricted to `users` (rows of `relevant`), and, given the
    training matrix (for popularity) and item factors, the beyond-accuracy ones.

    `top.user_index` must index rows of `relevant`; only rows in `users` count.
    """
    hits, n_relevant, local = _hits_of(top, relevant, users, k)
    figures = {name: float(np.mean(values)) for name, values in _accuracy(hits, n_relevant).items()}
    n_items = relevant.shape[1]
    exposure = np.bincount(local.item_index, minlength=n_items)
    figures["coverage"] = float((exposure > 0).sum() / n_items)
    figures["gini"] = gini(exposure)
    if train is not None:
        n_train_users = max(int((np.diff(train.tocsr().indptr) > 0).sum()), 1)
        share = np.bincount(train.tocoo().col, minlength=n_items) / n_train_users  # users per item (deduplicated)
        recommended = share[local.item_index]
        figures["mean_popularity"] = float(recommended.mean()) if len(recommended) else 0.0
        information = -np.log2(np.maximum(recommended, 1.0 / n_train_users))
        figures["novelty"] = float(information.mean() / max(np.log2(n_train_users), 1.0)) if len(recommended) else 0.0
    if item_factors is not None:
        figures["diversity"] = intra_list_diversity(local, item_factors)
    return figures


def per_user_ranking(top: TopK, relevant: sp.csr_matrix, users: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Each evaluated user's recall@K and NDCG@K (`accuracy_per_user`'s), for intervals over users:
    {"recall": (n,), "ndcg": (n,)} in the order of `users`; their means are `ranking_metrics`'."""
    figures = accuracy_per_user(top, relevant, users, k)
    return {"recall": figures["recall"], "ndcg": figures["ndcg"]}


def item_propensities(users_per_item: np.ndarray, gamma: float) -> np.ndarray:
    """(n_items,) p_i = (n_i / max n)^gamma, n_i floored at 1 (Yang et al. 2018's popularity propensity).

    Raises:
        ValueError: a negative or non-finite gamma.
    """
    if not (np.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"the propensity gamma must be a finite number >= 0, got {gamma!r}")
    counts = np.maximum(np.asarray(users_per_item, dtype=np.float64), 1.0)
    return (counts / counts.max(initial=1.0)) ** gamma


def propensity_weighted_per_user(top: TopK, relevant: sp.csr_matrix, users: np.ndarray, k: int,
                                 propensity: np.ndarray) -> dict[str, np.ndarray]:
    """{"pw_recall": (n,), "pw_ndcg": (n,)} per user of `users` (see the module's conventions).

    Args:
        propensity: (n_items,) p_i in (0, 1] (`item_propensities`).
    """
    hits, n_relevant, local = _hits_of(top, relevant, users, k)
    weight = 1.0 / np.asarray(propensity, dtype=np.float64)
    items_at = np.zeros((len(users), k), dtype=np.int64)
    inside = local.rank <= k
    items_at[local.user_index[inside], local.rank[inside].astype(np.int64) - 1] = local.item_index[inside]
    hit_weight = np.where(hits, weight[items_at], 0.0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    sub = relevant[users].tocsr()
    row = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    w = weight[sub.indices]
    order = np.lexsort((-w, row))  # each user's relevant items, heaviest first
    position = np.arange(len(order)) - sub.indptr[row[order]]
    top_k = position < k
    ideal = np.bincount(row[order][top_k], weights=w[order][top_k] * discounts[position[top_k]],
                        minlength=len(users))
    total = np.bincount(row, weights=w, minlength=len(users))
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(total > 0, hit_weight.sum(axis=1) / total, 0.0)
        ndcg = np.where(ideal > 0, (hit_weight * discounts).sum(axis=1) / ideal, 0.0)
    return {"pw_recall": recall, "pw_ndcg": ndcg}
