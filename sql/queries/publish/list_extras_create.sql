-- publish/list_extras_create: the temporary table of what a version's lists
-- carry beside the ids (keys, expiries), one row per user, filled by a text
-- COPY from recsys.stages.publish._list_extras; dropped at commit.
-- Grain: no rows: DDL.
-- Parameters: none.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
CREATE TEMPORARY TABLE list_extras (
    user_id      bigint PRIMARY KEY,
    user_key     text,
    item_keys    text[],
    item_expires timestamptz[]
) ON COMMIT DROP
