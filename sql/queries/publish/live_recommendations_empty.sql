-- publish/live_recommendations_empty: the definition of live_recommendations
-- while no model is live: the columns of publish/live_recommendations_branch.sql
-- (which must stay the same: CREATE OR REPLACE VIEW keeps a view's columns),
-- over no row.
-- Grain: no rows (columns model, model_version, run_date, user_id, rank, item_id, score, user_key, item_key).
-- Parameters: none.
-- Read by: recsys.stages.publish.define_live_view.
SELECT l.model, l.model_version, l.run_date, l.user_id, r.rank::smallint AS rank, r.item_id, r.score,
       coalesce(l.user_key, l.user_id::text) AS user_key, coalesce(r.item_key, r.item_id::text) AS item_key
FROM recommendation_lists AS l
CROSS JOIN LATERAL unnest(l.item_ids, l.scores, l.item_keys, l.item_expires)
     WITH ORDINALITY AS r (item_id, score, item_key, expires, rank)
WHERE false
