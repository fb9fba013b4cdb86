-- retention/cells_mature: the classic N-day retention cells that the newest
-- day's activity completes: for each N, cohort c = newest_day - N.
-- Grain: one row per (retention_kind, cohort_date, day_n) in retention.
--   cohort_size     users whose first active day is c
--   retained_users  of them, users active on exactly day c + N
--   rate            retained_users / cohort_size
--   is_mature       true
-- Cohorts of size 0 produce no row (and a row left by data since removed is deleted).
-- Returns one row: cells_written, cells_deleted.
-- Parameters:
--   %(kind)s            text, retention_kind ('classic')
--   %(newest_day)s      date, run_date - 1
--   %(retention_days)s  integer[], the N of the cells
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh); dashboards read retention.
WITH horizons AS (
    SELECT DISTINCT n AS day_n
    FROM unnest(%(retention_days)s::integer[]) AS n
),
targets AS (
    SELECT h.day_n, %(newest_day)s::date - h.day_n AS cohort_date
    FROM horizons AS h
),
members AS (
    SELECT t.cohort_date, t.day_n, uc.user_id
    FROM targets AS t
    JOIN user_cohorts AS uc ON uc.cohort_date = t.cohort_date
),
cells AS (
    SELECT m.cohort_date, m.day_n,
           count(*) AS cohort_size,
           count(a.user_id) AS retained_users
    FROM members AS m
    LEFT JOIN user_activity_days AS a
      ON a.user_id = m.user_id AND a.day = m.cohort_date + m.day_n
    GROUP BY m.cohort_date, m.day_n
),
written AS (
    INSERT INTO retention AS r
        (retention_kind, cohort_date, day_n, cohort_size, retained_users, rate, is_mature, computed_at)
    SELECT %(kind)s, c.cohort_date, c.day_n, c.cohort_size, c.retained_users,
           c.retained_users::double precision / c.cohort_size, true, now()
    FROM cells AS c
    ON CONFLICT (retention_kind, cohort_date, day_n) DO UPDATE
        SET cohort_size    = EXCLUDED.cohort_size,
            retained_users = EXCLUDED.retained_users,
            rate           = EXCLUDED.rate,
            is_mature      = true,
            computed_at    = EXCLUDED.computed_at
    RETURNING 1
),
emptied AS (
    -- Disjoint from `written`: only targets without a cell.
    DELETE FROM retention AS r
    USING targets AS t
    WHERE r.retention_kind = %(kind)s
      AND r.cohort_date = t.cohort_date
      AND r.day_n = t.day_n
      AND NOT EXISTS (SELECT 1 FROM cells AS c WHERE c.cohort_date = t.cohort_date AND c.day_n = t.day_n)
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM written) AS cells_written,
    (SELECT count(*) FROM emptied) AS cells_deleted;
