"""Matrix-factorisation model files: factors, id maps and lineage, with a checksum.

A saved model is `model.npz` (user and item factors plus the database ids of
their rows) and `model.json` (config, data interval, code version, sha256 of
the npz). `load` refuses a file whose checksum does not match.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.artifacts import save_npz_atomic

from recsys.errors import ModelFitError


@dataclass
class FactorModel:
    """Factors of users and items.

    Attributes:
        user_factors: (n_users, n_factors) float32.
        item_factors: (n_items, n_factors) float32.
        user_ids, item_ids: database ids of the rows above (sorted).
        meta: JSON-serialisable lineage (config, interval, code version).
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def check_finite(self) -> None:
        """Raise ModelFitError when any factor is NaN or infinite (never save such a model)."""
        for name in ("user_factors", "item_factors"):
            array = getattr(self, name)
            if not np.isfinite(array).all():
                raise ModelFitError(f"{name} holds {int((~np.isfinite(array)).sum())} NaN/inf values")

    def save(self, directory: Path) -> tuple[Path, str]:
        """Write model.npz and model.json; returns (npz path, sha256)."""
        self.check_finite()
        directory.mkdir(parents=True, exist_ok=True)
        npz = directory / "model.npz"
        save_npz_atomic(npz, user_factors=self.user_factors, item_factors=self.item_factors,
                        user_ids=self.user_ids, item_ids=self.item_ids)
        digest = sha256_file(npz)
        (directory / "model.json").write_text(json.dumps({**self.meta, "sha256": digest}, indent=2, default=str))
        return npz, digest

    @classmethod
    def load(cls, npz: Path, expected_sha256: str | None = None) -> "FactorModel":
        if expected_sha256 is not None and sha256_file(npz) != expected_sha256:
            raise ModelFitError(f"checksum mismatch for {npz}: the artifact changed after training")
        meta_path = npz.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        with np.load(npz) as data:
            return cls(data["user_factors"], data["item_factors"], data["user_ids"], data["item_ids"], meta)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
