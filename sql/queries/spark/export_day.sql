-- spark/export_day: one UTC day of positive events, for the Spark backend's columnar export.
-- Grain: one row per distinct event (exact duplicates once, as the nightly extract keeps them).
-- Parameters: %(start)s, %(end)s timestamptz, the day [start, end); %(types)s text[], the
--   positive event types; {source} is the configured table or view, quoted by the caller.
-- Read by: recsys.spark.export.export_window, through COPY.
-- Run by: the spark_export step of a model trained on Spark (RECSYS_MF_BACKEND=spark).
SELECT DISTINCT
    user_id,
    item_id,
    event_type,
    extract(epoch FROM event_time)::double precision AS ts,
    value,
    session_id
FROM {source} AS src
WHERE event_time >= %(start)s
  AND event_time <  %(end)s
  AND event_type = ANY(%(types)s)
