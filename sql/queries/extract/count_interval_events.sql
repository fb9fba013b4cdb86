-- extract/count_interval_events: events that arrived in the run's data
-- interval: zero means an empty night.
-- Grain: one row, the count.
-- Parameters: %(start)s, %(end)s timestamptz, the data interval [start, end);
--   {source} is the configured table or view, quoted as an identifier by the caller.
-- Read by: recsys.stages.extract.extract_window.
SELECT count(*) FROM {source} AS src WHERE event_time >= %(start)s AND event_time < %(end)s
