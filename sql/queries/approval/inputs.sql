-- approval/inputs: what decides whether one version's publish needs an approval.
-- Grain: one row (none when the version is not in model_runs): the version's model
-- and run date, and the live version of that model with its run date (NULL when
-- the model has none yet: its first publish).
-- Parameters: %(model_version)s text.
-- Read by: recsys.stages.approval.approval_request.
SELECT r.model, r.run_date, l.model_version AS live_version, l.run_date AS live_run_date
FROM model_runs AS r
LEFT JOIN live_models AS l ON l.model = r.model
WHERE r.model_version = %(model_version)s
