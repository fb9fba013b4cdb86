-- retention/activity_day_counts: active users per day of the compact table,
-- for the report of days isolated far before the bulk of the log.
-- Grain: one row per day with activity in user_activity_days.
-- Parameters: none.
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._report_far_past_days) (first run, after the whole history is loaded).
SELECT a.day, count(*) AS active_users
FROM user_activity_days AS a
GROUP BY a.day
ORDER BY a.day
