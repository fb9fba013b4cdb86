-- ope/version_lists: the published top-K lists of one model version for the users
-- of a logged day, so that version can be evaluated off-policy on that day (the
-- DR gate's champion: the live version, whose lists are kept there).
-- Grain: one row per (user_id, rank).
-- Parameters: %(model_version)s text; %(k)s integer (ranks beyond it are left
--   out); %(users)s bigint[] (the day's users).
-- Read by: recsys.stages.ope._served_lists (for champion_return_estimate and the
--   paired difference to the live version).
SELECT r.user_id, r.rank, r.item_id
FROM recommendations AS r
WHERE r.model_version = %(model_version)s
  AND r.rank <= %(k)s
  AND r.user_id = ANY(%(users)s)
ORDER BY r.user_id, r.rank
