-- publish/live_recommendations_branch: one live partition as readers see it,
-- its arrays unnested into ranked rows; live_recommendations is the UNION ALL
-- of one such branch per live model (publish/live_recommendations_view.sql).
-- user_key and item_key are the log's own keys (the integer ids as text when
-- the log's ids are integers); an item whose catalogue expiry has passed since
-- the publish is dropped here, so its rank leaves a gap.
-- Grain: one row per recommendation (model, model_version, run_date, user_id, rank, item_id, score,
--   user_key, item_key).
-- Parameters: {table}, the partition's name, quoted as an identifier by the caller;
--   {model}, its model as a literal: a constant column, so a query on one model
--   prunes the other models' branches when it is planned.
-- Read by: recsys.stages.publish.define_live_view.
SELECT {model}::text AS model, l.model_version, l.run_date, l.user_id, r.rank::smallint AS rank, r.item_id, r.score,
       coalesce(l.user_key, l.user_id::text) AS user_key, coalesce(r.item_key, r.item_id::text) AS item_key
FROM {table} AS l
CROSS JOIN LATERAL unnest(l.item_ids, l.scores, l.item_keys, l.item_expires)
     WITH ORDINALITY AS r (item_id, score, item_key, expires, rank)
WHERE r.expires IS NULL OR r.expires > now()
