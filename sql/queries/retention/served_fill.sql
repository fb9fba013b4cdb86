-- retention/served_fill: add the distinct (local day, model_version, user)
-- triples of the impressions of the days being (re)loaded: which serving model
-- showed items to which user on which day.
-- Grain: one row per (day, model_version, user_id) inserted into user_model_days.
-- Parameters:
--   %(load_from)s  timestamptz, 00:00 (in %(tz)s) of the first day to load (NULL: whole history)
--   %(load_to)s    timestamptz, run_date 00:00 in %(tz)s (exclusive)
--   %(newest_day)s date, run_date - 1: reloaded even though it is recorded
--   %(tz)s         text, time zone whose calendar days are counted
--   %(impressions)s text[], event types of role impression (recsys.event_types)
-- {source} is the configured interaction table, quoted by the caller.
-- Impressions without a model_version are not attributed to any model. As in
-- retention/activity_fill.sql the time range is bound as constants so the BRIN
-- index prunes the log, and recorded days are skipped after the DISTINCT.
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh) (activity sync).
WITH window_triples AS MATERIALIZED (
    SELECT DISTINCT (i.event_time AT TIME ZONE %(tz)s)::date AS day, i.model_version, i.user_id
    FROM {source} AS i
    WHERE i.event_time >= COALESCE(%(load_from)s::timestamptz, '-infinity'::timestamptz)
      AND i.event_time < %(load_to)s::timestamptz
      AND i.event_type = ANY(%(impressions)s::text[])
      AND i.model_version IS NOT NULL
)
INSERT INTO user_model_days (day, model_version, user_id)
SELECT w.day, w.model_version, w.user_id
FROM window_triples AS w
WHERE w.day = %(newest_day)s::date
   OR NOT EXISTS (SELECT 1 FROM activity_days_loaded AS l WHERE l.day = w.day);
