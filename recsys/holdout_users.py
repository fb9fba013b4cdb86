"""Per-user hold-out figures: the artifact the evaluate stage writes and the gate reads.

`eval_metrics` keeps one mean per (version, subject, metric). The gate's paired
comparison needs each user's value for the challenger (subject `model`) and the live
model (`champion`) on the same users, and its baseline floor the baselines' figures
(`popularity`, `trending`) beside them. They go to `holdout_users.npz` in the version's
model folder, `<artifact_dir>/<as-of date>/<model>/`, next to `model.npz`: a re-run
of the night's evaluate replaces it (written atomically), the gate of a re-run reads
the same file, and the artifact retention deletes it with the model's other files.

Layout: `model_version` and `k` (0-d), `user_ids` (n_users,) the dataset's user ids of
the hold-out users, and one (n_users,) float64 array per subject and metric, named
`<subject>/<metric>` (recsys.metrics.ranking.ACCURACY_METRICS), all in the order of
`user_ids`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.artifacts import save_npz_atomic
from recsys.errors import DataValidationError

FILE_NAME = "holdout_users.npz"
# the baselines the evaluate stage scores beside every model on its hold-out users (their
# eval_metrics subjects); with the night's models of kind "baseline", the gate's floor
BASELINE_SUBJECTS = ("popularity", "trending")


@dataclass(frozen=True)
class HoldoutUsers:
    """Every subject's per-user hold-out metrics of one version.

    Attributes:
        model_version: the version whose evaluation scored them.
        k: the cut-off of the metrics.
        user_ids: (n_users,) the hold-out users.
        values: subject -> metric -> (n_users,) values, in the order of `user_ids`.
    """

    model_version: str
    k: int
    user_ids: np.ndarray
    values: Mapping[str, Mapping[str, np.ndarray]]

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def subjects(self) -> list[str]:
        return list(self.values)

    def get(self, subject: str, metric: str) -> np.ndarray | None:
        """(n_users,) values of `subject` on `metric`; None when that subject was not scored."""
        return self.values.get(subject, {}).get(metric)


def path_for(artifact_path: str | Path) -> Path:
    """Where the per-user figures of the version whose model file is `artifact_path` go."""
    return Path(artifact_path).parent / FILE_NAME


def save(path: Path, holdout: HoldoutUsers) -> Path:
    """Write `holdout` to `path` atomically.

    Raises:
        ValueError: a subject's array is not of length n_users, or a name holds '/'.
    """
    arrays: dict[str, np.ndarray] = {}
    for subject, metrics in holdout.values.items():
        for metric, values in metrics.items():
            if "/" in subject or "/" in metric:
                raise ValueError(f"holdout users: names must not hold '/': {subject!r}, {metric!r}")
            if len(values) != holdout.n_users:
                raise ValueError(f"holdout users: {subject}/{metric} has {len(values)} values for "
                                 f"{holdout.n_users} users")
            arrays[f"{subject}/{metric}"] = np.asarray(values, np.float64)
    return save_npz_atomic(path, model_version=np.array(holdout.model_version), k=np.array(holdout.k),
                           user_ids=np.asarray(holdout.user_ids, np.int64), **arrays)


def load(path: Path, model_version: str, k: int) -> HoldoutUsers | None:
    """The per-user figures at `path`; None when there is no file (a version evaluated before
    they were kept, or one with no hold-out user).

    Raises:
        DataValidationError: the file belongs to another version or another K.
    """
    path = Path(path)
    if not path.exists():
        return None
    with np.load(path) as data:
        stored_version, stored_k = str(data["model_version"]), int(data["k"])
        if stored_version != model_version or stored_k != k:
            raise DataValidationError(str(path), "model_version", f"holds {stored_version} at k={stored_k}, not "
                                      f"{model_version} at k={k}: re-run that version's evaluate step")
        values: dict[str, dict[str, np.ndarray]] = {}
        for name in data.files:
            if "/" in name:
                subject, _, metric = name.partition("/")
                values.setdefault(subject, {})[metric] = data[name]
        return HoldoutUsers(stored_version, stored_k, data["user_ids"], values)
