-- retention/history_source_days: the active and served days of the compact
-- tables, just filled from the whole history by a first refresh (or a rebuild),
-- into the two temporary tables the *_full_recompute.sql queries read.
-- Grain: one row per (user_id, day) of user_activity_days in full_active_days,
--   one per (day, model_version, user_id) of user_model_days in full_served_days.
-- The full recompute builds the same tables from the log itself
-- (retention/full_source_days.sql); a first refresh reads the compact tables
-- instead, which hold the same days and are far smaller than the log.
-- Parameters: none (the compact tables hold only days before the run date).
-- Run by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._write_history) (first run) and
--   recsys.stages.retention.rebuild_retention; the *_full_recompute.sql queries read the tables.
CREATE TEMPORARY TABLE full_active_days ON COMMIT DROP AS
SELECT a.user_id, a.day FROM user_activity_days AS a;

CREATE TEMPORARY TABLE full_served_days ON COMMIT DROP AS
SELECT s.day, s.model_version, s.user_id FROM user_model_days AS s;

CREATE INDEX ON full_active_days (user_id, day);
ANALYZE full_active_days;
ANALYZE full_served_days;
