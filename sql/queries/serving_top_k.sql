-- The serving query: one user's published list of one model.
-- Parameters: %(model)s, %(user_id)s, %(k)s. Uses the (user_id, rank) index of
-- the live version's partition.
SELECT rank, item_id, score, model_version
FROM live_recommendations
WHERE model = %(model)s
  AND user_id = %(user_id)s
ORDER BY rank
LIMIT %(k)s
