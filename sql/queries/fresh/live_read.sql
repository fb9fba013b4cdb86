-- fresh/live_read: the live model and the lists it serves.
-- Grain: zero or one row (model_version, lists_version, run_date).
-- Parameters: %(model)s text.
-- Run by: recsys.stages.fresh.run_fresh_hour, for the model to score with and the lists to merge into.
SELECT model_version, coalesce(lists_version, model_version), run_date FROM live_models WHERE model = %(model)s
