"""OPE stage: off-policy estimates of a candidate's click and return rates, checked later.

`estimate_candidate(settings, interval, dataset_path, version)` evaluates the candidate
version's top-K lists (its scores artifact, as `recsys.scoring.score_shard` makes it)
on the logged impressions of day D-2 of the night's as-of date D: the newest day
whose next day (D-1, the return outcome) is in the log. Target policy: the lists with
the configured per-slot exploration (`settings.ope.explore`); estimators IPS, SNIPS
and DR with per-item mean reward models, weights clipped at `settings.ope.weight_cap`,
cluster-bootstrap intervals by user (`recsys.ope.evaluate_list_policy`).

Writes every figure to `eval_metrics` (subject `ope`, metric `<estimator>_<target>`
plus `_ci_low`, `_ci_high`, `_ess`) and the DR return-rate estimate with its interval
to `ope_estimates`. `record_realised` later fills `realised` with the D1 retention of
the users that version served on its as-of date (model_retention), so predicted and
realised sit side by side (the UI's OPE panel).

Caveats, said plainly: the candidate was trained on data that includes the evaluated
day, and its lists are today's lists applied to yesterday's users (the state has moved
on by a day); the estimate is a screening figure, which is why its realised outcome is
stored next to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta, timezone

import numpy as np
import pandas as pd
from psycopg2 import sql

from recsys import ope
from recsys.config import Settings
from recsys.db import copy_out, load_sql, raw_connection, require_tables
from recsys.extract import source_name
from recsys.interval import DataInterval
from recsys.registry import get_run
from recsys.scoring import score_shard

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


def read_logged_day(settings: Settings, day_start: datetime) -> pd.DataFrame:
    schema, table = source_name(settings)
    params = {"day_start": day_start, "day_end": day_start + timedelta(days=1),
              "next_end": day_start + timedelta(days=2), "active_types": list(settings.active_event_types)}
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, schema, table)
        buf = copy_out(cur, sql.SQL(load_sql("ope_logged_impressions")).format(source=sql.Identifier(schema, table)),
                       params)
    return pd.read_csv(buf, header=None, names=["user_id", "item_id", "session_id", "propensity", "model_version",
                                                "clicked", "returned"], na_values=[""], keep_default_na=False)


def estimate_candidate(settings: Settings, interval: DataInterval, dataset_path: str, version: str,
                       score_path: str | None = None) -> OPEManifest:
    """Estimate `version`'s click and D1 return rates on the logged day D-2 and store them."""
    run = get_run(settings, version)
    day_start = datetime.combine(interval.run_date - timedelta(days=2), dtime(0), tzinfo=timezone.utc)
    logged = read_logged_day(settings, day_start)
    if logged.empty:
        logger.warning("OPE of %s: no logged impressions with propensities on %s", version, day_start.date())
        return OPEManifest(version, day_start.date().isoformat(), 0, 0, None, None, None, None)
    path = score_path or score_shard(settings, dataset_path, version).path
    with np.load(path) as scores:
        order = np.lexsort((scores["rank"], scores["user_id"]))
        users, items = scores["user_id"][order], scores["item_id"][order]
    list_users, start = np.unique(users, return_index=True)
    full = np.diff(np.r_[start, len(users)]) == settings.k
    lists = np.stack([items[s:s + settings.k] for s in start[full]]) if full.any() else \
        np.empty((0, settings.k), np.int64)
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM items")
        n_items = max(int(cur.fetchone()[0]), int(np.unique(np.r_[items, logged["item_id"]]).size))
    cfg = settings.ope
    est = ope.evaluate_list_policy(
        logged["user_id"].to_numpy(np.int64), logged["item_id"].to_numpy(np.int64),
        logged["session_id"].to_numpy(np.int64), logged["propensity"].to_numpy(np.float64),
        logged["clicked"].to_numpy(np.float64), logged["returned"].to_numpy(np.float64),
        list_users[full], lists, n_items, cfg.explore, cfg.weight_cap, cfg.n_bootstrap, cfg.seed)
    dr = est["return"]["dr"]
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "ope_estimates", "eval_metrics")
        for target, by_estimator in est.items():
            for name, e in by_estimator.items():
                for suffix, value in (("", e.value), ("_ci_low", e.ci_low), ("_ci_high", e.ci_high), ("_ess", e.ess)):
                    if np.isfinite(value):
                        cur.execute(load_sql("ope_eval_metrics_write"), {
                            "model_version": version, "metric": f"{name}_{target}{suffix}", "k": settings.k,
                            "value": float(value), "n_users": e.n})
        if np.isfinite(dr.value):
            cur.execute(load_sql("ope_estimate_upsert"), {
                "run_date": interval.run_date, "policy": run.model, "model_version": version, "estimator": "dr",
                "target": "return_d1", "predicted": dr.value, "ci_low": dr.ci_low, "ci_high": dr.ci_high,
                "n_units": dr.n, "ess": dr.ess, "weight_cap": cfg.weight_cap})
    manifest = OPEManifest(version, day_start.date().isoformat(), len(logged), dr.n, est["click"]["dr"].value,
                           dr.value, (dr.ci_low, dr.ci_high), dr.ess)
    logger.info("OPE of %s on %s: click DR %.4f, D1 return DR %.4f [%.4f, %.4f] (ESS %.0f of %d sessions)",
                version, manifest.logged_day, est["click"]["dr"].value, dr.value, dr.ci_low, dr.ci_high, dr.ess, dr.n)
    return manifest


def record_realised(settings: Settings) -> int:
    """Fill `realised` of every estimate whose serving arm's D1 cell has matured; returns rows updated."""
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "ope_estimates", "model_retention")
        cur.execute(load_sql("ope_realised_update"))
        return cur.rowcount
