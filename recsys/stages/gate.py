"""Champion/challenger gate: a new model goes live only if it is not worse.

What it compares is `Settings.gate_metric`:

* A hold-out ranking metric at K (default `ndcg`). The evaluate stage scores the
  challenger and the live model (the champion) on the same hold-out users; the
  challenger passes when its metric is at least the champion's minus
  `gate_tolerance`. RL models have no ranking hold-out and pass this gate, as they
  did before it applied to them: their read-out is their A/B arm and the
  off-policy estimate.
* `dr_return_lcb` (`config.DR_GATE_METRIC`), for every model: the lower bound of
  the 95% bootstrap interval of the challenger's doubly robust estimate of its D1
  return rate on the night's logged day D-2 (stored by
  `recsys.stages.ope.estimate_candidate`, which must run before the gate) against
  the live version's DR point estimate on the same day, from the lists it serves
  (`recsys.stages.ope.champion_return_estimate`, computed here unless stored). The
  challenger passes when lcb >= champion - gate_tolerance: it has to be credibly
  no worse, so a noisy estimate (few sessions, small ESS) does not replace a model
  that serves. A day with no logged impressions with propensities gives no
  estimate: the challenger passes with the reason "no off-policy estimate ...:
  publishing the fresher model", like a ranking gate without a common hold-out.
* `dr_return_diff_lcb` (`config.DR_DIFF_GATE_METRIC`): the same estimates, compared
  paired. The OPE stage also estimates the challenger's return rate minus the live
  version's on the same logged sessions and bootstrap resamples
  (`recsys.stages.ope`, subject `ope_diff@<live version>`), and the challenger passes
  when the lower bound of that difference is >= -gate_tolerance. The two estimates
  share their data, so most of their noise cancels in the difference: a retrained
  model that serves nearly the lists of the live one is no longer held back by the
  width of its own interval (under `dr_return_lcb`, with tolerance 0, a challenger
  identical to the champion fails, since its lower bound lies below its own estimate).
  Without a paired estimate against the current live version (it changed after the
  estimate) the gate applies the `dr_return_lcb` rule and says so.

Under either setting the challenger also passes when there is no live model yet,
when it is the live version re-run, when it is an older date's model that will
only fill history (a newer date is live), or when publishing is forced. Otherwise
the run is recorded as `rejected` with both figures and nothing is published; the
live tables stay. Every decision is recorded in model_runs.metrics['gate'].
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING

from psycopg2.extras import Json

from recsys import catalogue
from recsys.config import DR_DIFF_GATE_METRIC, DR_GATE_METRICS, Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.errors import MissingEstimateError, PublishRejected  # noqa: F401 - raised here, declared with the others

if TYPE_CHECKING:  # the OPE stage imports numpy and pandas; the gate loads it only when it needs it
    from recsys.stages.ope import ReturnEstimate

logger = logging.getLogger(__name__)

# the reason given for a model without a ranking hold-out (the RL models: `ranking_gate=False`)
RL_RANKING_REASON = "no ranking gate for RL: read out by A/B arm and OPE"


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict and the figures behind it (stored as model_runs.metrics['gate']).

    `challenger` and `champion` are the two figures the rule compares: the hold-out
    metrics, or under `dr_return_lcb` the challenger's lower bound and the champion's
    point estimate, or under `dr_return_diff_lcb` the lower bound of the paired
    difference and 0 (the live version against itself); the `*_estimate`, `*_ci`,
    `difference*` and `logged_day` fields are the DR gates'.
    """

    accepted: bool
    reason: str
    metric: str
    challenger: float | None
    champion: float | None
    champion_version: str | None
    challenger_estimate: float | None = None
    challenger_ci: tuple[float, float] | None = None
    champion_ci: tuple[float, float] | None = None
    logged_day: str | None = None
    difference: float | None = None  # dr_return_diff_lcb: DR estimate of challenger - live, paired
    difference_ci: tuple[float, float] | None = None


def decide(settings: Settings, version: str, force: bool = False) -> GateDecision:
    """Compare `version` with the live model and record the decision in model_runs.metrics.

    Raises:
        PublishRejected: the challenger is worse than the champion by more than the tolerance
            (the run is marked `rejected` first).
        MissingEstimateError: DR gate only: the logged day has impressions but the
            challenger has no stored estimate (estimate_candidate did not run first).
    """
    dr_gate = settings.gate_metric in DR_GATE_METRICS
    metric = settings.gate_metric if dr_gate else f"{settings.gate_metric}@{settings.k}"
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "model_runs", "eval_metrics", "live_models")
        cur.execute(load_sql("gate/inputs"), {"model_version": version, "metric": settings.gate_metric, "k": settings.k})
        row = cur.fetchone()
    if row is None:
        raise LookupError(f"model_runs has no model_version {version!r}")
    model, model_kind, run_date, live_version, live_date, challenger, champion = row
    spec = catalogue.find(model)
    # a version of a model no longer in the catalogue keeps the rule its kind had
    ranking_gate = spec.ranking_gate if spec is not None else model_kind != "rl"
    if dr_gate:  # the ranking figures are not what this gate compares
        challenger = champion = None
    decision = GateDecision(True, "", metric, challenger, champion, live_version)
    if force:
        decision = _with(decision, "forced by the run's force_publish parameter")
    elif not ranking_gate and not dr_gate:
        decision = _with(decision, RL_RANKING_REASON)
    elif live_version is None:
        decision = _with(decision, "no live model yet")
    elif live_version == version:
        decision = _with(decision, "re-run of the live version")
    elif live_date > run_date:
        decision = _with(decision, f"history only: {live_version} (a newer date) stays live")
    elif dr_gate:
        decision = _decide_dr(settings, version, run_date, decision)
    elif challenger is None or champion is None:
        decision = _with(decision, f"no {metric} on a common hold-out to compare: publishing the fresher model")
    elif challenger >= champion - settings.gate_tolerance:
        decision = _with(decision, f"{metric} {challenger:.4f} vs live {champion:.4f} "
                                   f"(tolerance {settings.gate_tolerance})")
    else:
        decision = GateDecision(False, f"{metric} {challenger:.4f} is worse than live {live_version}'s "
                                       f"{champion:.4f} by more than {settings.gate_tolerance}",
                                metric, challenger, champion, live_version)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("gate/decision_record"),
                    {"decision": Json(asdict(decision)), "accepted": decision.accepted, "model_version": version})
    logger.info("gate for %s: %s (%s)", version, "accepted" if decision.accepted else "REJECTED", decision.reason)
    if not decision.accepted:
        raise PublishRejected(f"{version} not published: {decision.reason}; the live tables stay")
    return decision


def _decide_dr(settings: Settings, version: str, run_date: date, decision: GateDecision) -> GateDecision:
    """The DR rules: the paired difference's lower bound against 0 (`dr_return_diff_lcb`, when
    estimated against the current live version), else the challenger's DR lower bound
    against the champion's DR estimate (`dr_return_lcb`)."""
    # numpy/pandas and the OPE reader only on nights that gate on the estimate
    from recsys.stages.ope import (champion_return_estimate, difference_subject, has_logged_impressions, logged_day,
                                  stored_return_estimate)

    day = logged_day(run_date)
    live, tolerance = decision.champion_version, settings.gate_tolerance
    decision = dataclasses.replace(decision, logged_day=day.isoformat())
    mine = stored_return_estimate(settings, version, day)
    if mine is None:
        if has_logged_impressions(settings, day):
            raise MissingEstimateError(
                f"eval_metrics has no DR return estimate of {version} (subject 'ope', k={settings.k}) although"
                f" {day} has logged impressions: run recsys.stages.ope.estimate_candidate before the gate")
        return _with(decision, f"no off-policy estimate on {day} (no logged impressions with propensities):"
                               " publishing the fresher model")
    decision = dataclasses.replace(decision, challenger=mine.ci_low, challenger_estimate=mine.value,
                                   challenger_ci=(mine.ci_low, mine.ci_high))
    unpaired = ""
    if settings.gate_metric == DR_DIFF_GATE_METRIC:
        diff = stored_return_estimate(settings, version, day, difference_subject(live))
        if diff is not None:
            return _decide_paired(decision, diff, live, day, tolerance)
        unpaired = f"no paired estimate against live {live}, so dr_return_lcb's rule: "
    theirs = champion_return_estimate(settings, run_date, live)
    if theirs is None:
        return _with(decision, f"no off-policy estimate of live {live}'s lists on {day}: publishing the fresher model")
    decision = dataclasses.replace(decision, champion=theirs.value, champion_ci=(theirs.ci_low, theirs.ci_high))
    detail = f"D1 return on {day}: challenger DR {mine.value:.4f} [{mine.ci_low:.4f}, {mine.ci_high:.4f}]"
    if mine.ci_low >= theirs.value - tolerance:
        return _with(decision, f"{unpaired}{decision.metric} {mine.ci_low:.4f} vs live {theirs.value:.4f} "
                               f"({detail}; tolerance {tolerance})")
    return dataclasses.replace(decision, accepted=False,
                               reason=f"{unpaired}{decision.metric} {mine.ci_low:.4f} is worse than live {live}'s "
                                      f"{theirs.value:.4f} by more than {tolerance} ({detail})")


def _decide_paired(decision: GateDecision, diff: ReturnEstimate, live: str | None, day: date,
                   tolerance: float) -> GateDecision:
    decision = dataclasses.replace(decision, challenger=diff.ci_low, champion=0.0, difference=diff.value,
                                   difference_ci=(diff.ci_low, diff.ci_high))
    detail = (f"D1 return on {day}: challenger - live {live} DR {diff.value:.4f} [{diff.ci_low:.4f}, "
              f"{diff.ci_high:.4f}], paired over {diff.n_sessions} sessions")
    if diff.ci_low >= -tolerance:
        return _with(decision, f"{decision.metric} {diff.ci_low:.4f} >= -{tolerance} ({detail})")
    return dataclasses.replace(decision, accepted=False,
                               reason=f"{decision.metric} {diff.ci_low:.4f}: worse than live {live} by more than "
                                      f"{tolerance} ({detail})")


def _with(decision: GateDecision, reason: str) -> GateDecision:
    return dataclasses.replace(decision, accepted=True, reason=reason)
