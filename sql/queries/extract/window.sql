-- extract/window: the interactions of one training window, for the nightly extract.
-- Grain: one row per event (session_id NULL where the log has none: the per-impression
--   metrics of the evaluate stage group the hold-out day's impressions by it).
-- Parameters: %(start)s, %(end)s timestamptz, the window [start, end);
--   {source} is the configured table or view, quoted as an identifier by the caller.
-- Read by: recsys.stages.extract.extract_window, through COPY.
-- Checks that the window can be trained on happen in Python after the read,
-- so the messages can name the offending column and count.
SELECT
    user_id,
    item_id,
    event_type,
    extract(epoch FROM event_time)::double precision AS ts,
    value,
    session_id
FROM {source} AS src
WHERE event_time >= %(start)s
  AND event_time <  %(end)s
ORDER BY event_time
