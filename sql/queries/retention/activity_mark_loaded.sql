-- retention/activity_mark_loaded: record the days the activity sync just loaded.
-- Grain: one row per day in activity_days_loaded; rowcount = days recorded.
-- Parameters:
--   %(reload_from)s date, first day (re)loaded; NULL on the first run, which
--                   records from its first active day (or newest_day if none)
--   %(newest_day)s  date, run_date - 1 (re-recorded with a new loaded_at)
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh) (step 3 of the activity sync);
--   retention/sync_plan.sql reads the table on later runs.
WITH span AS (
    SELECT COALESCE(
        %(reload_from)s::date,
        LEAST((SELECT min(day) FROM user_activity_days), %(newest_day)s::date)
    ) AS first_day
),
days AS (
    SELECT span.first_day + offs.i AS day
    FROM span
    CROSS JOIN generate_series(0, %(newest_day)s::date - span.first_day) AS offs(i)
)
INSERT INTO activity_days_loaded (day, loaded_at)
SELECT d.day, now()
FROM days AS d
WHERE d.day = %(newest_day)s::date
   OR NOT EXISTS (SELECT 1 FROM activity_days_loaded AS l WHERE l.day = d.day)
ON CONFLICT (day) DO UPDATE SET loaded_at = EXCLUDED.loaded_at;
