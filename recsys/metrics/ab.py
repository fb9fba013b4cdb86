"""The A/B read-out of two serving models from `model_retention` (MF vs RL).

For one N and a range of serve days, each arm pools its mature per-model cells:
n = users served (a user served on k days of the range counts k times),
k = of them, users active again on day serve_day + N. The read-out gives each
arm's rate with its Wilson 95% interval, the difference with Newcombe's hybrid
score interval, and a pooled two-proportion z-test (two-sided), all computed by
`sql/queries/ab/model_retention_compare.sql` with the SQL functions of migration
0002 (`wilson_interval`, `two_proportion_z_test`).

Pooling serve days treats (user, day) pairs as independent; with per-user
assignment a returning user adds correlated pairs, so read p-values of long
ranges as optimistic, or compare one serve day at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from recsys.config import Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.errors import DataValidationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArmRetention:
    """One model's pooled N-day retention; rate and interval are None when n = 0."""

    model_version: str
    users_served: int
    retained_users: int
    serve_days: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class ModelComparison:
    """Model A against model B: diff = rate_a - rate_b, its 95% interval, z and p."""

    day_n: int
    first_day: date
    last_day: date
    a: ArmRetention
    b: ArmRetention
    diff: float | None
    diff_ci_low: float | None
    diff_ci_high: float | None
    z: float | None
    p_value: float | None


def compare_models(
    settings: Settings, model_a: str, model_b: str, day_n: int, first_day: date, last_day: date
) -> ModelComparison:
    """Compare the N-day retention of two model versions over serve days first_day .. last_day.

    Only mature cells count, so serve days later than (newest refreshed day - N)
    contribute nothing yet.

    Args:
        settings: database and schema.
        model_a, model_b: model versions as recorded on impressions.
        day_n: the N (one of the refreshed `retention_days`).
        first_day, last_day: serve days included, both ends.

    Returns:
        Both arms and the test; arms with no mature cell have n = 0 and None statistics.

    Raises:
        DataValidationError: the models are the same, N < 0, or the range is empty.
        SchemaMissingError: `model_retention` does not exist (run `recsys db upgrade`).
    """
    if model_a == model_b:
        raise DataValidationError("model_retention", "model_version", f"compare two models, got {model_a!r} twice")
    if day_n < 0:
        raise DataValidationError("model_retention", "day_n", f"need N >= 0, got {day_n}")
    if last_day < first_day:
        raise DataValidationError("model_retention", "serve_day", f"empty range {first_day} .. {last_day}")
    params = {"model_a": model_a, "model_b": model_b, "day_n": day_n,
              "first_day": first_day, "last_day": last_day}
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "model_retention")
        cur.execute(load_sql("ab/model_retention_compare"), params)
        (n_a, k_a, rate_a, lo_a, hi_a, days_a, n_b, k_b, rate_b, lo_b, hi_b, days_b,
         diff, diff_lo, diff_hi, z, p_value) = cur.fetchone()
    result = ModelComparison(
        day_n=day_n, first_day=first_day, last_day=last_day,
        a=ArmRetention(model_a, n_a, k_a, days_a, rate_a, lo_a, hi_a),
        b=ArmRetention(model_b, n_b, k_b, days_b, rate_b, lo_b, hi_b),
        diff=diff, diff_ci_low=diff_lo, diff_ci_high=diff_hi, z=z, p_value=p_value,
    )
    logger.info("D%d retention %s vs %s over %s..%s: %s/%s vs %s/%s, diff %s, p %s",
                day_n, model_a, model_b, first_day, last_day, k_a, n_a, k_b, n_b, diff, p_value)
    return result
