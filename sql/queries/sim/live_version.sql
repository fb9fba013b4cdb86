-- sim/live_version: the version of a model that serving reads now (NULL row when none).
-- Grain: one row per model. Parameters: %(model)s text.
-- Read by: recsys.sim.closed_loop, to stamp impressions with the serving version.
SELECT model_version FROM live_models WHERE model = %(model)s
