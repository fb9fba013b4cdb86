"""Data health: does the night's input look like the nights before it?

The `health` step of the night reads the log (through `recsys.source`) for the data
interval's day and the `HealthConfig.history_days` days before it, computes in SQL
(health/figures, health/compliance) and writes to `data_health` one row per check:

* `volume`: the day's events against the median of the trailing days' (a day with a
  fifth of the usual events, or five times as many);
* `click_through`: positives / impressions against its trailing median;
* `new_users`, `new_items`: the share of the day's events from users (of items) with no
  event in the `new_lookback_days` before, against the trailing median plus a margin
  (an id-mapping bug makes everyone new);
* `propensity_share`, `model_version_share`: the share of the day's impressions that
  carry a propensity (a model version), against the trailing median (a logging bug
  that drops them);
* `serving_compliance`: of the impressions tagged with a version the registry knows,
  the share whose item is in that version's published list for that user. A version
  never published counts as not complying; one whose lists were dropped beyond
  RECSYS_KEEP_VERSIONS is "not kept" and left out, as are versions the registry does
  not know (another system's, like the simulator's logging policy); both are counted
  in the row's detail.

A check is `skipped` when it cannot be measured: the log lacks the column (said once
per night), the day has no impressions, or there is no history yet. A check out of
its bounds is `held`, or `warned` under `warn_only`. `health_hold`, called by the
pipeline before each model's gate, refuses the publish of a night with a held check
(PublishRejected naming the check, its figure and the threshold; the version is
marked `rejected` with the reason in model_runs.metrics['health']) unless the run
forces its publish, which is then said in the log and the registry.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from psycopg2 import sql
from psycopg2.extras import Json

from recsys.config import HealthConfig, Settings
from recsys.db.engine import load_sql, raw_connection, require_tables
from recsys.errors import PublishRejected
from recsys.interval import DataInterval
from recsys.source import Source, assign_keys, inspect_source

logger = logging.getLogger(__name__)

OK, HELD, WARNED, SKIPPED = "ok", "held", "warned", "skipped"
CHECKS = ("volume", "click_through", "new_users", "new_items", "propensity_share", "model_version_share",
          "serving_compliance")


@dataclass(frozen=True)
class Check:
    """One row of data_health: the figure, its baseline and bounds, the verdict and why."""

    check_name: str
    value: float | None
    baseline: float | None
    threshold_low: float | None
    threshold_high: float | None
    status: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthReport:
    """The health step's manifest (small, for XCom): which checks held, warned or were skipped."""

    run_date: date
    held: list[str]
    warned: list[str]
    skipped: list[str]
    reasons: dict[str, str]


def check_health(settings: Settings, interval: DataInterval) -> HealthReport:
    """Compute every check of the interval's day and replace the night's rows of data_health.

    Raises:
        SchemaMissingError: data_health or the source is missing (run `recsys db upgrade`).
        DataValidationError: the source has a column of a type recsys cannot read.
    """
    cfg, run_date = settings.health, interval.run_date
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "data_health", "model_runs", "recommendation_lists")
        log = inspect_source(cur, settings)
        reach = interval.end - timedelta(days=cfg.history_days + 1 + cfg.new_lookback_days)
        if log.keyed("user_id") or log.keyed("item_id"):
            assign_keys(cur, log, reach, interval.end)
            conn.commit()  # as the extract: the ids must be visible to the readers, and are never reused
        source = log.relation()
        params = {"start": interval.start, "end": interval.end, "history_days": cfg.history_days,
                  "lookback_days": cfg.new_lookback_days, "impression_types": list(settings.impression_types),
                  "positive_types": list(settings.positive_types)}
        cur.execute(sql.SQL(load_sql("health/figures")).format(source=source), params)
        names = [c.name for c in cur.description]
        figures = dict(zip(names, cur.fetchone()))
        versions: list[tuple[str, str, int, int]] = []
        if log.has("model_version") and figures["impressions"]:
            cur.execute(sql.SQL(load_sql("health/compliance")).format(source=source), params)
            versions = cur.fetchall()
        checks = _judge(cfg, log, figures, versions)
        cur.execute(load_sql("health/clear"), {"run_date": run_date})
        for check in checks:
            cur.execute(load_sql("health/record"), {**asdict(check), "run_date": run_date,
                                                    "detail": Json(check.detail)})
    for check in checks:
        if check.status in (HELD, WARNED):
            logger.warning("data health %s: %s %s: %s", run_date, check.check_name, check.status.upper(), check.reason)
        else:
            logger.info("data health %s: %s %s: %s", run_date, check.check_name, check.status, check.reason)
    report = HealthReport(run_date, [c.check_name for c in checks if c.status == HELD],
                          [c.check_name for c in checks if c.status == WARNED],
                          [c.check_name for c in checks if c.status == SKIPPED],
                          {c.check_name: c.reason for c in checks if c.status in (HELD, WARNED)})
    if report.held:
        logger.warning("data health %s: the night's publishes are on hold (%s)", run_date, ", ".join(report.held))
    return report


def health_hold(settings: Settings, version: str, run_date: date, force: bool = False) -> str | None:
    """Refuse the publish of `version` when data health held its night; the reason, or None.

    With `force` the publish goes ahead and the override is logged and recorded in
    model_runs.metrics['health']. A night without data_health rows (the step did not
    run) holds nothing.

    Raises:
        PublishRejected: a check of `run_date` is held (the version is marked `rejected` first).
    """
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "data_health", "model_runs")
        cur.execute(load_sql("health/holds"), {"run_date": run_date})
        held = cur.fetchall()
        if not held:
            return None
        reason = "data health held the night: " + "; ".join(f"{name}: {why}" for name, why in held)
        record = {"held": [name for name, _ in held], "reason": reason, "overridden_by_force_publish": force}
        cur.execute(load_sql("health/hold_record"),
                    {"health": Json(record), "held": not force, "model_version": version})
    if force:
        logger.warning("force_publish overrides the data-health hold of %s: %s", version, reason)
        return f"{reason} (overridden by force_publish)"
    logger.warning("%s not published: %s", version, reason)
    raise PublishRejected(f"{version} not published: {reason}; the live tables stay")


def _judge(cfg: HealthConfig, log: Source, f: dict[str, Any],
           versions: list[tuple[str, str, int, int]]) -> list[Check]:
    """Each check's verdict from the figures of health/figures and the rows of health/compliance."""
    verdict = WARNED if cfg.warn_only else HELD
    history, days = f["history_days"], cfg.history_days
    checks = []

    def bounded(name: str, value: float | None, baseline: float | None, low: float | None, high: float | None,
                what: str, detail: dict[str, Any] | None = None) -> Check:
        detail = {"history_days": history, **(detail or {})}
        shown = f"{what} {_fmt(value)} (median of the {history} days before: {_fmt(baseline)})"
        if low is not None and value < low:
            return Check(name, value, baseline, low, high, verdict, f"{shown} is below the threshold {_fmt(low)}",
                         detail)
        if high is not None and value > high:
            return Check(name, value, baseline, low, high, verdict, f"{shown} is above the threshold {_fmt(high)}",
                         detail)
        return Check(name, value, baseline, low, high, OK, f"{shown} within [{_fmt(low)}, {_fmt(high)}]", detail)

    def skipped(name: str, reason: str, value: float | None = None) -> Check:
        return Check(name, value, None, None, None, SKIPPED, reason, {"history_days": history})

    no_history = f"no history: the log has no day before this one within {days} days"
    # volume
    events, median = f["events"] or 0, f["events_median"]
    if not history:
        checks.append(skipped("volume", no_history, events))
    elif not median:
        checks.append(skipped("volume", f"no history: the median of the {history} days before is 0 events", events))
    else:
        checks.append(bounded("volume", events, median, _times(median, cfg.min_volume_ratio),
                              _times(median, cfg.max_volume_ratio), "events"))
    # click-through
    if not f["impressions"]:
        checks.append(skipped("click_through", "no impressions on the day (no event of an impression type)"))
    elif f["ctr_median"] is None:
        checks.append(skipped("click_through", "no history: no day before this one has impressions", f["ctr"]))
    else:
        keep = 1.0 - cfg.max_ctr_change
        checks.append(bounded("click_through", f["ctr"], f["ctr_median"], f["ctr_median"] * keep,
                              f["ctr_median"] / keep if keep else None, "click-through"))
    # new users and items
    for name, value, base, what in (("new_users", f["new_user_share"], f["new_user_median"], "users"),
                                    ("new_items", f["new_item_share"], f["new_item_median"], "items")):
        if value is None:
            checks.append(skipped(name, "no events on the day"))
        elif base is None:
            checks.append(skipped(name, no_history, value))
        else:
            checks.append(bounded(name, value, base, None, base + cfg.max_new_share_rise,
                                  f"share of events from new {what}",
                                  {"lookback_days": cfg.new_lookback_days}))
    # tags on impressions
    for name, column, value, base in (("propensity_share", "propensity", f["propensity_share"], f["propensity_median"]),
                                      ("model_version_share", "model_version", f["version_share"],
                                       f["version_median"])):
        if not log.has(column):
            # the extract already says once what the absent column turns off; the row says why it is skipped
            checks.append(skipped(name, f"no {column} column in the log"))
        elif not f["impressions"]:
            checks.append(skipped(name, "no impressions on the day"))
        elif base is None or not f["history_impression_days"]:
            checks.append(skipped(name, "no history: no day before this one has impressions", value))
        else:
            checks.append(bounded(name, value, base, base * (1.0 - cfg.max_tag_drop), None,
                                  f"share of impressions with a {column}"))
    checks.append(_compliance(cfg, log, f, versions, verdict))
    return checks


def _compliance(cfg: HealthConfig, log: Source, f: dict[str, Any], versions: list[tuple[str, str, int, int]],
                verdict: str) -> Check:
    name = "serving_compliance"
    if not log.has("model_version"):
        return Check(name, None, None, None, None, SKIPPED, "no model_version column in the log")
    counts: dict[str, int] = {}
    for _, state, n, _ in versions:
        counts[state] = counts.get(state, 0) + n
    detail = {"impressions_" + state: n for state, n in counts.items()}
    detail["versions"] = {v: {"state": state, "impressions": n, "in_list": in_list}
                          for v, state, n, in_list in versions[:20]}
    measured = counts.get("kept", 0) + counts.get("never_published", 0)
    aside = "; left out: " + ", ".join(f"{counts[s]} of versions {s.replace('_', ' ')}"
                                       for s in ("not_kept", "unregistered") if counts.get(s)) \
        if counts.get("not_kept") or counts.get("unregistered") else ""
    if not measured:
        return Check(name, None, None, None, None, SKIPPED,
                     f"no impression of the day is tagged with a version of model_runs{aside}", detail)
    value = sum(in_list for _, state, _, in_list in versions if state == "kept") / measured
    never = [v for v, state, _, _ in versions if state == "never_published"]
    shown = (f"{_fmt(value)} of {measured} impressions tagged with a registered version show an item of its "
             f"published list for the user")
    if never:
        shown += f" ({counts['never_published']} tagged with versions never published: {', '.join(never[:5])})"
    if value < cfg.min_compliance:
        return Check(name, value, None, cfg.min_compliance, None, verdict,
                     f"{shown}: below the threshold {_fmt(cfg.min_compliance)}{aside}", detail)
    return Check(name, value, None, cfg.min_compliance, None, OK, f"{shown}{aside}", detail)


def _times(median: float | None, ratio: float) -> float | None:
    """median x ratio as a bound; None when the bound is off (ratio 0 or infinite)."""
    if median is None or ratio <= 0 or math.isinf(ratio):
        return None
    return median * ratio


def _fmt(x: float | None) -> str:
    if x is None:
        return "none"
    return f"{x:.0f}" if float(x).is_integer() and abs(x) >= 1 else f"{x:.4g}"
