-- serving/top_k_by_key: the serving query by the log's own user key (a text or
-- uuid id such as 'U81994'), returning the items by their keys. One probe of
-- the live partition's unique index on user_key (publish/staging_key_index.sql)
-- finds the user's row; items that expired since the publish are filtered out
-- by the view.
-- Grain: one row per recommendation (rank, item_key, item_id, score, model_version), by rank.
-- Parameters: %(model)s text; %(user_key)s text; %(k)s integer, the list length.
-- Read by: recsys.lookup.user_list (`recsys recommend`, the Recsys page) and bench/serving.py;
--   a serving application runs the same query.
SELECT rank, item_key, item_id, score, model_version
FROM live_recommendations
WHERE model = %(model)s
  AND user_key = %(user_key)s
ORDER BY rank
LIMIT %(k)s
