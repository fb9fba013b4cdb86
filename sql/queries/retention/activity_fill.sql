-- retention/activity_fill: add the distinct active (user, local day) pairs of
-- the days being (re)loaded, read set-based from the interaction log.
-- Grain: one row per (user_id, day) inserted into user_activity_days.
-- Parameters:
--   %(load_from)s  timestamptz, 00:00 (in %(tz)s) of the first day to load (NULL: whole history)
--   %(load_to)s    timestamptz, run_date 00:00 in %(tz)s (exclusive)
--   %(tz)s         text, time zone whose calendar days are counted
--   %(newest_day)s date, run_date - 1: reloaded even though it is recorded
--   %(active)s     text[], event types that count as activity
-- {source} is the configured interaction table, quoted by the caller.
-- The event_time range is bound as constants so the BRIN index on event_time
-- prunes the log to the loaded days. Days inside that range that are already
-- recorded (gaps left by out-of-order runs) are skipped after the DISTINCT, on
-- the few (user, day) pairs: filtering each event would make the planner cost
-- the BRIN bitmap scan above a full scan of another index.
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh) (step 2 of the activity sync).
WITH window_pairs AS MATERIALIZED (
    SELECT DISTINCT i.user_id, (i.event_time AT TIME ZONE %(tz)s)::date AS day
    FROM {source} AS i
    WHERE i.event_time >= COALESCE(%(load_from)s::timestamptz, '-infinity'::timestamptz)
      AND i.event_time < %(load_to)s::timestamptz
      AND i.event_type = ANY(%(active)s::text[])
),
days_to_load AS (
    SELECT p.user_id, p.day
    FROM window_pairs AS p
    WHERE p.day = %(newest_day)s::date
       OR NOT EXISTS (SELECT 1 FROM activity_days_loaded AS l WHERE l.day = p.day)
)
INSERT INTO user_activity_days (user_id, day)
SELECT d.user_id, d.day
FROM days_to_load AS d;
