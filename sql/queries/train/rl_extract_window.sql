-- train/rl_extract_window: the events of one training window with what the RL
-- recommenders need beyond MF's extract: session and logged propensity.
-- Grain: one row per event.
-- Parameters: %(start)s, %(end)s timestamptz, the window [start, end); {source}
--   is the configured table or view, quoted as an identifier by the caller.
-- Read by: recsys.stages.train_rl.read_logged_events, through COPY.
SELECT
    user_id,
    item_id,
    CASE event_type WHEN 'impression' THEN 0 WHEN 'click' THEN 1 ELSE 2 END AS event_code,
    extract(epoch FROM event_time)::double precision AS ts,
    session_id,
    propensity
FROM {source} AS src
WHERE event_time >= %(start)s
  AND event_time <  %(end)s
ORDER BY event_time
