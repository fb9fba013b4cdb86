-- ope/logged_impressions_exist: whether a day has any logged impression with a
-- propensity, i.e. whether off-policy evaluation on that day is possible at all.
-- Grain: one row, one boolean. Parameters: %(day_start)s, %(day_end)s (timestamptz,
-- the day is [day_start, day_end)), %(impression_types)s text[] (the types of role
-- impression). {source}: the configured log, quoted by
-- recsys.stages.ope. Read by recsys.stages.ope.has_logged_impressions (the DR gate's fallback).
SELECT EXISTS (
    SELECT 1
    FROM {source} AS src
    WHERE event_type = ANY(%(impression_types)s::text[])
      AND propensity IS NOT NULL
      AND event_time >= %(day_start)s AND event_time < %(day_end)s
)
