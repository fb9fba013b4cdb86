-- publish/user_keys_of: the log's keys of the internal user ids being published.
-- Grain: one row per listed id that has a key (user_id, user_key).
-- Parameters: %(ids)s bigint[].
-- Read by: recsys.stages.publish._list_extras.
SELECT user_id, user_key FROM user_keys WHERE user_id = ANY(%(ids)s)
