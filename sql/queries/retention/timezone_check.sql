-- retention/timezone_check: fails with InvalidParameterValue when the
-- configured time zone is unknown to PostgreSQL, whose rules map event times to
-- days; the caller turns that into a DataValidationError naming the setting.
-- Grain: one row (the current time in that zone), not used.
-- Parameters: %(tz)s text, the retention time zone.
-- Run by: recsys.stages.retention._prepare, inside a savepoint.
SELECT now() AT TIME ZONE %(tz)s
