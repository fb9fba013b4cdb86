-- retention/state_write: record, on the first run, the time zone, active
-- event types and start date the compact tables are built with; later runs with other
-- settings are refused (`recsys retention rebuild` starts over).
-- Grain: one row in retention_state; no rows returned.
-- Parameters: %(timezone)s text; %(active_event_types)s text[], sorted; %(start_date)s date or NULL.
-- Run by: recsys.stages.retention._check_state.
INSERT INTO retention_state (timezone, active_event_types, start_date)
VALUES (%(timezone)s, %(active_event_types)s, %(start_date)s)
