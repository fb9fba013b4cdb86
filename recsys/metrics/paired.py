"""A paired bootstrap of the mean difference between two models on the same users.

Both models are scored on one hold-out, so user u gives a pair (a_u, b_u) of the same
metric. The difference d_u = a_u - b_u keeps what the users share (a hard user is hard
for both), so its mean is known far better than either mean alone when the models
serve similar lists. The interval is a percentile bootstrap over users: each of
`n_samples` replicates draws n users with replacement (`rng.integers(0, n, n)`, one
call per replicate, from `numpy.random.default_rng(seed)`), and the bounds are the
(1 - level)/2 and (1 + level)/2 percentiles (numpy's default linear interpolation) of
the replicates' means. The same seed and values give the same interval on every run.

Conventions: no users give NaN everywhere (never 0, so "no data" does not read as
"no difference"); `n_samples` = 0 gives an interval of the mean itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedDifference:
    """Mean of a - b over `n_users` users, with its bootstrap interval at `level`."""

    mean: float
    low: float
    high: float
    n_users: int
    level: float
    n_samples: int


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_samples: int, seed: int,
                     level: float = 0.95) -> PairedDifference:
    """The mean of `a - b` and its percentile bootstrap interval over users.

    Args:
        a: (n_users,) the first model's per-user metric (the challenger).
        b: (n_users,) the second model's on the same users, in the same order (the champion).
        n_samples: bootstrap replicates (0: the interval is the mean).
        seed: seed of the resampling.
        level: coverage of the interval, in (0, 1).

    Raises:
        ValueError: `a` and `b` differ in shape, or `level` is not in (0, 1).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_bootstrap: a and b must be 1-d of one length, got {a.shape} and {b.shape}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"paired_bootstrap: level must be in (0, 1), got {level!r}")
    n = a.size
    if n == 0:
        return PairedDifference(float("nan"), float("nan"), float("nan"), 0, level, n_samples)
    diff = a - b
    mean = float(diff.mean())
    if n_samples <= 0:
        return PairedDifference(mean, mean, mean, n, level, 0)
    rng = np.random.default_rng(seed)
    # one replicate at a time: memory stays O(n) whatever n_samples is
    means = np.fromiter((diff[rng.integers(0, n, n)].mean() for _ in range(n_samples)), np.float64, n_samples)
    low, high = np.percentile(means, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return PairedDifference(mean, float(low), float(high), n, level, n_samples)
