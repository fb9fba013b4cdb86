-- Events that arrived in the run's data interval: zero means an empty night.
-- Parameters: %(start)s, %(end)s. {source}: the configured table or view.
SELECT count(*) FROM {source} WHERE event_time >= %(start)s AND event_time < %(end)s
