-- publish/item_keys_of: the log's keys of the internal item ids being published.
-- Grain: one row per listed id that has a key (item_id, item_key).
-- Parameters: %(ids)s bigint[].
-- Read by: recsys.stages.publish._list_extras.
SELECT item_id, item_key FROM item_keys WHERE item_id = ANY(%(ids)s)
