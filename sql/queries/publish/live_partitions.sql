-- publish/live_partitions: the model and as-of date of each live version, from
-- which the live partitions' names follow (recommendations_<model>_<yyyymmdd>).
-- Grain: one row per model in live_models, by model.
-- Parameters: none.
-- Read by: recsys.stages.publish.define_live_view, to redefine live_recommendations.
SELECT model, run_date FROM live_models ORDER BY model
