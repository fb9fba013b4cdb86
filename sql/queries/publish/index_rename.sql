-- publish/index_rename: give a staging table's extra index its partition's name
-- (publish/staging_rename.sql renames the table and its user_id index).
-- Grain: no rows: DDL.
-- Parameters: {index}, {new_name}: index names, quoted as identifiers by the caller.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
ALTER INDEX {index} RENAME TO {new_name}
