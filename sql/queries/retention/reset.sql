-- retention/reset: empty every retention table, compact and output (the log is
-- untouched), so the next refresh starts over as a first run.
-- Grain: no rows: removes every row of the tables.
-- Parameters: {tables}, the compact and output tables (recsys.stages.retention's
--   _COMPACT_TABLES and _OUTPUT_TABLES), quoted as identifiers and joined by the caller.
-- Run by: recsys.stages.retention.reset_retention, under the retention lock.
TRUNCATE {tables}
