-- train/rl_extract_window: the events of one training window with what the RL
-- recommenders need beyond MF's extract: session and logged propensity.
-- Grain: one row per event.
-- Parameters: %(start)s, %(end)s timestamptz, the window [start, end);
--   %(impression_types)s, %(click_types)s text[], the event types read as impressions
--   (code 0) and as clicks (code 1); `consume` is code 2, any other type NULL (a type
--   the extract did not see: the reader drops it); {source}
--   is the configured table or view, quoted as an identifier by the caller.
-- Read by: recsys.stages.train_rl.read_logged_events, through COPY.
SELECT
    user_id,
    item_id,
    CASE WHEN event_type = ANY(%(impression_types)s::text[]) THEN 0
         WHEN event_type = ANY(%(click_types)s::text[]) THEN 1
         WHEN event_type = 'consume' THEN 2
    END AS event_code,
    extract(epoch FROM event_time)::double precision AS ts,
    session_id,
    propensity
FROM {source} AS src
WHERE event_time >= %(start)s
  AND event_time <  %(end)s
ORDER BY event_time
