-- lookup/user_key_known: whether a user key is in the key map (the log has text
-- user ids and has seen this one), to serve it by key rather than as an integer id.
-- Grain: one row when known, none otherwise.
-- Parameters: %(user_key)s text.
-- Read by: recsys.lookup.user_list.
SELECT 1 FROM user_keys WHERE user_key = %(user_key)s
