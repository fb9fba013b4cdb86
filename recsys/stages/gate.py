"""Champion/challenger gate: a new model goes live only if it is not worse.

What it compares is `Settings.gate_metric`:

* A hold-out ranking metric at K (default `ndcg`). The evaluate stage scores the
  challenger, the live model (the champion) and the baselines on the same hold-out
  users, and keeps each user's figures beside the model file (`recsys.holdout_users`).
  Three rules, in this order, each named in the reason with its figures:

  1. Too few users: with fewer than `gate_min_users` hold-out users the metric decides
     nothing. With a live model, it stays (the run is `rejected`); with none, the first
     model goes live, with that reason recorded.
  2. Not credibly worse: the paired bootstrap (`recsys.metrics.paired`, seeded with
     `gate_seed`, `gate_bootstrap_samples` replicates) of challenger - champion over the
     same users; the challenger passes when the lower bound of its 95% interval is
     >= -gate_relative_tolerance x the champion's metric. The tolerance is relative so
     that it means the same on a metric of 0.4 and one of 0.004 (an absolute 0.005 once
     let an NDCG of 0.0041 replace one of 0.0071). Without a champion figure (no live
     model, a hold-out other than `last_day`, the live model's file gone) there is
     nothing to compare with and this rule passes; a version evaluated before the
     per-user figures were kept is compared on its means, and the reason says so.
  3. The baseline floor (`gate_baseline_floor`): a learned model (kind other than
     `baseline`) whose metric is below the best baseline's on the same users is not
     published: the baselines the evaluate stage scores beside every model (popularity,
     trending) and the night's models of kind `baseline` (`recsys.night` has the gate wait
     for their evaluate steps). Baselines are not held to themselves.

  `force_publish` publishes whatever the rules say, and the reason says what it was
  forced past. RL models are not held to this gate while they have an off-policy
  estimate (their read-out is their A/B arm and the estimate); without one, their
  ranking hold-out (the evaluate stage fits a policy on the window minus its last day)
  is held to these three rules, and with neither nothing speaks for them and they are
  not published unless forced (`_decide_evidence`; the reason names the evidence used). A model the catalogue gives no evaluate step passes with "no ... on a
  common hold-out to compare".
* `dr_return_lcb` (`config.DR_GATE_METRIC`), for every model: the lower bound of
  the 95% bootstrap interval of the challenger's doubly robust estimate of its D1
  return rate on the night's logged day D-2 (stored by
  `recsys.stages.ope.estimate_candidate`, which must run before the gate) against
  the live version's DR point estimate on the same day, from the lists it serves
  (`recsys.stages.ope.champion_return_estimate`, computed here unless stored). The
  challenger passes when lcb >= champion - gate_tolerance (absolute: return rates are
  of one scale): it has to be credibly
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

Under every setting the challenger also passes when it is the live version re-run
or an older date's model that will only fill history (a newer date is live); under
the DR gates also when there is no live model yet or publishing is forced. Otherwise
the run is recorded as `rejected` with its figures and nothing is published; the
live tables stay. Every decision is recorded in model_runs.metrics['gate'], and its
reason is what `recsys models list` shows.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
from psycopg2.extras import Json

from recsys import catalogue, holdout_users
from recsys.config import DR_DIFF_GATE_METRIC, DR_GATE_METRICS, Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.errors import DataValidationError, MissingEstimateError, PublishRejected  # noqa: F401 - raised here
from recsys.metrics.paired import paired_bootstrap

if TYPE_CHECKING:  # the OPE stage imports numpy and pandas; the gate loads it only when it needs it
    from recsys.stages.ope import ReturnEstimate

logger = logging.getLogger(__name__)

# the reason given for a model without a ranking hold-out (the RL models: `ranking_gate=False`)
RL_RANKING_REASON = "RL: read out by its A/B arm and off-policy estimate, else its ranking hold-out"
FORCED = "forced by the run's force_publish parameter"


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
    difference: float | None = None  # challenger - live, paired (ranking: over hold-out users; DR: sessions)
    difference_ci: tuple[float, float] | None = None
    n_users: int | None = None  # ranking gate: hold-out users behind the figures
    min_users: int | None = None
    relative_tolerance: float | None = None
    tolerance_bound: float | None = None  # -relative_tolerance * champion: the least lower bound accepted
    floor: float | None = None  # the best baseline's figure on the same users
    floor_baseline: str | None = None
    held_back_by: tuple[str, ...] = ()  # the ranking rules a rejected (or forced) challenger failed


def decide(settings: Settings, version: str, force: bool = False) -> GateDecision:
    """Compare `version` with the live model and record the decision in model_runs.metrics.

    Raises:
        PublishRejected: the ranking gate keeps the live model (too few hold-out users, the
            paired interval below the tolerance, or below the baseline floor), or a DR gate's
            challenger is worse than the champion by more than the tolerance (the run is
            marked `rejected` first).
        MissingEstimateError: DR gate only: the logged day has impressions but the
            challenger has no stored estimate (estimate_candidate did not run first).
        DataValidationError: the per-user hold-out figures beside the model file are not
            those eval_metrics holds for the version (re-run its evaluate step).
    """
    dr_gate = settings.gate_metric in DR_GATE_METRICS
    metric = settings.gate_metric if dr_gate else f"{settings.gate_metric}@{settings.k}"
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "model_runs", "eval_metrics", "live_models")
        cur.execute(load_sql("gate/inputs"), {"model_version": version, "metric": settings.gate_metric, "k": settings.k})
        row = cur.fetchone()
    if row is None:
        raise LookupError(f"model_runs has no model_version {version!r}")
    model, model_kind, run_date, live_version, live_date, challenger, champion, n_users, artifact_path = row
    spec = catalogue.find(model)
    # a version of a model no longer in the catalogue keeps the rule its kind had
    ranking_gate = spec.ranking_gate if spec is not None else model_kind != "rl"
    if dr_gate:  # the ranking figures are not what this gate compares
        challenger = champion = None
    decision = GateDecision(True, "", metric, challenger, champion, live_version)
    if force and (dr_gate or not ranking_gate):
        decision = _with(decision, FORCED)
    elif not ranking_gate and not dr_gate:
        decision = _decide_evidence(settings, version, run_date, decision, force, n_users, artifact_path)
    elif live_version is not None and live_version == version:
        decision = _with(decision, "re-run of the live version")
    elif live_version is not None and live_date > run_date:
        decision = _with(decision, f"history only: {live_version} (a newer date) stays live")
    elif dr_gate and not ranking_gate and _no_estimate_possible(settings, version, run_date):
        # an RL model has no ranking hold-out: without an estimate nothing speaks for it
        day = run_date - timedelta(days=2)
        decision = _conclude(decision, f"no off-policy estimate on {day} (no logged impressions with propensities) "
                                       "and no ranking hold-out: no evidence", ("no evidence",), live_version, force)
    elif dr_gate:
        decision = _with(decision, "no live model yet") if live_version is None else \
            _decide_dr(settings, version, run_date, decision)
    else:
        evaluated = spec.evaluate is not None if spec is not None else challenger is not None
        decision = _decide_ranking(settings, version, run_date, model_kind if spec is None else spec.kind,
                                   evaluated, n_users, artifact_path, decision, force)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("gate/decision_record"),
                    {"decision": Json(asdict(decision)), "accepted": decision.accepted, "model_version": version})
    logger.info("gate for %s: %s (%s)", version, "accepted" if decision.accepted else "REJECTED", decision.reason)
    if not decision.accepted:
        raise PublishRejected(f"{version} not published: {decision.reason}; the live tables stay")
    return decision


def _no_estimate_possible(settings: Settings, version: str, run_date: date) -> bool:
    """No DR estimate of `version` is stored and its logged day has no impressions to make one
    (impressions without an estimate are an ordering error, which `_decide_dr` raises)."""
    from recsys.stages.ope import has_logged_impressions, logged_day, stored_return_estimate

    day = logged_day(run_date)
    return stored_return_estimate(settings, version, day) is None and not has_logged_impressions(settings, day)


def _decide_evidence(settings: Settings, version: str, run_date: date, decision: GateDecision,
                     force: bool, n_users: int | None = None, artifact_path: str | None = None) -> GateDecision:
    """A model without a ranking gate (the RL policies) goes live only with evidence, and the reason
    says which it used: an off-policy estimate of its return rate; else its ranking hold-out (the
    evaluate stage's, on the window's last day), held to the ranking rules of `_decide_ranking`
    (minimum users, paired interval against the live version, baseline floor); and in either case
    lists that are not collapsed onto a few items for everyone (fewer than
    `gate_min_distinct_items` distinct items)."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("gate/rl_evidence"), {"model_version": version, "k": settings.k})
        distinct, gini, top_share, users, dr_return = cur.fetchone()
    parts = [RL_RANKING_REASON]
    held_back: list[str] = []
    metric = decision.metric
    if dr_return is not None:
        parts.append(f"evidence: the off-policy estimate, DR D1 return {dr_return:.4f}")
        if decision.challenger is not None:  # reported, not gated: the estimate is the read-out
            parts.append(f"ranking hold-out {metric} {decision.challenger:.4f} on {n_users or 0} users")
    elif decision.challenger is not None and artifact_path is not None:
        parts.append(f"no off-policy estimate (no logged impressions with propensities on "
                     f"{run_date - timedelta(days=2)})")
        decision, body, ranking_held, _ = _ranking_rules(settings, version, run_date, "rl", n_users, artifact_path,
                                                         decision)
        parts.append(f"evidence: the ranking hold-out, {body}")
        held_back += ranking_held
    else:
        parts.append(f"no off-policy estimate (no logged impressions with propensities on "
                     f"{run_date - timedelta(days=2)}) and no ranking hold-out: no evidence")
        held_back.append("no evidence")
    if distinct is not None:
        spread = (f"its lists hold {int(distinct)} distinct items over {int(users or 0)} users (Gini of exposure "
                  f"{gini:.2f}, the most listed item in {100 * (top_share or 0):.0f}% of lists)")
        if settings.gate_min_distinct_items and distinct < settings.gate_min_distinct_items:
            parts.append(f"collapsed: {spread} < {settings.gate_min_distinct_items} (RECSYS_GATE_MIN_DISTINCT_ITEMS)")
            held_back.append("collapse")
        else:
            parts.append(spread)
    return _conclude(decision, "; ".join(parts), tuple(held_back), decision.champion_version, force)


def _decide_ranking(settings: Settings, version: str, run_date: date, kind: str, evaluated: bool,
                    n_users: int | None, artifact_path: str, decision: GateDecision, force: bool) -> GateDecision:
    """The hold-out ranking rules: the minimum number of users, the paired bootstrap against
    the live model with a relative tolerance, and the baseline floor (see the module doc)."""
    live = decision.champion_version
    if not evaluated:  # a model the catalogue gives no hold-out evaluation: nothing to compare
        reason = "no live model yet" if live is None else \
            f"no {decision.metric} on a common hold-out to compare: publishing the fresher model"
        return _conclude(decision, reason, (), live, force, verdict="")
    decision, body, held_back, verdict = _ranking_rules(settings, version, run_date, kind, n_users, artifact_path,
                                                        decision)
    return _conclude(decision, body, held_back, live, force, verdict=verdict)


def _ranking_rules(settings: Settings, version: str, run_date: date, kind: str, n_users: int | None,
                   artifact_path: str, decision: GateDecision) -> tuple[GateDecision, str, tuple[str, ...], str]:
    """The ranking rules on an evaluated version: (decision with the figures, the reason's body, the
    rules that hold it back, the verdict suffix `_conclude` appends when none does)."""
    metric, live = decision.metric, decision.champion_version
    name = settings.gate_metric
    users = holdout_users.load(holdout_users.path_for(artifact_path), version, settings.k)
    mine = users.get("model", name) if users is not None else None
    theirs = users.get("champion", name) if users is not None else None
    if users is not None:  # the per-user figures are what eval_metrics' means were taken of
        n_users = users.n_users
        _check_mean(artifact_path, "model", mine, decision.challenger)
        _check_mean(artifact_path, "champion", theirs, decision.champion)
    n = n_users or 0
    challenger, champion = decision.challenger, decision.champion
    decision = dataclasses.replace(decision, n_users=n, min_users=settings.gate_min_users,
                                   relative_tolerance=settings.gate_relative_tolerance)
    figures = _figures(metric, challenger, champion if live is not None else None)
    if n < settings.gate_min_users or challenger is None:
        body = (f"{figures}{' on ' if figures else ''}{n} hold-out users < {settings.gate_min_users} "
                f"(RECSYS_GATE_MIN_USERS), so the metric decides nothing")
        if live is None:
            return decision, f"no live model yet; {body}: the first model goes live", (), ""
        return decision, body, ("minimum hold-out users",), ": accepted"
    parts: list[str] = []
    held_back: list[str] = []
    if live is None:
        parts.append(f"no live model yet; {metric} {challenger:.4f} on {n} users")
    elif champion is None:
        parts.append(f"{metric} {challenger:.4f} on {n} users; no {metric} of live {live} on the same users "
                     "(a hold-out other than last_day, or no live model file): the fresher model")
    else:
        bound = -settings.gate_relative_tolerance * champion
        share = f"-{settings.gate_relative_tolerance * 100:g}% of live ({bound:+.4f})"
        if mine is not None and theirs is not None:
            paired = paired_bootstrap(mine, theirs, settings.gate_bootstrap_samples, settings.gate_seed)
            passed = paired.low >= bound
            decision = dataclasses.replace(decision, difference=paired.mean, difference_ci=(paired.low, paired.high),
                                           tolerance_bound=bound)
            parts.append(f"{figures}: paired diff {paired.mean:+.4f} [95% {paired.low:+.4f}, {paired.high:+.4f}] "
                         f"on {n} users {'>=' if passed else '<'} {share}")
        else:  # a version evaluated before the per-user figures were kept: the means are all there is
            diff = challenger - champion
            passed = diff >= bound
            decision = dataclasses.replace(decision, difference=diff, tolerance_bound=bound)
            parts.append(f"{figures}: diff {diff:+.4f} on {n} users (means only: no per-user figures) "
                         f"{'>=' if passed else '<'} {share}")
        if not passed:
            held_back.append("tolerance")
    if settings.gate_baseline_floor and kind != "baseline":  # a baseline is not held to itself
        floor = baseline_floor(settings, version, run_date, n)
        if floor is not None:
            baseline, value = floor
            decision = dataclasses.replace(decision, floor=value, floor_baseline=baseline)
            if challenger < value:
                held_back.append("baseline floor")
                parts.append(f"below the best baseline, {baseline}'s {value:.4f} (RECSYS_GATE_BASELINE_FLOOR)")
            else:
                parts.append(f">= the best baseline, {baseline}'s {value:.4f}")
    return decision, "; ".join(parts), tuple(held_back), ": accepted"


def _conclude(decision: GateDecision, body: str, held_back: tuple[str, ...], live: str | None,
              force: bool, verdict: str = ": accepted") -> GateDecision:
    """The verdict on `body`: accepted (`body` + `verdict`) unless a rule held the challenger
    back; `force` publishes it either way and says what it was forced past."""
    if not held_back:
        reason = f"{body}{verdict}"
        return _with(decision, f"{FORCED} (the gate accepts: {reason})" if force else reason)
    if force:
        return dataclasses.replace(decision, accepted=True, held_back_by=held_back,
                                   reason=f"{FORCED} past the {' and '.join(held_back)}: {body}")
    stays = f"live {live} stays" if live is not None else "nothing goes live"
    return dataclasses.replace(decision, accepted=False, held_back_by=held_back, reason=f"{body}: rejected, {stays}")


def baseline_floor(settings: Settings, version: str, run_date: date, n_users: int) -> tuple[str, float] | None:
    """The best baseline's hold-out figure on `version`'s hold-out users, and its name; None without one.

    The baselines are those the evaluate stage scored beside the version
    (`holdout_users.BASELINE_SUBJECTS`) and the models of kind "baseline" of the same run date
    evaluated on a hold-out of `n_users` users (`recsys.night` has the gate wait for their
    evaluate steps, so the floor is the same on a re-run).
    """
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("gate/baseline_figures"),
                    {"model_version": version, "metric": settings.gate_metric, "k": settings.k,
                     "beside": list(holdout_users.BASELINE_SUBJECTS), "run_date": run_date, "n_users": n_users})
        row = cur.fetchone()
    return (row[0], float(row[1])) if row is not None else None


def _figures(metric: str, challenger: float | None, champion: float | None) -> str:
    if challenger is None:
        return ""
    return f"{metric} {challenger:.4f}" + (f" vs live {champion:.4f}" if champion is not None else "")


def _check_mean(artifact_path: str, subject: str, values: np.ndarray | None, stored: float | None) -> None:
    """A re-run's evaluate writes the file before eval_metrics: a mismatch means the two are of different runs.
    (A metric kept only as a mean, such as coverage, has no per-user values to check.)"""
    if values is not None and (stored is None or abs(float(values.mean()) - stored) > 1e-9):
        raise DataValidationError(str(holdout_users.path_for(artifact_path)), subject,
                                  f"per-user figures (mean {float(values.mean())}) are not eval_metrics' "
                                  f"({stored}): re-run the version's evaluate step")


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
