"""OPE stage: off-policy estimates of a candidate's click and return rates, checked later.

`estimate_candidate(settings, interval, dataset_path, version)` evaluates the candidate
version's top-K lists (its scores artifact, as `recsys.stages.score.score_shard` makes it)
on the logged impressions of day D-2 of the night's as-of date D: the newest day
whose next day (D-1, the return outcome) is in the log. Target policy: the lists with
the configured per-slot exploration (`settings.ope.explore`); estimators IPS, SNIPS
and DR with per-item mean reward models, weights clipped at `settings.ope.weight_cap`,
cluster-bootstrap intervals by user (`recsys.metrics.off_policy.evaluate_list_policy`).

Writes every figure to `eval_metrics` (subject `ope`, metric `<estimator>_<target>`
plus `_ci_low`, `_ci_high`, `_ess`) and the DR return-rate estimate with its interval
to `ope_estimates`. `record_realised` later fills `realised` with the D1 retention of
the users that version served on its as-of date (model_retention), so predicted and
realised sit side by side (the UI's OPE panel).

For the DR gate (`RECSYS_GATE_METRIC=dr_return_lcb`, `recsys.stages.gate`),
`champion_return_estimate` evaluates the live version the same way on the challenger's
logged day, from the lists it serves (its lists in `recommendations`), and stores
the figures under the live version with subject `ope@<logged day>`. The live version's
own `ope` row cannot stand in: it is from its own night, an earlier logged day.

Caveats, said plainly: the candidate was trained on data that includes the evaluated
day, and its lists are today's lists applied to yesterday's users (the state has moved
on by a day); the estimate is a screening figure, which is why its realised outcome is
stored next to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone

import numpy as np
import pandas as pd
from psycopg2 import sql

from recsys.metrics import off_policy as ope
from recsys.metrics.exposure import Exposure, exposure
from recsys.config import DR_DIFF_GATE_METRIC, DR_GATE_METRICS, Settings
from recsys.db.engine import copy_out, load_sql, raw_connection, require_tables
from recsys.source import inspect_source
from recsys.interval import DataInterval
from recsys.db.registry import get_run
from recsys.stages.score import score_shard

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OPEManifest:
    model_version: str
    logged_day: str
    n_impressions: int
    n_sessions: int
    click_dr: float | None
    return_dr: float | None
    return_ci: tuple[float, float] | None
    return_ess: float | None


@dataclass(frozen=True)
class ReturnEstimate:
    """One version's DR estimate of its D1 return rate on one logged day, with its bootstrap 95% interval."""

    model_version: str
    logged_day: str
    value: float
    ci_low: float
    ci_high: float
    n_sessions: int
    ess: float | None


def logged_day(run_date: date) -> date:
    """The day a night of as-of date `run_date` (D) evaluates on: D-2, the newest whose next day is logged."""
    return run_date - timedelta(days=2)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, dtime(0), tzinfo=timezone.utc)


def read_logged_day(settings: Settings, day_start: datetime) -> pd.DataFrame:
    params = {"day_start": day_start, "day_end": day_start + timedelta(days=1),
              "next_end": day_start + timedelta(days=2), "active_types": list(settings.active_types),
              "impression_types": list(settings.impression_types), "click_types": list(settings.rl_click_types)}
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        buf = copy_out(cur, sql.SQL(load_sql("ope/logged_impressions")).format(
            source=inspect_source(cur, settings).relation()), params)
    return pd.read_csv(buf, header=None, names=["user_id", "item_id", "session_id", "propensity", "model_version",
                                                "clicked", "returned"], na_values=[""], keep_default_na=False)


def has_logged_impressions(settings: Settings, day: date) -> bool:
    """Whether `day` has any logged impression with a propensity (else no estimate can be made on it)."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL(load_sql("ope/logged_impressions_exist")).format(
            source=inspect_source(cur, settings).relation()),
                    {"day_start": _day_start(day), "day_end": _day_start(day + timedelta(days=1)),
                     "impression_types": list(settings.impression_types)})
        return bool(cur.fetchone()[0])


def estimate_candidate(settings: Settings, interval: DataInterval, dataset_path: str, version: str,
                       score_path: str | None = None) -> OPEManifest:
    """Estimate `version`'s click and D1 return rates on the logged day D-2 and store them."""
    run = get_run(settings, version)
    day_start = _day_start(logged_day(interval.run_date))
    if score_path is not None:  # the candidate's own lists: how they spread exposure, for its gate
        record_exposure(settings, version, score_path)
    logged = read_logged_day(settings, day_start)
    if logged.empty:
        logger.warning("OPE of %s: no logged impressions with propensities on %s: no off-policy estimate",
                       version, day_start.date())
        return OPEManifest(version, day_start.date().isoformat(), 0, 0, None, None, None, None)
    path = score_path or score_shard(settings, dataset_path, version).path
    with np.load(path) as scores:
        order = np.lexsort((scores["rank"], scores["user_id"]))
        users, items = scores["user_id"][order], scores["item_id"][order]
    list_users, lists = _full_lists(users, items, settings.k)
    est = _evaluate(settings, logged, list_users, lists, items)
    dr = est["return"]["dr"]
    cfg = settings.ope
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "ope_estimates", "eval_metrics")
        _write_figures(cur, version, "ope", settings.k, est)
        if np.isfinite(dr.value):
            cur.execute(load_sql("ope/estimate_upsert"), {
                "run_date": interval.run_date, "policy": run.model, "model_version": version, "estimator": "dr",
                "target": "return_d1", "predicted": dr.value, "ci_low": dr.ci_low, "ci_high": dr.ci_high,
                "n_units": dr.n, "ess": dr.ess, "weight_cap": cfg.weight_cap})
    if settings.gate_metric == DR_DIFF_GATE_METRIC:
        _estimate_difference_to_live(settings, run.model, version, logged, list_users, lists, items)
    manifest = OPEManifest(version, day_start.date().isoformat(), len(logged), dr.n, est["click"]["dr"].value,
                           dr.value, (dr.ci_low, dr.ci_high), dr.ess)
    logger.info("OPE of %s on %s: click DR %.4f, D1 return DR %.4f [%.4f, %.4f] (ESS %.0f of %d sessions)",
                version, manifest.logged_day, est["click"]["dr"].value, dr.value, dr.ci_low, dr.ci_high, dr.ess, dr.n)
    return manifest


def record_exposure(settings: Settings, version: str, score_path: str) -> Exposure:
    """Distinct items, coverage, Gini of exposure and top-item share of `version`'s scored lists over
    the items of its window (model_runs.n_items), into eval_metrics (subject 'model')."""
    with np.load(score_path) as scores:
        users, items = scores["user_id"], scores["item_id"]
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "eval_metrics", "model_runs")
        cur.execute(load_sql("ope/version_catalogue_size"), {"model_version": version})
        row = cur.fetchone()
        spread = exposure(users, items, (row[0] if row else None) or 0)
        for field_name, metric in EXPOSURE_METRICS.items():
            cur.execute(load_sql("ope/eval_metrics_write"), {
                "model_version": version, "subject": "model", "metric": metric, "k": settings.k,
                "value": float(getattr(spread, field_name)), "n_users": spread.users})
    logger.info("lists of %s: %d distinct items over %d users (coverage %.3f, Gini of exposure %.3f, the most "
                "listed item in %.0f%% of lists)", version, spread.distinct_items, spread.users, spread.coverage,
                spread.gini, 100 * spread.top_item_share)
    return spread


# What record_exposure writes to eval_metrics: Exposure field -> metric name.
EXPOSURE_METRICS = {"distinct_items": "distinct_items", "coverage": "coverage", "gini": "exposure_gini",
                    "top_item_share": "top_item_share"}


def estimate_for_gate(settings: Settings, interval: DataInterval, dataset_path: str, version: str,
                      score_path: str | None = None) -> OPEManifest | None:
    """`estimate_candidate` when the gate compares DR lower bounds (DR_GATE_METRICS), else None.

    The ranking gate needs no estimate, so a night on the default setting does not pay for one.
    """
    if settings.gate_metric not in DR_GATE_METRICS:
        return None
    return estimate_candidate(settings, interval, dataset_path, version, score_path)


def stored_return_estimate(settings: Settings, version: str, day: date, subject: str = "ope") -> ReturnEstimate | None:
    """The DR return-rate estimate of `version` stored under `subject` (at K), or None."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "eval_metrics")
        cur.execute(load_sql("ope/return_estimate_read"), {"model_version": version, "subject": subject,
                                                            "k": settings.k})
        value, low, high, ess, n = cur.fetchone()
    if value is None:
        return None
    return ReturnEstimate(version, day.isoformat(), value, value if low is None else low,
                          value if high is None else high, int(n), ess)


def champion_return_estimate(settings: Settings, run_date: date, champion_version: str) -> ReturnEstimate | None:
    """The DR return-rate estimate of the live version on the logged day of the night of `run_date`.

    Evaluated from the lists the champion serves (its lists in `recommendations`)
    exactly as `estimate_candidate` evaluates a candidate, stored under the champion's
    version with subject `ope@<logged day>` and read back from there on a later call
    (a retried gate), so both sides of the DR gate are figures on the same day. Logged
    users the champion has no list for get its most frequent listed items (the
    convention of `recsys.metrics.off_policy.evaluate_list_policy`).

    Returns:
        None when the day has no logged impressions with propensities or the champion
        has no full top-K list for any of that day's users (e.g. published with a smaller K).
    """
    day = logged_day(run_date)
    subject = f"ope@{day.isoformat()}"
    stored = stored_return_estimate(settings, champion_version, day, subject)
    if stored is not None:
        logger.info("champion %s: DR return estimate on %s read from eval_metrics", champion_version, day)
        return stored
    logged = read_logged_day(settings, _day_start(day))
    if logged.empty:
        return None
    served = _served_lists(settings, champion_version, logged)
    if served is None:
        return None
    list_users, lists = served
    est = _evaluate(settings, logged, list_users, lists, lists.ravel())
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "eval_metrics")
        _write_figures(cur, champion_version, subject, settings.k, est)
    dr = est["return"]["dr"]
    logger.info("champion %s on %s (%d listed users): D1 return DR %.4f [%.4f, %.4f] (ESS %.0f of %d sessions)",
                champion_version, day, len(list_users), dr.value, dr.ci_low, dr.ci_high, dr.ess, dr.n)
    if not np.isfinite(dr.value):
        return None
    return ReturnEstimate(champion_version, day.isoformat(), dr.value, dr.ci_low, dr.ci_high, dr.n, dr.ess)


def _served_lists(settings: Settings, version: str, logged: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """`version`'s published full top-K lists of the logged users, or None when it has none."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "recommendations")
        cur.execute(load_sql("ope/version_lists"), {"model_version": version, "k": settings.k,
                                                     "users": [int(u) for u in np.unique(logged["user_id"])]})
        rows = np.array(cur.fetchall(), dtype=np.int64).reshape(-1, 3)
    list_users, lists = _full_lists(rows[:, 0], rows[:, 2], settings.k)
    if len(list_users) == 0:
        logger.warning("%s has no full top-%d list for the users logged that day: no estimate", version, settings.k)
        return None
    return list_users, lists


def difference_subject(live_version: str) -> str:
    """eval_metrics subject of a challenger's paired DR estimate of (its return rate - `live_version`'s)."""
    return f"ope_diff@{live_version}"


def _estimate_difference_to_live(settings: Settings, model: str, version: str, logged: pd.DataFrame,
                                 list_users: np.ndarray, lists: np.ndarray, listed_items: np.ndarray) -> None:
    """The paired DR estimate of `version`'s D1 return rate minus the live version's, stored.

    Both policies are evaluated on the same logged sessions with the same bootstrap
    resamples (`recsys.metrics.off_policy.list_policy_return_difference`), so the shared part of their
    errors cancels: a retrained model whose lists mostly match the live ones gets a
    narrow interval around a small difference, where its own interval alone would be
    as wide as the day's noise. Stored under subject `ope_diff@<live version>` with the
    metric names of a return estimate (dr_return, _ci_low, _ci_high, _ess), for the gate.
    """
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "live_models")
        cur.execute(load_sql("ope/live_version_read"), {"model": model})
        row = cur.fetchone()
    live = row[0] if row else None
    if live is None or live == version:
        return
    served = _served_lists(settings, live, logged)
    if served is None:
        return
    cfg = settings.ope
    diff = ope.list_policy_return_difference(
        logged["user_id"].to_numpy(np.int64), logged["item_id"].to_numpy(np.int64),
        logged["session_id"].to_numpy(np.int64), logged["propensity"].to_numpy(np.float64),
        logged["returned"].to_numpy(np.float64), (list_users, lists), served,
        _catalogue_size(settings, np.r_[listed_items, served[1].ravel()], logged), cfg.explore, cfg.weight_cap,
        cfg.n_bootstrap, cfg.seed, cfg.session_weight)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        _write_figures(cur, version, difference_subject(live), settings.k, {"return": {"dr": diff}})
    logger.info("OPE of %s against live %s: D1 return difference DR %.4f [%.4f, %.4f] (%d sessions)",
                version, live, diff.value, diff.ci_low, diff.ci_high, diff.n)


def _full_lists(users: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(m,) sorted users with a full list and their (m, k) item ids, from rows sorted by (user, rank)."""
    list_users, start = np.unique(users, return_index=True)
    full = np.diff(np.r_[start, len(users)]) == k
    lists = np.stack([items[s:s + k] for s in start[full]]) if full.any() else np.empty((0, k), np.int64)
    return list_users[full], lists


def _evaluate(settings: Settings, logged: pd.DataFrame, list_users: np.ndarray, lists: np.ndarray,
              listed_items: np.ndarray) -> dict[str, dict[str, ope.Estimate]]:
    n_items = _catalogue_size(settings, listed_items, logged)
    cfg = settings.ope
    return ope.evaluate_list_policy(
        logged["user_id"].to_numpy(np.int64), logged["item_id"].to_numpy(np.int64),
        logged["session_id"].to_numpy(np.int64), logged["propensity"].to_numpy(np.float64),
        logged["clicked"].to_numpy(np.float64), logged["returned"].to_numpy(np.float64),
        list_users, lists, n_items, cfg.explore, cfg.weight_cap, cfg.n_bootstrap, cfg.seed, cfg.session_weight)


def _catalogue_size(settings: Settings, listed_items: np.ndarray, logged: pd.DataFrame) -> int:
    """Items the exploration draw can show: the catalogue, or more if lists or the log name others."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(load_sql("ope/catalogue_size"))
        return max(int(cur.fetchone()[0]), int(np.unique(np.r_[listed_items, logged["item_id"]]).size))


def _write_figures(cur, version: str, subject: str, k: int,  # noqa: ANN001 - psycopg2 cursor
                   est: dict[str, dict[str, ope.Estimate]]) -> None:
    for target, by_estimator in est.items():
        for name, e in by_estimator.items():
            for suffix, value in (("", e.value), ("_ci_low", e.ci_low), ("_ci_high", e.ci_high), ("_ess", e.ess)):
                if np.isfinite(value):
                    cur.execute(load_sql("ope/eval_metrics_write"), {
                        "model_version": version, "subject": subject, "metric": f"{name}_{target}{suffix}",
                        "k": k, "value": float(value), "n_users": e.n})


def record_realised(settings: Settings) -> int:
    """Fill `realised` of every estimate whose serving arm's D1 cell has matured; returns rows updated."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "ope_estimates", "model_retention")
        cur.execute(load_sql("ope/realised_update"))
        return cur.rowcount
