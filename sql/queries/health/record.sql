-- health/record: one check of one night's input.
-- Grain: one row of data_health inserted; no rows returned.
-- Parameters: %(run_date)s date; %(check_name)s text; %(value)s, %(baseline)s,
--   %(threshold_low)s, %(threshold_high)s double precision (NULL where none);
--   %(status)s text ('ok', 'held', 'warned', 'skipped'); %(reason)s text; %(detail)s jsonb.
-- Run by: recsys.stages.health.check_health, after health/clear.
INSERT INTO data_health (run_date, check_name, value, baseline, threshold_low, threshold_high, status, reason, detail)
VALUES (%(run_date)s, %(check_name)s, %(value)s, %(baseline)s, %(threshold_low)s, %(threshold_high)s, %(status)s,
        %(reason)s, %(detail)s)
