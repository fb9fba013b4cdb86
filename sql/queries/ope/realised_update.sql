-- ope/realised_update: fill `realised` of the off-policy estimates whose outcome has
-- matured: the D1 retention of the users the estimated version served on its as-of
-- date (the arm that served the policy), from model_retention.
-- Grain: updates rows of ope_estimates (run_date, policy). No parameters.
-- Run by recsys.stages.ope.record_realised after the nightly retention refresh.
UPDATE ope_estimates AS o
SET realised = mr.rate, realised_version = mr.model_version
FROM model_retention AS mr
WHERE mr.model_version = o.model_version
  AND mr.serve_day = o.run_date
  AND mr.day_n = 1
  AND mr.is_mature
  AND o.realised IS DISTINCT FROM mr.rate
