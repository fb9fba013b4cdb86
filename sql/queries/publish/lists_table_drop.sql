-- publish/lists_table_drop: drop one table of published lists, if it exists: a
-- leftover staging table, the partition of an earlier attempt at the same
-- version (the view no longer references it), or an expired version's partition.
-- Grain: no rows: DDL.
-- Parameters: {table}, the table's name (recommendations_<model>_<yyyymmdd>,
--   with _staging while it is built), quoted as an identifier by the caller.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
DROP TABLE IF EXISTS {table}
