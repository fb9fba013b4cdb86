-- After a publish: the live version of the model is 'published', every other
-- version of it that had been published is 'superseded'.
-- Parameters: %(model)s, %(model_version)s (the version just attached).
UPDATE model_runs AS r
SET status = CASE WHEN r.model_version = l.model_version THEN 'published' ELSE 'superseded' END,
    published_at = CASE WHEN r.model_version = %(model_version)s THEN now() ELSE r.published_at END
FROM live_models AS l
WHERE l.model = %(model)s
  AND r.model = %(model)s
  AND (r.model_version = %(model_version)s OR r.status = 'published')
