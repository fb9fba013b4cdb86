-- publish/live_recommendations_view: (re)define the view serving reads over the
-- live partition of each model.
-- Grain: no rows: DDL. The view has one row per live recommendation.
-- Parameters: {branches}, the view's query: the branches of
--   publish/live_recommendations_branch.sql joined with UNION ALL (or
--   publish/live_recommendations_empty.sql), composed by the caller.
-- Run by: recsys.stages.publish.define_live_view, in the publish transaction.
CREATE OR REPLACE VIEW live_recommendations AS
{branches}
