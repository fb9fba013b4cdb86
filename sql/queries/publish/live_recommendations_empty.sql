-- publish/live_recommendations_empty: the definition of live_recommendations
-- while no model is live: the columns of publish/live_recommendations_branch.sql
-- (which must stay the same: CREATE OR REPLACE VIEW keeps a view's columns),
-- over no row.
-- Grain: no rows (columns model, model_version, run_date, user_id, rank, item_id, score).
-- Parameters: none.
-- Read by: recsys.stages.publish._define_live_view.
SELECT l.model, l.model_version, l.run_date, l.user_id, r.rank::smallint AS rank, r.item_id, r.score
FROM recommendation_lists AS l
CROSS JOIN LATERAL unnest(l.item_ids, l.scores) WITH ORDINALITY AS r (item_id, score, rank)
WHERE false
