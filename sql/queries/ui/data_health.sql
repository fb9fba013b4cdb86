-- ui/data_health: the data-health checks of the newest nights, as the Recsys page lists them.
-- Grain: one row per as-of date and check, newest date first.
-- Parameters: %(nights)s integer, the as-of dates shown.
-- Read by: recsys.ui.data.data_health (the "Data health" panel).
WITH nights AS (
    SELECT DISTINCT run_date FROM data_health ORDER BY run_date DESC LIMIT %(nights)s
)
SELECT h.run_date, h.check_name, h.value, h.baseline, h.threshold_low, h.threshold_high, h.status, h.reason
FROM data_health AS h
JOIN nights AS n ON n.run_date = h.run_date
ORDER BY h.run_date DESC, h.check_name
