-- health/clear: forget the checks of one as-of date before they are written again, so a
-- re-run replaces them.
-- Grain: deletes the rows of one run_date; no rows returned.
-- Parameters: %(run_date)s date.
-- Run by: recsys.stages.health.check_health, in the transaction that writes them.
DELETE FROM data_health WHERE run_date = %(run_date)s
