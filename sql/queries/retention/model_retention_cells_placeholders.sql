-- retention/model_retention_cells_placeholders: immature per-model cells of the newest
-- serve day.
-- Grain: one row per (model_version, serve_day = newest_day, day_n) in
--   model_retention, with users_served known and retained_users, rate, ci_low,
--   ci_high NULL, is_mature false.
-- A mature cell is never touched (a backfill cannot turn it back into a
-- placeholder); an immature one only has users_served corrected. Immature
-- rows of models that no longer served anyone that day are deleted.
-- Returns one row: cells_written, cells_deleted.
-- Parameters:
--   %(newest_day)s      date, run_date - 1: the serve day that first appears in this run
--   %(retention_days)s  integer[], the N of the cells
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh) (after retention/model_retention_cells_mature.sql,
--   so an N = 0 cell, mature at once, is not overwritten).
WITH horizons AS (
    SELECT DISTINCT n AS day_n
    FROM unnest(%(retention_days)s::integer[]) AS n
),
served AS (
    SELECT s.model_version, count(*) AS users_served
    FROM user_model_days AS s
    WHERE s.day = %(newest_day)s::date
    GROUP BY s.model_version
),
written AS (
    INSERT INTO model_retention AS m
        (model_version, serve_day, day_n, users_served, retained_users, rate, ci_low, ci_high,
         is_mature, computed_at)
    SELECT s.model_version, %(newest_day)s::date, h.day_n, s.users_served,
           NULL, NULL, NULL, NULL, false, now()
    FROM served AS s
    CROSS JOIN horizons AS h
    ON CONFLICT (model_version, serve_day, day_n) DO UPDATE
        SET users_served = EXCLUDED.users_served,
            computed_at  = EXCLUDED.computed_at
        WHERE NOT m.is_mature AND m.users_served <> EXCLUDED.users_served
    RETURNING 1
),
emptied AS (
    DELETE FROM model_retention AS m
    WHERE m.serve_day = %(newest_day)s::date
      AND NOT m.is_mature
      AND NOT EXISTS (SELECT 1 FROM served AS s WHERE s.model_version = m.model_version)
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM written) AS cells_written,
    (SELECT count(*) FROM emptied) AS cells_deleted;
