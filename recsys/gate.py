"""Champion/challenger gate: a new model goes live only if it is not worse.

The evaluate stage scores the challenger and the live model (the champion) on
the same hold-out users. The challenger passes when its metric is at least the
champion's minus `gate_tolerance`, when there is no live model yet, when it is
an older date's model that will only fill history (a newer date is live), or
when publishing is forced. Otherwise the run is recorded as `rejected` with
both figures and nothing is published; the live tables stay.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from psycopg2.extras import Json

from recsys.config import Settings
from recsys.db import load_sql, raw_connection, require_tables
from recsys.errors import RecsysError

logger = logging.getLogger(__name__)


class PublishRejected(RecsysError):
    """The gate kept the live model: the challenger is worse beyond the tolerance."""


@dataclass(frozen=True)
class GateDecision:
    accepted: bool
    reason: str
    metric: str
    challenger: float | None
    champion: float | None
    champion_version: str | None


def decide(settings: Settings, version: str, force: bool = False) -> GateDecision:
    """Compare `version` with the live model and record the decision in model_runs.metrics.

    Raises:
        PublishRejected: the challenger is worse than the champion by more than the tolerance
            (the run is marked `rejected` first).
    """
    metric = f"{settings.gate_metric}@{settings.k}"
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "model_runs", "eval_metrics", "live_models")
        cur.execute(load_sql("gate_inputs"), {"model_version": version, "metric": settings.gate_metric, "k": settings.k})
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"model_runs has no model_version {version!r}")
        _, run_date, live_version, live_date, challenger, champion = row
        decision = GateDecision(True, "", metric, challenger, champion, live_version)
        if force:
            decision = _with(decision, "forced by the run's force_publish parameter")
        elif live_version is None:
            decision = _with(decision, "no live model yet")
        elif live_version == version:
            decision = _with(decision, "re-run of the live version")
        elif live_date > run_date:
            decision = _with(decision, f"history only: {live_version} (a newer date) stays live")
        elif challenger is None or champion is None:
            decision = _with(decision, f"no {metric} on a common hold-out to compare: publishing the fresher model")
        elif challenger >= champion - settings.gate_tolerance:
            decision = _with(decision, f"{metric} {challenger:.4f} vs live {champion:.4f} "
                                       f"(tolerance {settings.gate_tolerance})")
        else:
            decision = GateDecision(False, f"{metric} {challenger:.4f} is worse than live {live_version}'s "
                                           f"{champion:.4f} by more than {settings.gate_tolerance}",
                                    metric, challenger, champion, live_version)
        cur.execute("UPDATE model_runs SET metrics = metrics || jsonb_build_object('gate', %s::jsonb),"
                    " status = CASE WHEN %s THEN status ELSE 'rejected' END WHERE model_version = %s",
                    (Json(asdict(decision)), decision.accepted, version))
    logger.info("gate for %s: %s (%s)", version, "accepted" if decision.accepted else "REJECTED", decision.reason)
    if not decision.accepted:
        raise PublishRejected(f"{version} not published: {decision.reason}; the live tables stay")
    return decision


def _with(decision: GateDecision, reason: str) -> GateDecision:
    return GateDecision(True, reason, decision.metric, decision.challenger, decision.champion,
                        decision.champion_version)
