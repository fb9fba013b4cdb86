-- retention/full_source_days: the log's active days and served days before
-- as_of, read from the interaction log (not from the compact tables, so the
-- full recompute checks them), into two temporary tables dropped at commit.
-- Grain: one row per distinct active (user_id, local day) in full_active_days,
--   one per distinct impression's (local day, model_version, user_id) in
--   full_served_days.
-- Parameters:
--   %(as_of_start)s timestamptz, as_of 00:00 in %(tz)s (events before it count)
--   %(start_from)s  timestamptz, 00:00 of RECSYS_RETENTION_START_DATE (NULL: the whole log)
--   %(tz)s          text, time zone whose calendar days are counted
--   %(active)s      text[], event types that count as activity
--   %(impressions)s text[], event types of role impression (recsys.event_types)
--   {source}        the configured interaction table, quoted by the caller
-- Run by: recsys.stages.retention.full_recompute; the *_full_recompute.sql queries read the tables.
CREATE TEMPORARY TABLE full_active_days ON COMMIT DROP AS
SELECT DISTINCT i.user_id, (i.event_time AT TIME ZONE %(tz)s)::date AS day
FROM {source} AS i
WHERE i.event_time < %(as_of_start)s::timestamptz
  AND i.event_time >= COALESCE(%(start_from)s::timestamptz, '-infinity'::timestamptz)
  AND i.event_type = ANY(%(active)s::text[]);

CREATE TEMPORARY TABLE full_served_days ON COMMIT DROP AS
SELECT DISTINCT (i.event_time AT TIME ZONE %(tz)s)::date AS day, i.model_version, i.user_id
FROM {source} AS i
WHERE i.event_time < %(as_of_start)s::timestamptz
  AND i.event_time >= COALESCE(%(start_from)s::timestamptz, '-infinity'::timestamptz)
  AND i.event_type = ANY(%(impressions)s::text[])
  AND i.model_version IS NOT NULL;

CREATE INDEX ON full_active_days (user_id, day);
ANALYZE full_active_days;
ANALYZE full_served_days;
