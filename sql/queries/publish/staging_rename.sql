-- publish/staging_rename: give the filled staging table and its index the
-- names of the version's partition.
-- Grain: no rows: DDL (two statements).
-- Parameters: {staging}, {partition}, {staging_index}, {partition_index}: the
--   old and new names, quoted as identifiers by the caller.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
ALTER TABLE {staging} RENAME TO {partition};
ALTER INDEX {staging_index} RENAME TO {partition_index}
