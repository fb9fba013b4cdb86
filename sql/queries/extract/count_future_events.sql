-- extract/count_future_events: events dated after the time of the run (a
-- producer's clock ahead, or a bad default): no window reads them until their
-- date, so the extract only reports them.
-- Grain: one row (count, earliest such time, now()).
-- Parameters: none bound by the driver; {source} is the configured table or view,
--   quoted as an identifier by the caller.
-- Read by: recsys.stages.extract.extract_window.
SELECT count(*), min(event_time), now() FROM {source} AS src WHERE event_time > now()
