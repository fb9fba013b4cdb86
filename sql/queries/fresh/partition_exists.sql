-- fresh/partition_exists: whether a lists partition is still there.
-- Grain: one row (true when the table exists).
-- Parameters: %(table)s text, the table's name.
-- Run by: recsys.stages.fresh.run_fresh_hour, before it reuses an earlier run's base lists.
SELECT to_regclass(quote_ident(%(table)s)) IS NOT NULL
