-- publish/live_recommendations_branch: one live partition as readers see it,
-- its arrays unnested into ranked rows; live_recommendations is the UNION ALL
-- of one such branch per live model (publish/live_recommendations_view.sql).
-- Grain: one row per recommendation (model, model_version, run_date, user_id, rank, item_id, score).
-- Parameters: {table}, the partition's name, quoted as an identifier by the caller.
-- Read by: recsys.stages.publish._define_live_view.
SELECT l.model, l.model_version, l.run_date, l.user_id, r.rank::smallint AS rank, r.item_id, r.score
FROM {table} AS l
CROSS JOIN LATERAL unnest(l.item_ids, l.scores) WITH ORDINALITY AS r (item_id, score, rank)
