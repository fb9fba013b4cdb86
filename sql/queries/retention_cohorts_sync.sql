-- retention_cohorts_sync: keep user_cohorts (user -> day of first activity) in
-- step with the days just (re)loaded into user_activity_days.
-- Grain: one row per user in user_cohorts. Returns one row:
--   cohorts_written  users inserted or moved to another cohort
--   cohorts_dropped  users removed because they have no activity left
-- Touched users are those active on a reloaded day and those whose cohort is
-- a reloaded day (a corrected day may have lost their first activity). For
-- them the cohort is min(day) over user_activity_days, which holds every day
-- before the run: LEAST(existing cohort, new first day) when events were only
-- added, and still exact when a corrected day lost events.
-- Parameters:
--   %(reload_from)s date, first day reloaded (NULL on the first run: all users)
--   %(run_date)s    date, exclusive end of the reloaded days
-- Read by: recsys.retention.refresh_retention; the cell queries read user_cohorts.
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
),
first_days AS (
    SELECT t.user_id, min(a.day) AS cohort_date
    FROM touched AS t
    JOIN user_activity_days AS a ON a.user_id = t.user_id
    GROUP BY t.user_id
),
written AS (
    INSERT INTO user_cohorts AS uc (user_id, cohort_date)
    SELECT f.user_id, f.cohort_date
    FROM first_days AS f
    ON CONFLICT (user_id) DO UPDATE
        SET cohort_date = EXCLUDED.cohort_date
        WHERE uc.cohort_date <> EXCLUDED.cohort_date
    RETURNING 1
),
dropped AS (
    -- Disjoint from `written`: these users have no row in first_days.
    DELETE FROM user_cohorts AS uc
    USING touched AS t
    WHERE uc.user_id = t.user_id
      AND NOT EXISTS (SELECT 1 FROM user_activity_days AS a WHERE a.user_id = t.user_id)
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM written) AS cohorts_written,
    (SELECT count(*) FROM dropped) AS cohorts_dropped;
