-- cli/model_run_is_live: whether a model version is the live one of its model.
-- Grain: one row when it is live, none otherwise.
-- Parameters: %(model_version)s text.
-- Read by: recsys.cli._cmd_models_show.
SELECT 1 FROM live_models WHERE model_version = %(model_version)s
