-- sim/live_version: the version of a model that serving reads now (no row when none).
-- Grain: at most one row per model.
-- Parameters: %(model)s text.
-- Read by: recsys.sim.closed_loop.read_live_lists, to stamp impressions with the serving version.
SELECT model_version FROM live_models WHERE model = %(model)s
