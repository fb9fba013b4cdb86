-- retention/sync_plan: which days the activity sync of one run must (re)load.
-- Grain: one row.
--   reload_from  first day to (re)load into user_activity_days; NULL when no day
--                was ever loaded (first run: load the whole history before the run).
--                Otherwise the earliest day in [first loaded day, newest_day) not
--                recorded in activity_days_loaded, or newest_day itself, which
--                every run reloads to pick up corrections.
--   loaded_days  days recorded in activity_days_loaded before this run.
-- Parameters: %(newest_day)s date = run_date - 1, the newest day with data.
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh).
WITH loaded AS (
    SELECT min(day) AS first_loaded, count(*) AS loaded_days
    FROM activity_days_loaded
),
missing AS (
    -- Days before the first loaded day are covered: the first run loaded
    -- everything before its run date and recorded from its first active day on.
    SELECT min(loaded.first_loaded + offs.i) AS first_missing
    FROM loaded
    CROSS JOIN generate_series(0, %(newest_day)s::date - loaded.first_loaded - 1) AS offs(i)
    WHERE NOT EXISTS (
        SELECT 1 FROM activity_days_loaded AS l WHERE l.day = loaded.first_loaded + offs.i
    )
)
SELECT
    CASE WHEN loaded.first_loaded IS NULL THEN NULL
         ELSE LEAST(missing.first_missing, %(newest_day)s::date)  -- LEAST ignores NULL
    END AS reload_from,
    loaded.loaded_days
FROM loaded
CROSS JOIN missing;
