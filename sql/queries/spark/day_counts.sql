-- spark/day_counts: how many positive events each UTC day of a training window holds, so the
-- Spark backend's export rewrites only the days that are new or changed (late events).
-- Grain: one row per UTC day of the window that has a positive event.
-- Parameters: %(start)s, %(end)s timestamptz, the window [start, end); %(types)s text[],
--   the positive event types; {source} is the configured table or view, quoted by the caller.
-- Read by: recsys.spark.export.export_window.
-- Run by: the spark_export step of a model trained on Spark (RECSYS_MF_BACKEND=spark).
SELECT (event_time AT TIME ZONE 'UTC')::date AS day, count(*) AS n_events
FROM {source} AS src
WHERE event_time >= %(start)s
  AND event_time <  %(end)s
  AND event_type = ANY(%(types)s)
GROUP BY 1
ORDER BY 1
