-- retention/touched_cohorts_create: the scratch table in which
-- retention/cohorts_sync.sql notes the cohorts whose members' first or last day
-- moved, and from which retention/cells_rolling.sql picks the rolling cells to
-- recompute. Temporary, dropped at commit.
-- Grain: no rows: DDL. The table holds one row per touched cohort_date.
-- Parameters: none.
-- Run by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh), before retention/cohorts_sync.sql.
CREATE TEMPORARY TABLE retention_touched_cohorts (cohort_date date PRIMARY KEY) ON COMMIT DROP
