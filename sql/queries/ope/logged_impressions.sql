-- ope/logged_impressions: the logged impressions of one day with what off-policy
-- evaluation needs: the logged propensity, whether the impression was clicked in
-- its session, and whether its user came back (an active event) on the next day.
-- Grain: one row per impression with a propensity.
-- Parameters: %(day_start)s, %(day_end)s, %(next_end)s timestamptz (the day is
--   [day_start, day_end), the next day [day_end, next_end)); %(active_types)s
--   text[], event types that count as coming back; %(impression_types)s text[],
--   the types read as impressions, %(click_types)s text[], as clicks
--   (recsys.config.Settings.impression_types, rl_click_types); {source} is the configured
--   log, quoted as an identifier by the caller.
-- Read by: recsys.stages.ope.read_logged_day, through COPY.
WITH impressions AS (
    SELECT user_id, item_id, session_id, propensity, model_version
    FROM {source} AS src
    WHERE event_type = ANY(%(impression_types)s::text[])
      AND propensity IS NOT NULL
      AND event_time >= %(day_start)s AND event_time < %(day_end)s
),
clicks AS (
    SELECT DISTINCT user_id, item_id, session_id
    FROM {source} AS src
    WHERE event_type = ANY(%(click_types)s::text[])
      AND event_time >= %(day_start)s AND event_time < %(next_end)s
),
returned AS (
    SELECT DISTINCT user_id
    FROM {source} AS src
    WHERE event_type = ANY(%(active_types)s)
      AND event_time >= %(day_end)s AND event_time < %(next_end)s
)
SELECT i.user_id, i.item_id, COALESCE(i.session_id, -1) AS session_id, i.propensity, i.model_version,
       (c.user_id IS NOT NULL)::int AS clicked,
       (r.user_id IS NOT NULL)::int AS returned
FROM impressions AS i
LEFT JOIN clicks AS c
  ON c.user_id = i.user_id AND c.item_id = i.item_id AND c.session_id IS NOT DISTINCT FROM i.session_id
LEFT JOIN returned AS r ON r.user_id = i.user_id
ORDER BY i.user_id, i.session_id
