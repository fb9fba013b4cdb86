-- publish/staging_fill_keys: the staging table's rows from the numeric lists
-- (numeric_lists, binary COPY) and what serving reads beside the ids
-- (list_extras, text COPY: the user's key, the items' keys, the items'
-- expiries, each NULL where the log or catalogue has none), joined on the user.
-- Grain: no rows returned; one row per user written into the staging table.
-- Parameters: {staging}, the staging table, quoted by the caller.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
INSERT INTO {staging} (model, model_version, run_date, user_id, item_ids, scores, user_key, item_keys, item_expires)
SELECT n.model, n.model_version, n.run_date, n.user_id, n.item_ids, n.scores, e.user_key, e.item_keys, e.item_expires
FROM numeric_lists AS n
LEFT JOIN list_extras AS e ON e.user_id = n.user_id
