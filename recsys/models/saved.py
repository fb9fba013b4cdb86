"""Loading a saved model of any kind: a `FactorModel` (MF, the popularity baselines, RL's
serving projection; a `HybridModel` is one with a content map) or an `ItemItemModel` (item-kNN,
EASE), told apart by the arrays in its model.npz. The score stage and the evaluation of the live
model read models through it; `pair_scores` scores any (user, item) pairs of tonight's ids with
either kind."""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import scipy.sparse as sp

from recsys.models.factors import FactorModel
from recsys.models.hybrid import HybridModel
from recsys.models.item_item.model import ItemItemModel
from recsys.models.mf.warm import align_factors
from recsys.models.pair_scores import factor_pair_scores, item_item_pair_scores

SavedModel = Union[FactorModel, ItemItemModel]


def load_model(npz: Path, expected_sha256: str | None = None) -> SavedModel:
    """The model saved in `npz`; a checksum that does not match raises ModelFitError."""
    with np.load(npz) as data:
        factors, hybrid = "user_factors" in data.files, "content_map" in data.files
    cls = HybridModel if hybrid else FactorModel if factors else ItemItemModel
    return cls.load(Path(npz), expected_sha256=expected_sha256)


def pair_scores(model: SavedModel, user_ids: np.ndarray, item_ids: np.ndarray, seen: sp.csr_matrix,
                users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(n,) a saved model's scores of (users[j], items[j]), indices into tonight's sorted `user_ids`
    and `item_ids`, as its lists rank them (recsys.models.pair_scores).

    Items the model never saw score -inf (below every item it knows). A user a factor model
    never saw scores 0 on every item (a tie); an item-item model scores every user from her
    history in `seen` ((len(user_ids), len(item_ids)), tonight's positive events).
    """
    if isinstance(model, ItemItemModel):
        similarity, known = model.aligned(item_ids)
        scores = item_item_pair_scores(similarity, seen, users, items)
    else:
        user_factors, _ = align_factors(model.user_ids, model.user_factors, user_ids)
        item_factors, _ = align_factors(model.item_ids, model.item_factors, item_ids)
        known = ~np.isnan(item_factors[:, 0]) if item_factors.shape[1] else np.zeros(len(item_ids), bool)
        scores = factor_pair_scores(np.nan_to_num(user_factors), np.nan_to_num(item_factors), users, items)
    scores[~known[np.asarray(items, np.int64)]] = -np.inf
    return scores
