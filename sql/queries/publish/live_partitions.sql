-- publish/live_partitions: the model and lists version of each live model, from
-- which the live partitions' names follow (recsys.stages.publish.lists_partition:
-- recommendations_<model>_<yyyymmdd> for a night's lists, ..._<yyyymmdd>t<hh> for an hour's).
-- Grain: one row per model in live_models, by model.
-- Parameters: none.
-- Read by: recsys.stages.publish.define_live_view, to redefine live_recommendations.
SELECT model, coalesce(lists_version, model_version) FROM live_models ORDER BY model
