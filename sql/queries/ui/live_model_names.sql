-- ui/live_model_names: the models that have a live version.
-- Grain: one row per model (model), by name.
-- Parameters: none.
-- Read by: recsys.ui.data.user_lists (the "Live lists" panel's user look-up).
SELECT model FROM live_models ORDER BY model
