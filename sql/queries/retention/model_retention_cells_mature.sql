-- retention/model_retention_cells_mature: the per-model retention cells that the newest
-- day's activity completes: for each N, serve day d = newest_day - N.
-- Grain: one row per (model_version, serve_day, day_n) in model_retention.
--   users_served    distinct users shown an impression by model_version on d
--   retained_users  of them, users active on exactly day d + N
--   rate            retained_users / users_served
--   ci_low, ci_high Wilson 95 percent interval of rate (wilson_interval())
--   is_mature       true
-- A model with no user served on d has no row (a row left by data since
-- removed is deleted).
-- Returns one row: cells_written, cells_deleted.
-- Parameters:
--   %(newest_day)s      date, run_date - 1
--   %(retention_days)s  integer[], the N of the cells
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh); ab/model_retention_compare.sql and
--   dashboards read model_retention.
WITH targets AS (
    SELECT DISTINCT n AS day_n, %(newest_day)s::date - n AS serve_day
    FROM unnest(%(retention_days)s::integer[]) AS n
),
cells AS (
    SELECT t.serve_day, t.day_n, s.model_version,
           count(*) AS users_served,
           count(a.user_id) AS retained_users
    FROM targets AS t
    JOIN user_model_days AS s ON s.day = t.serve_day
    LEFT JOIN user_activity_days AS a
      ON a.user_id = s.user_id AND a.day = t.serve_day + t.day_n
    GROUP BY t.serve_day, t.day_n, s.model_version
),
written AS (
    INSERT INTO model_retention AS m
        (model_version, serve_day, day_n, users_served, retained_users, rate, ci_low, ci_high,
         is_mature, computed_at)
    SELECT c.model_version, c.serve_day, c.day_n, c.users_served, c.retained_users,
           c.retained_users::double precision / c.users_served, w.low, w.high, true, now()
    FROM cells AS c
    CROSS JOIN LATERAL wilson_interval(c.retained_users, c.users_served) AS w
    ON CONFLICT (model_version, serve_day, day_n) DO UPDATE
        SET users_served   = EXCLUDED.users_served,
            retained_users = EXCLUDED.retained_users,
            rate           = EXCLUDED.rate,
            ci_low         = EXCLUDED.ci_low,
            ci_high        = EXCLUDED.ci_high,
            is_mature      = true,
            computed_at    = EXCLUDED.computed_at
    RETURNING 1
),
emptied AS (
    -- Disjoint from `written`: only target rows of models without a cell.
    DELETE FROM model_retention AS m
    USING targets AS t
    WHERE m.serve_day = t.serve_day
      AND m.day_n = t.day_n
      AND NOT EXISTS (
          SELECT 1 FROM cells AS c
          WHERE c.serve_day = m.serve_day AND c.day_n = m.day_n AND c.model_version = m.model_version)
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM written) AS cells_written,
    (SELECT count(*) FROM emptied) AS cells_deleted;
