-- publish/staging_create: an empty table shaped like recommendation_lists, where
-- one version's lists are built before they become its partition.
-- Grain: no rows: DDL. The table will hold one row per user.
-- Parameters: {staging}, the staging table's name, quoted as an identifier by the caller.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
CREATE TABLE {staging} (LIKE recommendation_lists INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
