-- retention/full_clear: drop every output row before a full recompute.
-- Grain: deletes all rows of retention (every kind), engagement and model_retention.
-- DELETE rather than TRUNCATE: readers of the tables are not blocked by an
-- ACCESS EXCLUSIVE lock, and the recompute commits in the same transaction.
-- The compact tables (user_activity_days, user_cohorts, user_model_days,
-- activity_days_loaded) are left as they are.
-- Parameters: none.
-- Run by: recsys.stages.retention.full_recompute.
DELETE FROM retention;
DELETE FROM engagement;
DELETE FROM model_retention;
