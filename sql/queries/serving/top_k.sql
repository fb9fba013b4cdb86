-- The serving query: one user's published list of one model.
-- Parameters: %(model)s, %(user_id)s, %(k)s. One probe of the unique user_id
-- index of the live version's partition finds the user's row; its arrays are
-- unnested into ranked rows.
SELECT rank, item_id, score, model_version
FROM live_recommendations
WHERE model = %(model)s
  AND user_id = %(user_id)s
ORDER BY rank
LIMIT %(k)s
