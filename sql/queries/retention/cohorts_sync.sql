-- retention/cohorts_sync: keep user_cohorts (user -> first and last active
-- day) in step with the days just (re)loaded into user_activity_days, and note
-- the cohorts whose rolling retention may have changed.
-- Grain: one row per user in user_cohorts. Returns one row:
--   cohorts_written  users inserted, moved to another cohort, or with a new last day
--   cohorts_dropped  users removed because they have no activity left
--   cohorts_touched  cohort days noted in retention_touched_cohorts
-- Touched users are those active on a reloaded day and those whose first or
-- last day is a reloaded day (a corrected day may have lost that activity).
-- For them first and last day are min/max(day) over user_activity_days, which
-- holds every loaded day, so the result is exact whatever the order of runs.
-- A user whose first or last day changed, or who was dropped, marks both the
-- old and the new cohort in the temporary table retention_touched_cohorts
-- (created by the caller, dropped at commit): those cohorts' rolling cells
-- are recomputed by retention/cells_rolling.sql.
-- Parameters:
--   %(reload_from)s date, first day reloaded (NULL on the first run: all users)
--   %(run_date)s    date, exclusive end of the reloaded days
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh); the cell queries read user_cohorts.
WITH touched AS (
    SELECT a.user_id
    FROM user_activity_days AS a
    WHERE a.day >= COALESCE(%(reload_from)s::date, '-infinity'::date)
      AND a.day < %(run_date)s::date
    UNION
    SELECT uc.user_id
    FROM user_cohorts AS uc
    WHERE uc.cohort_date >= COALESCE(%(reload_from)s::date, '-infinity'::date)
      AND uc.cohort_date < %(run_date)s::date
    UNION
    SELECT uc.user_id
    FROM user_cohorts AS uc
    WHERE uc.last_day >= COALESCE(%(reload_from)s::date, '-infinity'::date)
      AND uc.last_day < %(run_date)s::date
),
span AS (
    SELECT t.user_id, min(a.day) AS cohort_date, max(a.day) AS last_day
    FROM touched AS t
    JOIN user_activity_days AS a ON a.user_id = t.user_id
    GROUP BY t.user_id
),
before AS (
    -- Every CTE sees the table as it was before this statement.
    SELECT uc.user_id, uc.cohort_date, uc.last_day
    FROM touched AS t
    JOIN user_cohorts AS uc ON uc.user_id = t.user_id
),
changed AS (
    SELECT s.user_id, s.cohort_date, s.last_day, b.cohort_date AS old_cohort_date
    FROM span AS s
    LEFT JOIN before AS b ON b.user_id = s.user_id
    WHERE b.user_id IS NULL OR b.cohort_date <> s.cohort_date OR b.last_day <> s.last_day
),
gone AS (
    SELECT b.user_id, b.cohort_date
    FROM before AS b
    WHERE NOT EXISTS (SELECT 1 FROM span AS s WHERE s.user_id = b.user_id)
),
written AS (
    INSERT INTO user_cohorts AS uc (user_id, cohort_date, last_day)
    SELECT c.user_id, c.cohort_date, c.last_day
    FROM changed AS c
    ON CONFLICT (user_id) DO UPDATE
        SET cohort_date = EXCLUDED.cohort_date,
            last_day    = EXCLUDED.last_day
    RETURNING 1
),
dropped AS (
    -- Disjoint from `written`: these users have no row in span.
    DELETE FROM user_cohorts AS uc
    USING gone AS g
    WHERE uc.user_id = g.user_id
    RETURNING 1
),
marked AS (
    INSERT INTO retention_touched_cohorts (cohort_date)
    SELECT c.cohort_date FROM changed AS c
    UNION
    SELECT c.old_cohort_date FROM changed AS c WHERE c.old_cohort_date IS NOT NULL
    UNION
    SELECT g.cohort_date FROM gone AS g
    ON CONFLICT (cohort_date) DO NOTHING
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM written) AS cohorts_written,
    (SELECT count(*) FROM dropped) AS cohorts_dropped,
    (SELECT count(*) FROM marked) AS cohorts_touched;
