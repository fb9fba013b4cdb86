-- retention/state_write: record, on the first run, the time zone, active
-- event types, start date and log the compact tables are built with; later runs with other
-- settings are refused (`recsys retention rebuild` starts over).
-- Grain: one row in retention_state; no rows returned.
-- Parameters: %(timezone)s text; %(active_event_types)s text[], sorted; %(start_date)s date or NULL;
--   %(source_table)s text, the log as recsys.source names it.
-- Run by: recsys.stages.retention._check_state.
INSERT INTO retention_state (timezone, active_event_types, start_date, source_table)
VALUES (%(timezone)s, %(active_event_types)s, %(start_date)s, %(source_table)s)
