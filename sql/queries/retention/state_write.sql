-- retention/state_write: record, on the first run, the time zone and active
-- event types the compact tables are built with; later runs with other
-- settings are refused (recsys.stages.retention.reset_retention starts over).
-- Grain: one row in retention_state; no rows returned.
-- Parameters: %(timezone)s text; %(active_event_types)s text[], sorted.
-- Run by: recsys.stages.retention._check_state.
INSERT INTO retention_state (timezone, active_event_types) VALUES (%(timezone)s, %(active_event_types)s)
