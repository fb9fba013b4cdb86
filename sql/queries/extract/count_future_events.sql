-- Events dated after the time of the run (a producer's clock ahead, or a bad
-- default): no window reads them until their date, so the extract only reports
-- them. Grain: one row (count, earliest such time, now()). No parameters.
-- {source}: the configured table or view. Read by recsys.stages.extract.
SELECT count(*), min(event_time), now() FROM {source} WHERE event_time > now()
