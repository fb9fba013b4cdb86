-- fresh/seen: the events of the log on the hour's new items up to the hour's end.
-- Grain: one row per (user_id, item_id) pair with an event.
-- Parameters: {source}, the log as source/events.sql reads it, composed by the caller;
--   %(ids)s bigint[], the new items; %(hour_end)s timestamptz.
-- Run by: recsys.stages.fresh.run_fresh_hour: a user's list never gets an item she has seen.
SELECT DISTINCT e.user_id, e.item_id
FROM {source} AS e
WHERE e.item_id = ANY(%(ids)s) AND e.event_time < %(hour_end)s
