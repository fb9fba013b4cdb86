"""The hybrid model: MF positions for items from their text, and a content profile per user.

Two parts, both from an item's content vector c_i (`recsys.models.content`, unit norm):

* A content -> factor map (in the spirit of Gantner et al., "Learning attribute-to-feature
  mappings for cold-start recommendations", ICDM 2010): ridge regression from c_i to the
  ALS item factors v_i of the items that have both,
      W = argmin_W ||C W - V||^2 + lambda ||W||^2 = (C^T C + lambda I)^-1 C^T V   (d, f),
  so an item nobody has touched yet gets v_i = c_i W, a position in the MF space.
* A content profile of each user, p_u = sum over her positive events e of
  0.5^(age_e / half_life) c_{i(e)}, normalised: a recency-weighted centroid of what she clicked.

The score is s_ui = u_u . v_i + w * p_u . c_i. Both terms are one dot product of
x_u = [u_u, w p_u] (f + d) and y_i = [v_i, c_i] (f + d), so the saved model is a
`FactorModel` (`HybridModel`) that the score stage, the evaluation and the champion
comparison read like any factor model, plus what embedding a new item needs later:
`content_map` W and the encoder version (meta). `cold_item_factors(W, C)` gives y_i of
items embedded after training (the hourly job of issue #19), to score against the
saved user factors x_u. Items without text have c_i = 0 (warm: v_i alone; cold: no score).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.artifacts import save_npz_atomic
from recsys.errors import ModelFitError
from recsys.models.factors import FactorModel, sha256_file


def ridge_map(content: np.ndarray, factors: np.ndarray, l2: float) -> np.ndarray:
    """(d, f) W minimising ||content W - factors||^2 + l2 ||W||^2; zeros without a row to fit.

    Args:
        content: (n, d) content vectors of items that have MF factors.
        factors: (n, f) their MF item factors.
    """
    d, f = content.shape[1], factors.shape[1]
    if content.shape[0] == 0:
        return np.zeros((d, f), np.float32)
    c = content.astype(np.float64)
    gram = c.T @ c + l2 * np.eye(d)
    return np.linalg.solve(gram, c.T @ factors.astype(np.float64)).astype(np.float32)


def content_profiles(user_index: np.ndarray, item_index: np.ndarray, ts: np.ndarray, n_users: int,
                     vectors: np.ndarray, half_life_days: float) -> np.ndarray:
    """(n_users, d) unit-norm recency-weighted centroids of the content of each user's events.

    Args:
        user_index, item_index, ts: (n_events,) the positive events (ts in epoch seconds).
        vectors: (n_items, d) content vectors (zero rows: no text, adds nothing).
        half_life_days: an event this much older than the user's newest weighs half as much.
    """
    profiles = np.zeros((n_users, vectors.shape[1]), np.float64)
    if len(user_index):
        newest = np.full(n_users, -np.inf)
        np.maximum.at(newest, user_index, ts)
        weight = np.power(0.5, (newest[user_index] - ts) / (half_life_days * 86_400.0))
        np.add.at(profiles, user_index, weight[:, None] * vectors[item_index])
    norms = np.linalg.norm(profiles, axis=1, keepdims=True)
    return np.divide(profiles, norms, out=np.zeros_like(profiles), where=norms > 0).astype(np.float32)


def hybrid_factors(user_mf: np.ndarray, item_mf: np.ndarray, warm: np.ndarray, vectors: np.ndarray,
                   content_map: np.ndarray, profiles: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): user factors [u_u, w p_u] (n_users, f + d) and item factors [v_i, c_i] (n_items, f + d),
    where a cold item (`warm` False: no interaction in the fit) takes v_i = c_i W."""
    item_part = np.where(warm[:, None], item_mf, vectors @ content_map).astype(np.float32)
    users = np.hstack([user_mf, weight * profiles]).astype(np.float32)
    return users, np.hstack([item_part, vectors]).astype(np.float32)


def cold_item_factors(content_map: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(n, f + d) item factors of items embedded after training: [c W, c], to score against the
    saved user factors (a dot product, as the score stage does)."""
    vectors = np.asarray(vectors, np.float32)
    return np.hstack([vectors @ content_map, vectors]).astype(np.float32)


@dataclass
class HybridModel(FactorModel):
    """A `FactorModel` of (f + d) columns plus the content map.

    Attributes:
        content_map: (d, f) W; meta holds `encoder_version`, `profile_weight` and `mf_factors` (f).
        item_ids: the window's items and the catalogue's items with a vector published by the as-of
            time (sorted): the model ranks items that no event of the window touched.
    """

    content_map: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def check_finite(self) -> None:
        super().check_finite()
        if not np.isfinite(self.content_map).all():
            raise ModelFitError("content_map holds NaN/inf values")

    def save(self, directory: Path) -> tuple[Path, str]:
        self.check_finite()
        directory.mkdir(parents=True, exist_ok=True)
        npz = directory / "model.npz"
        save_npz_atomic(npz, user_factors=self.user_factors, item_factors=self.item_factors,
                        user_ids=self.user_ids, item_ids=self.item_ids, content_map=self.content_map)
        digest = sha256_file(npz)
        (directory / "model.json").write_text(json.dumps({**self.meta, "sha256": digest}, indent=2, default=str))
        return npz, digest

    @classmethod
    def load(cls, npz: Path, expected_sha256: str | None = None) -> "HybridModel":
        if expected_sha256 is not None and sha256_file(npz) != expected_sha256:
            raise ModelFitError(f"checksum mismatch for {npz}: the artifact changed after training")
        meta_path = npz.with_suffix(".json")
        meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        with np.load(npz) as data:
            return cls(data["user_factors"], data["item_factors"], data["user_ids"], data["item_ids"], meta,
                       data["content_map"])
