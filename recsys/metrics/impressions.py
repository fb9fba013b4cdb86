"""Per-impression metrics of shown-and-clicked slates: AUC, MRR and nDCG@K as MIND reports them.

An impression is the set of items shown together (MIND's impression line; a session's
slate in recsys), each clicked or not. The model's scores rank the shown items of each
impression, and the metrics of MIND (Wu et al., "MIND: A Large-scale Dataset for News
Recommendation", ACL 2020) are computed per impression, then averaged over impressions:

* AUC: the share of (clicked, not clicked) pairs of the impression whose clicked item
  ranks higher (the Mann-Whitney U over clicks x non-clicks);
* MRR: the sum over clicked items of 1 / rank, divided by the number of clicks;
* nDCG@K: DCG@K with binary gains and 1/log2(rank + 1) discounts, divided by the ideal
  DCG@K (min(K, clicks) clicks at the top).

Conventions:

* Ties: tied items are ordered uniformly at random, and each metric is its exact
  expectation over that order (not a sample): a tied pair counts 1/2 to AUC, a clicked
  item tied over ranks a..b contributes the mean of 1/r over them to MRR, and each rank
  of a tie group holding c clicks among m items gains c/m. A model that scores every
  shown item alike gets AUC 0.5 and the MRR and nDCG of a random order. Scores may be
  -inf (an item the model does not know, ranked below every item it knows).
* An impression without a click or without a non-click has no AUC; such impressions
  are left out of every metric, so all of them are averaged over the same impressions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImpressionMetrics:
    """Per-impression figures, one entry per evaluated impression (sorted by impression id).

    Attributes:
        impressions: (n,) the evaluated impression ids.
        auc, mrr: (n,) each impression's AUC and MRR.
        ndcg: K -> (n,) each impression's nDCG@K.
        skipped: impressions left out (all clicked, or none clicked).
    """

    impressions: np.ndarray
    auc: np.ndarray
    mrr: np.ndarray
    ndcg: dict[int, np.ndarray]
    skipped: int

    def means(self) -> dict[str, float]:
        """The averages over impressions: {"auc", "mrr", "ndcg@K", ...} (NaN with no impression)."""
        def mean(values: np.ndarray) -> float:
            return float(values.mean()) if len(values) else float("nan")

        return {"auc": mean(self.auc), "mrr": mean(self.mrr),
                **{f"ndcg@{k}": mean(values) for k, values in self.ndcg.items()}}


def impression_metrics(impression: np.ndarray, clicked: np.ndarray, score: np.ndarray,
                       ks: tuple[int, ...] = (5, 10)) -> ImpressionMetrics:
    """AUC, MRR and nDCG@K of every impression (see the module's conventions).

    Args:
        impression: (n_slots,) the impression id of each shown item (integers).
        clicked: (n_slots,) whether it was clicked.
        score: (n_slots,) the model's score of the item for the impression's user; -inf allowed.
        ks: the cut-offs of nDCG.

    Raises:
        ValueError: arrays of different lengths, a NaN score, or a cut-off below 1.
    """
    impression = np.asarray(impression)
    clicked = np.asarray(clicked, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    if not len(impression) == len(clicked) == len(score):
        raise ValueError(f"impression, clicked and score must have one entry per slot, got lengths "
                         f"{len(impression)}, {len(clicked)}, {len(score)}")
    if np.isnan(score).any():
        raise ValueError(f"{int(np.isnan(score).sum())} NaN scores: give an unknown item -inf, not NaN")
    if any(k < 1 for k in ks):
        raise ValueError(f"nDCG cut-offs must be >= 1, got {ks}")
    ids, codes = np.unique(impression, return_inverse=True)
    order = np.lexsort((-score, codes))  # by impression, best score first
    codes, score, clicked = codes[order], score[order], clicked[order].astype(np.float64)
    n_slots = np.bincount(codes, minlength=len(ids))
    n_clicks = np.bincount(codes, weights=clicked, minlength=len(ids))
    starts = np.r_[0, np.cumsum(n_slots)[:-1]]
    position = np.arange(len(codes)) - starts[codes] + 1  # 1-based rank in its impression
    new_group = np.r_[True, (codes[1:] != codes[:-1]) | (score[1:] != score[:-1])]  # -inf == -inf: one tie
    group = np.cumsum(new_group) - 1
    first = position[new_group].astype(np.float64)            # a: the group's first rank
    size = np.bincount(group).astype(np.float64)              # m
    last = first + size - 1                                   # b
    clicks = np.bincount(group, weights=clicked)              # c
    owner = codes[new_group]

    # AUC: clicked items' mid-ranks from the bottom, U = sum of them - C (C + 1) / 2
    rank_from_bottom = n_slots[owner] + 1 - (first + last) / 2
    u = np.bincount(owner, weights=clicks * rank_from_bottom, minlength=len(ids)) - n_clicks * (n_clicks + 1) / 2
    n_negative = n_slots - n_clicks
    valid = (n_clicks > 0) & (n_negative > 0)

    longest = int(n_slots.max(initial=0))
    harmonic = np.r_[0.0, np.cumsum(1.0 / np.arange(1, longest + 1))]  # H(j)
    mean_reciprocal = (harmonic[last.astype(np.int64)] - harmonic[first.astype(np.int64) - 1]) / size
    reciprocal = np.bincount(owner, weights=clicks * mean_reciprocal, minlength=len(ids))

    ndcg = {}
    for k in ks:
        discounts = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(2, max(longest, k) + 2)))]  # D(j), D(0) = 0
        gained = discounts[np.minimum(last, k).astype(np.int64)] - discounts[np.minimum(first - 1, k).astype(np.int64)]
        dcg = np.bincount(owner, weights=clicks / size * gained, minlength=len(ids))
        ideal = discounts[np.minimum(n_clicks, k).astype(np.int64)]
        ndcg[k] = dcg[valid] / ideal[valid]
    return ImpressionMetrics(ids[valid], u[valid] / (n_clicks[valid] * n_negative[valid]),
                             reciprocal[valid] / n_clicks[valid], ndcg, int((~valid).sum()))
