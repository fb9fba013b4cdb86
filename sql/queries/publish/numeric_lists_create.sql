-- publish/numeric_lists_create: a temporary table the binary COPY fills when
-- the lists need the log's keys or the catalogue's expiries added before they
-- become the staging table (publish/staging_fill_keys.sql); dropped at commit.
-- Grain: no rows: DDL. The table will hold one row per user.
-- Parameters: none.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
CREATE TEMPORARY TABLE numeric_lists (LIKE recommendation_lists) ON COMMIT DROP
