-- retention/state_read: the time zone, active event types, start date and log the
-- compact tables were built with (none before the first run).
-- Grain: at most one row (retention_state holds one).
-- Parameters: none.
-- Read by: recsys.stages.retention._check_state.
SELECT timezone, active_event_types, start_date, source_table FROM retention_state
