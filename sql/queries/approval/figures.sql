-- approval/figures: the figures an approver sees beside the gate's reason, for one version.
-- Grain: one row per (subject, metric) at %(k)s of the version's eval_metrics: subject
-- 'model' is the version itself, 'champion' the live model scored on the same hold-out
-- users, 'popularity' the popularity baseline on them; an off-policy model's DR estimate
-- is subject 'ope'. Ordered by metric, then subject.
-- Parameters: %(model_version)s text; %(k)s integer, the list length of the figures.
-- Read by: recsys.stages.approval.approval_request.
SELECT e.subject, e.metric, e.value, e.n_users
FROM eval_metrics AS e
WHERE e.model_version = %(model_version)s AND e.k = %(k)s
  AND e.subject IN ('model', 'champion', 'popularity', 'ope')
ORDER BY e.metric, e.subject
