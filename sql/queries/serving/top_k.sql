-- serving/top_k: the serving query, one user's published list of one model.
-- One probe of the unique user_id index of the live version's partition finds
-- the user's row; its arrays are unnested into ranked rows.
-- Grain: one row per recommendation (rank, item_id, score, model_version), by rank.
-- Parameters: %(model)s text; %(user_id)s bigint; %(k)s integer, the list length.
-- Read by: recsys.lookup.user_list (`recsys recommend`, the Recsys page) and bench/serving.py;
--   a serving application runs the same query.
SELECT rank, item_id, score, model_version
FROM live_recommendations
WHERE model = %(model)s
  AND user_id = %(user_id)s
ORDER BY rank
LIMIT %(k)s
