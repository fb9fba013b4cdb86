-- sim/live_lists: the live top-K lists one model serves to a set of users, for
-- the closed-loop simulator's arm of that model.
-- Grain: one row per (user_id, rank).
-- Parameters: %(model)s text, %(users)s bigint[].
-- Read by: recsys.sim.closed_loop.read_live_lists (one query per model arm per simulated day).
SELECT r.user_id, r.rank, r.item_id, r.model_version
FROM live_recommendations AS r
WHERE r.model = %(model)s
  AND r.user_id = ANY(%(users)s)
ORDER BY r.user_id, r.rank
