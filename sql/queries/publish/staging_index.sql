-- publish/staging_index: the index serving probes, built after the COPY (faster
-- than maintaining it row by row). Unique: a user with two lists in one version
-- is a bug upstream, refused here.
-- Grain: no rows: DDL, one index entry per user.
-- Parameters: {index}, {staging}: the index's and the staging table's names,
--   quoted as identifiers by the caller.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
CREATE UNIQUE INDEX {index} ON {staging} (user_id)
