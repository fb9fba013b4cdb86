"""Rows of every table the Recsys page reads, for tests/ui (imported as `uidata`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from recsys.db import engine as db
from recsys.config import Settings

FIRST_RUN = date(2026, 3, 1)
RUN_DATES = [FIRST_RUN + timedelta(days=i) for i in range(8)]
NDCG = [0.101, 0.118, 0.112, 0.127, 0.135, 0.131, 0.142, 0.150]  # model's; popularity's is half
RECALL = [0.201, 0.224, 0.219, 0.240, 0.251, 0.247, 0.262, 0.270]
COHORTS = [date(2026, 2, 22) + timedelta(days=i) for i in range(16)]  # newest cohort: 2026-03-09
AS_OF = date(2026, 3, 10)  # cells whose day cohort + N is before this are mature
WIGGLE = [0, 2, -1, 3, 1, -2, 2, 0, 3, -1, 1, 2, -2, 0, 1, 3]


def _ts(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def has_table(settings: Settings, table: str) -> bool:
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"{settings.schema}.{table}",))
        return cur.fetchone()[0] is not None


def seed(settings: Settings) -> None:
    """Registry rows, hold-out metrics, a live model, classic retention and (when present) per-model retention."""
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        for i, d in enumerate(RUN_DATES):
            version = f"mf_als@{d.isoformat()}"
            status = "published" if i == len(RUN_DATES) - 1 else "superseded"
            ndcg, recall = NDCG[i], RECALL[i]
            cur.execute(
                "INSERT INTO model_runs (model, model_kind, model_version, run_date, data_interval_start,"
                " data_interval_end, train_window_start, n_interactions, n_users, n_items, metrics, status,"
                " triggered_by, published_at) VALUES ('mf_als', 'mf', %s, %s, %s, %s, %s, 5000, 300, 120,"
                " %s::jsonb, %s, 'scheduled', %s)",
                (version, d, _ts(d - timedelta(days=1)), _ts(d), _ts(d - timedelta(days=90)),
                 f'{{"ndcg@10": {ndcg}, "recall@10": {recall}}}', status, _ts(d) + timedelta(hours=1)))
            for subject, scale in (("model", 1.0), ("popularity", 0.5)):
                for metric, value in (("ndcg", ndcg), ("recall", recall)):
                    cur.execute("INSERT INTO eval_metrics VALUES (%s, %s, %s, 10, %s, 80)",
                                (version, subject, metric, value * scale))
        cur.execute("INSERT INTO model_runs (model, model_kind, model_version, run_date, data_interval_start,"
                    " data_interval_end, train_window_start, status) VALUES ('mf_bpr', 'mf', 'mf_bpr@2026-03-08',"
                    " '2026-03-08', %s, %s, %s, 'rejected')",
                    (_ts(RUN_DATES[-1] - timedelta(days=1)), _ts(RUN_DATES[-1]), _ts(RUN_DATES[-1] - timedelta(days=90))))
        last = RUN_DATES[-1]
        cur.execute("INSERT INTO live_models VALUES ('mf_als', %s, %s, %s)",
                    (f"mf_als@{last.isoformat()}", last, _ts(last) + timedelta(hours=1)))
        for j, cohort in enumerate(COHORTS):
            size = 100 + j
            for n in (1, 7):
                mature = cohort + timedelta(days=n) < AS_OF
                kept = (30 - j // 2 + WIGGLE[j]) // (1 if n == 1 else 2) if mature else None
                cur.execute("INSERT INTO retention (retention_kind, cohort_date, day_n, cohort_size, retained_users,"
                            " rate, is_mature) VALUES ('classic', %s, %s, %s, %s, %s, %s)",
                            (cohort, n, size, kept, None if kept is None else kept / size, mature))
        if has_table(settings, "model_retention"):
            for j, serve_day in enumerate(COHORTS[:12]):
                for model, base in (("mf_als", 30), ("rl_reinforce", 36)):
                    for n in (1, 7):
                        served = 200 + 10 * j
                        kept = (base + j + WIGGLE[j] * (1 if model == "mf_als" else -1)) // (1 if n == 1 else 2)
                        cur.execute(
                            "INSERT INTO model_retention (model_version, serve_day, day_n, users_served,"
                            " retained_users, rate, ci_low, ci_high, is_mature)"
                            " SELECT %s, %s, %s, %s, %s, %s, w.low, w.high, true FROM wilson_interval(%s, %s) AS w",
                            (f"{model}@{serve_day.isoformat()}", serve_day, n, served, kept, kept / served,
                             kept, served))

