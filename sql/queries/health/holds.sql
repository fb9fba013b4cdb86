-- health/holds: the checks that put one night's publishes on hold.
-- Grain: one row per held check of the as-of date.
-- Parameters: %(run_date)s date.
-- Read by: recsys.stages.health.health_hold.
SELECT check_name, reason
FROM data_health
WHERE run_date = %(run_date)s AND status = 'held'
ORDER BY check_name
