-- ope/live_version_read: the version of one model that serves now (its live pointer).
-- Grain: at most one row.
-- Parameters: %(model)s text.
-- Read by: recsys.stages.ope._estimate_difference_to_live (the paired DR gate
--   estimates a challenger against it).
SELECT l.model_version
FROM live_models AS l
WHERE l.model = %(model)s
