"""Per-impression AUC, MRR and nDCG@K (MIND's metrics) on a hand-made impression set."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from recsys.metrics.impressions import impression_metrics

D = 1 / np.log2(np.arange(2, 12))  # discounts of ranks 1..10

# impression 7: four items, clicks on the 2nd and 4th best;
# impression 3: a tie at the top between a clicked and an unclicked item;
# impression 5: every item clicked (no AUC: left out);
# impression 9: two clicks, one item the model does not know (-inf), never clicked.
IMPRESSION = np.array([7, 7, 7, 7, 3, 3, 3, 5, 5, 9, 9, 9])
CLICKED = np.array([0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1])
SCORE = np.array([0.9, 0.8, 0.3, 0.1, 0.5, 0.5, 0.2, 0.4, 0.6, 2.0, -np.inf, 1.0])


def test_hand_computed_impressions():
    m = impression_metrics(IMPRESSION, CLICKED, SCORE, ks=(5, 1))
    assert m.impressions.tolist() == [3, 7, 9] and m.skipped == 1
    # 7: ranked n c n c; pairs (clicked, not): 0.8 beats 0.3 only -> 1 of 4
    # 3: the click ties 0.5 (1/2) and beats 0.2 (1)        -> 1.5 of 2
    # 9: both clicks above the unknown item                 -> 2 of 2
    assert m.auc == pytest.approx([0.75, 0.25, 1.0])
    # 3: rank 1 or 2 with equal chance; 7: ranks 2 and 4; 9: ranks 1 and 2
    assert m.mrr == pytest.approx([(1 + 1 / 2) / 2, (1 / 2 + 1 / 4) / 2, (1 + 1 / 2) / 2])
    assert m.ndcg[5] == pytest.approx([(D[0] + D[1]) / 2 / D[0], (D[1] + D[3]) / (D[0] + D[1]), 1.0])
    assert m.ndcg[1] == pytest.approx([0.5, 0.0, 1.0])  # 3: the click is first half the time
    assert m.means()["auc"] == pytest.approx((0.75 + 0.25 + 1.0) / 3)
    assert set(m.means()) == {"auc", "mrr", "ndcg@5", "ndcg@1"}


def test_limits_and_the_order_of_the_slots_does_not_matter():
    clicked = np.array([1, 0, 0, 1, 0])
    perfect = impression_metrics(np.zeros(5, int), clicked, clicked + 0.1 * np.arange(5))
    # MIND's MRR is the mean reciprocal rank of every click: 1 only with a single click
    assert (perfect.auc[0], perfect.mrr[0], perfect.ndcg[5][0]) == (1.0, 0.75, pytest.approx(1.0))
    worst = impression_metrics(np.zeros(5, int), clicked, -clicked.astype(float))
    assert worst.auc[0] == 0.0 and worst.mrr[0] == pytest.approx((1 / 4 + 1 / 5) / 2)
    flat = impression_metrics(np.zeros(5, int), clicked, np.full(5, -np.inf))  # knows none of them
    assert flat.auc[0] == 0.5 and flat.mrr[0] == pytest.approx(np.mean(1 / np.arange(1, 6)))
    assert flat.ndcg[5][0] == pytest.approx(2 / 5 * D[:5].sum() / D[:2].sum())
    shuffled = np.random.default_rng(0).permutation(len(IMPRESSION))
    a = impression_metrics(IMPRESSION, CLICKED, SCORE)
    b = impression_metrics(IMPRESSION[shuffled], CLICKED[shuffled], SCORE[shuffled])
    assert np.array_equal(a.impressions, b.impressions)
    for x, y in ((a.auc, b.auc), (a.mrr, b.mrr), (a.ndcg[10], b.ndcg[10])):
        assert x == pytest.approx(y)


def test_agrees_with_mind_scoring_and_sklearn_without_ties():
    """MIND's own scoring (its utils: argsort the scores, then mrr/ndcg) and sklearn's AUC."""
    rng = np.random.default_rng(1)
    impression = np.repeat(np.arange(40), rng.integers(3, 15, size=40))
    clicked = rng.random(len(impression)) < 0.3
    score = rng.normal(size=len(impression))
    m = impression_metrics(impression, clicked, score)
    for j, imp in enumerate(m.impressions):
        y, s = clicked[impression == imp].astype(float), score[impression == imp]
        ranked = y[np.argsort(s)[::-1]]
        assert m.auc[j] == pytest.approx(roc_auc_score(y, s))
        assert m.mrr[j] == pytest.approx((ranked / np.arange(1, len(y) + 1)).sum() / y.sum())
        for k in (5, 10):
            dcg = (ranked[:k] * D[:len(ranked[:k])]).sum()
            assert m.ndcg[k][j] == pytest.approx(dcg / D[:min(k, int(y.sum()))].sum())


def test_refuses_nan_scores_and_mismatched_lengths():
    with pytest.raises(ValueError, match="NaN"):
        impression_metrics(np.array([1, 1]), np.array([1, 0]), np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="one entry per slot"):
        impression_metrics(np.array([1, 1]), np.array([1]), np.array([0.0, 1.0]))
