-- lookup/live_user_key: the user key the live list of an internal user id carries,
-- so `recsys recommend 196` on a log with text user ids is refused instead of
-- showing the list of whoever got internal id 196.
-- Grain: one row when the user has a live list of the model (user_key), none otherwise.
-- Parameters: %(model)s text; %(user_id)s bigint.
-- Read by: recsys.lookup.user_list.
SELECT user_key FROM live_recommendations WHERE model = %(model)s AND user_id = %(user_id)s LIMIT 1
