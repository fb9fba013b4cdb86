-- snapshot/summary: what live_lists_snapshot holds after a refresh, per model or alias.
-- Grain: one row per model (a serving alias counts as one) in the snapshot.
-- Parameters: none.
-- Read by: recsys.stages.live_snapshot.refresh_live_snapshot, which logs it and checks it
--   against the asset events that triggered the refresh.
SELECT model, min(model_version) AS model_version, min(run_date) AS run_date,
       count(DISTINCT user_id) AS users, count(*) AS rows
FROM live_lists_snapshot
GROUP BY model
ORDER BY model
