-- snapshot/refresh: replace live_lists_snapshot's rows with live_recommendations' now.
-- CONCURRENTLY: readers keep seeing the previous rows until the refresh commits (it
-- writes only the difference, through the unique index of migration 0010).
-- Grain: no rows: DDL-like maintenance. The snapshot has one row per (model, user_id, rank).
-- Parameters: none.
-- Run by: recsys.stages.live_snapshot.refresh_live_snapshot.
REFRESH MATERIALIZED VIEW CONCURRENTLY live_lists_snapshot
