-- retention/day_start: 00:00 of a calendar day in a time zone, as a timestamptz,
-- by PostgreSQL's time zone rules (the same rules that map event times to days),
-- so the queries can bound event_time by constants and use the BRIN index.
-- Grain: one row, one value.
-- Parameters: %(day)s date; %(tz)s text, the retention time zone.
-- Read by: recsys.stages.retention._day_start.
SELECT %(day)s::date::timestamp AT TIME ZONE %(tz)s
