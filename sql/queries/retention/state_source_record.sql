-- retention/state_source_record: record the log of tables built before migration 0008
-- recorded it (their source_table is NULL): the log the first refresh since then reads.
-- Grain: one row in retention_state; no rows returned.
-- Parameters: %(source_table)s text, the log as recsys.source names it.
-- Run by: recsys.stages.retention._check_state.
UPDATE retention_state SET source_table = %(source_table)s, updated_at = now() WHERE source_table IS NULL
