-- retention/model_retention_full_recompute: every per-model retention cell of the serve
-- days before as_of, from full_served_days and full_active_days (read from the
-- log, see retention/full_source_days.sql).
-- Grain: one row per (model_version, serve_day, day_n) in model_retention
--   (columns as in retention/model_retention_cells_mature.sql): mature iff
--   serve_day + N <= as_of - 1, otherwise retained_users, rate and the
--   interval are NULL and is_mature is false.
-- Parameters:
--   %(newest_day)s      date, as_of - 1
--   %(retention_days)s  integer[], the N of the cells
-- Read by: recsys.stages.retention.full_recompute (in recsys.stages.retention._write_full).
WITH horizons AS (
    SELECT DISTINCT n AS day_n
    FROM unnest(%(retention_days)s::integer[]) AS n
),
served AS (
    SELECT s.model_version, s.day AS serve_day, count(*) AS users_served
    FROM full_served_days AS s
    GROUP BY s.model_version, s.day
),
retained AS (
    SELECT s.model_version, s.day AS serve_day, h.day_n, count(*) AS retained_users
    FROM full_served_days AS s
    CROSS JOIN horizons AS h
    JOIN full_active_days AS a ON a.user_id = s.user_id AND a.day = s.day + h.day_n
    GROUP BY s.model_version, s.day, h.day_n
),
cells AS (
    SELECT s.model_version, s.serve_day, h.day_n, s.users_served,
           s.serve_day + h.day_n <= %(newest_day)s::date AS is_mature,
           COALESCE(r.retained_users, 0) AS retained_users
    FROM served AS s
    CROSS JOIN horizons AS h
    LEFT JOIN retained AS r
      ON r.model_version = s.model_version AND r.serve_day = s.serve_day AND r.day_n = h.day_n
)
INSERT INTO model_retention
    (model_version, serve_day, day_n, users_served, retained_users, rate, ci_low, ci_high,
     is_mature, computed_at)
SELECT c.model_version, c.serve_day, c.day_n, c.users_served,
       CASE WHEN c.is_mature THEN c.retained_users END,
       CASE WHEN c.is_mature THEN c.retained_users::double precision / c.users_served END,
       CASE WHEN c.is_mature THEN w.low END,
       CASE WHEN c.is_mature THEN w.high END,
       c.is_mature, now()
FROM cells AS c
CROSS JOIN LATERAL wilson_interval(c.retained_users, c.users_served) AS w;
