-- publish/mark_status: after a publish, the live version of the model is
-- 'published', every other version of it that had been published is 'superseded'.
-- Grain: updates rows of model_runs (one per version of the model); no rows returned.
-- Parameters: %(model)s text; %(model_version)s text, the version just attached.
-- Run by: recsys.stages.publish.publish_lists, in the publish transaction.
UPDATE model_runs AS r
SET status = CASE WHEN r.model_version = l.model_version THEN 'published' ELSE 'superseded' END,
    published_at = CASE WHEN r.model_version = %(model_version)s THEN now() ELSE r.published_at END
FROM live_models AS l
WHERE l.model = %(model)s
  AND r.model = %(model)s
  AND (r.model_version = %(model_version)s OR r.status = 'published')
