-- ui/retention_heatmap: the cohort x day-N cells of one retention kind for the
-- newest cohorts. Immature cells keep rate NULL (shown hatched, never as 0).
-- Grain: one row per (cohort_date, day_n).
-- Parameters: %(kind)s text ('classic' or 'rolling'); %(cohorts)s integer,
--   how many of the newest cohorts.
-- Read by: recsys.ui.data.retention_heatmap (the "Cohort retention" panel).
WITH newest AS (
    SELECT DISTINCT cohort_date
    FROM retention
    WHERE retention_kind = %(kind)s
    ORDER BY cohort_date DESC
    LIMIT %(cohorts)s
)
SELECT t.cohort_date, t.day_n, t.cohort_size, t.retained_users, t.rate, t.is_mature
FROM retention AS t
JOIN newest USING (cohort_date)
WHERE t.retention_kind = %(kind)s
ORDER BY t.cohort_date, t.day_n
