-- retention/cells_rolling: rolling (unbounded) N-day retention cells of the
-- cohorts this run may have changed.
-- Grain: one row per (retention_kind = 'rolling', cohort_date, day_n) in retention.
--   cohort_size     users whose first active day is c (now)
--   retained_users  of them, users active on day c + N or on any later day
--                   loaded so far (user_cohorts.last_day >= c + N)
--   rate            retained_users / cohort_size
--   is_mature       as the classic cell (c, N): day c + N has been observed
-- The rolling cells mirror the classic keys: (c, N) has a rolling row iff it
-- has a classic row and cohort c is not empty, with the same maturity; so they
-- appear and mature on the same runs, whatever the order of the runs.
-- Target cohorts: the classic cells just written (newest_day - N and
-- newest_day) and every cohort in retention_touched_cohorts (a member's first
-- or last day moved). A rolling value depends only on its cohort's members'
-- last days, so no other cell can have changed. Rows are rewritten only when
-- their value changed.
-- Returns one row: cells_written, cells_deleted.
-- Parameters:
--   %(newest_day)s      date, run_date - 1
--   %(retention_days)s  integer[], the N of this run's classic cells
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh), after retention/cells_mature.sql
--   and retention/cells_placeholders.sql; dashboards read retention.
WITH target_cohorts AS (
    SELECT t.cohort_date FROM retention_touched_cohorts AS t
    UNION
    SELECT %(newest_day)s::date - n FROM unnest(%(retention_days)s::integer[]) AS n
    UNION
    SELECT %(newest_day)s::date
),
sizes AS (
    SELECT uc.cohort_date, count(*) AS cohort_size
    FROM target_cohorts AS t
    JOIN user_cohorts AS uc ON uc.cohort_date = t.cohort_date
    GROUP BY uc.cohort_date
),
cells AS (
    SELECT r.cohort_date, r.day_n, s.cohort_size, r.is_mature,
           CASE WHEN r.is_mature THEN (
               SELECT count(*)
               FROM user_cohorts AS uc
               WHERE uc.cohort_date = r.cohort_date
                 AND uc.last_day >= r.cohort_date + r.day_n
           ) END AS retained_users
    FROM retention AS r
    JOIN sizes AS s ON s.cohort_date = r.cohort_date
    WHERE r.retention_kind = 'classic'
),
written AS (
    INSERT INTO retention AS r
        (retention_kind, cohort_date, day_n, cohort_size, retained_users, rate, is_mature, computed_at)
    SELECT 'rolling', c.cohort_date, c.day_n, c.cohort_size, c.retained_users,
           c.retained_users::double precision / c.cohort_size, c.is_mature, now()
    FROM cells AS c
    ON CONFLICT (retention_kind, cohort_date, day_n) DO UPDATE
        SET cohort_size    = EXCLUDED.cohort_size,
            retained_users = EXCLUDED.retained_users,
            rate           = EXCLUDED.rate,
            is_mature      = EXCLUDED.is_mature,
            computed_at    = EXCLUDED.computed_at
        WHERE (r.cohort_size, r.retained_users, r.is_mature)
              IS DISTINCT FROM (EXCLUDED.cohort_size, EXCLUDED.retained_users, EXCLUDED.is_mature)
    RETURNING 1
),
stale AS (
    -- Disjoint from `written`: rows of target cohorts without a cell.
    DELETE FROM retention AS r
    USING target_cohorts AS t
    WHERE r.retention_kind = 'rolling'
      AND r.cohort_date = t.cohort_date
      AND NOT EXISTS (SELECT 1 FROM cells AS c WHERE c.cohort_date = r.cohort_date AND c.day_n = r.day_n)
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM written) AS cells_written,
    (SELECT count(*) FROM stale) AS cells_deleted;
