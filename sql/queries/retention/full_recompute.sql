-- retention/full_recompute: every classic and rolling N-day retention cell of
-- the cohorts before as_of, computed from scratch from full_active_days (the
-- log's active days, see retention/full_source_days.sql).
-- Grain: one row per (retention_kind, cohort_date, day_n) in retention, for
--   both kinds, every non-empty cohort c < as_of and every N:
--   mature iff c + N <= as_of - 1; otherwise retained_users and rate are NULL
--   and is_mature is false.
--   classic: retained = members active on exactly day c + N
--   rolling: retained = members active on day c + N or any later day < as_of
-- Parameters:
--   %(newest_day)s      date, as_of - 1
--   %(retention_days)s  integer[], the N of the cells
-- Read by: recsys.stages.retention.full_recompute (in recsys.stages.retention._write_full) (repairs, and the tests and the
--   benchmark comparing it with the incremental refresh).
WITH users AS (
    SELECT a.user_id, min(a.day) AS cohort_date, max(a.day) AS last_day
    FROM full_active_days AS a
    GROUP BY a.user_id
),
cohort_sizes AS (
    SELECT u.cohort_date, count(*) AS cohort_size
    FROM users AS u
    GROUP BY u.cohort_date
),
horizons AS (
    SELECT DISTINCT n AS day_n
    FROM unnest(%(retention_days)s::integer[]) AS n
),
classic AS (
    SELECT u.cohort_date, h.day_n, count(*) AS retained_users
    FROM users AS u
    CROSS JOIN horizons AS h
    JOIN full_active_days AS a
      ON a.user_id = u.user_id AND a.day = u.cohort_date + h.day_n
    GROUP BY u.cohort_date, h.day_n
),
rolling AS (
    SELECT u.cohort_date, h.day_n, count(*) AS retained_users
    FROM users AS u
    CROSS JOIN horizons AS h
    WHERE u.last_day >= u.cohort_date + h.day_n
    GROUP BY u.cohort_date, h.day_n
),
cells AS (
    SELECT k.kind, s.cohort_date, h.day_n, s.cohort_size,
           s.cohort_date + h.day_n <= %(newest_day)s::date AS is_mature,
           COALESCE(CASE k.kind WHEN 'classic' THEN c.retained_users ELSE r.retained_users END, 0)
               AS retained_users
    FROM cohort_sizes AS s
    CROSS JOIN horizons AS h
    CROSS JOIN (VALUES ('classic'), ('rolling')) AS k(kind)
    LEFT JOIN classic AS c ON c.cohort_date = s.cohort_date AND c.day_n = h.day_n
    LEFT JOIN rolling AS r ON r.cohort_date = s.cohort_date AND r.day_n = h.day_n
)
INSERT INTO retention
    (retention_kind, cohort_date, day_n, cohort_size, retained_users, rate, is_mature, computed_at)
SELECT c.kind, c.cohort_date, c.day_n, c.cohort_size,
       CASE WHEN c.is_mature THEN c.retained_users END,
       CASE WHEN c.is_mature THEN c.retained_users::double precision / c.cohort_size END,
       c.is_mature, now()
FROM cells AS c;
