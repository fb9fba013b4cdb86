"""Loading a saved model of any kind: a `FactorModel` (MF, the popularity baselines, RL's
serving projection; a `HybridModel` is one with a content map) or an `ItemItemModel` (item-kNN, EASE), told apart by the arrays in
its model.npz. The score stage and the evaluation of the live model read models through it."""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from recsys.models.factors import FactorModel
from recsys.models.hybrid import HybridModel
from recsys.models.item_item.model import ItemItemModel

SavedModel = Union[FactorModel, ItemItemModel]


def load_model(npz: Path, expected_sha256: str | None = None) -> SavedModel:
    """The model saved in `npz`; a checksum that does not match raises ModelFitError."""
    with np.load(npz) as data:
        factors, hybrid = "user_factors" in data.files, "content_map" in data.files
    cls = HybridModel if hybrid else FactorModel if factors else ItemItemModel
    return cls.load(Path(npz), expected_sha256=expected_sha256)
