-- publish/live_aliases: each serving alias, the model it serves and that model's live
-- lists version, from which the live partition's name follows.
-- Grain: one row per alias in serving_aliases whose model has a live version, by alias.
-- Parameters: none.
-- Read by: recsys.stages.publish.define_live_view: each alias gets a branch of
--   live_recommendations over its model's live partition, named by the alias.
SELECT a.alias, a.model, coalesce(l.lists_version, l.model_version)
FROM serving_aliases AS a
JOIN live_models AS l ON l.model = a.model
ORDER BY a.alias
