-- bench/holdout_impressions: the impressions of the hold-out day, one row per shown
-- slot with whether its user clicked it in the same session: what AUC and MRR per
-- impression are computed on (recsys/metrics/impressions.py).
-- Grain: one row per impression event with a session (session_id, user_id, item_id,
--   clicked), user and item ids as the pipeline's internal bigint ids.
-- Parameters: %(day_start)s, %(day_end)s timestamptz, the hold-out day [start, end);
--   %(impression_types)s text[] and %(click_types)s text[] (Settings.impression_types,
--   rl_click_types); {source} is the configured log as Source.relation (recsys/source.py)
--   reads it, composed by the caller.
-- Read by: bench/quality.py.
WITH shown AS (
    SELECT user_id, item_id, session_id
    FROM {source} AS src
    WHERE event_type = ANY(%(impression_types)s::text[])
      AND session_id IS NOT NULL
      AND event_time >= %(day_start)s AND event_time < %(day_end)s
),
clicks AS (
    SELECT DISTINCT user_id, item_id, session_id
    FROM {source} AS src
    WHERE event_type = ANY(%(click_types)s::text[])
      AND session_id IS NOT NULL
      AND event_time >= %(day_start)s AND event_time < %(day_end)s
)
SELECT s.session_id, s.user_id, s.item_id, (c.user_id IS NOT NULL) AS clicked
FROM shown AS s
LEFT JOIN clicks AS c
  ON c.user_id = s.user_id AND c.item_id = s.item_id AND c.session_id = s.session_id
ORDER BY s.session_id
