-- retention/served_clear_day: forget which models served whom on the days
-- about to be (re)loaded; the same days as retention/activity_clear_day.sql
-- (the newest day, and any day in the reload range not recorded as loaded).
-- Grain: deletes (day, model_version, user_id) rows of user_model_days; rowcount = rows removed.
-- Parameters:
--   %(reload_from)s date, first day to reload (NULL on the first run: all days)
--   %(newest_day)s  date, run_date - 1
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh) (activity sync, before the days are recorded).
DELETE FROM user_model_days AS s
WHERE s.day >= COALESCE(%(reload_from)s::date, '-infinity'::date)
  AND s.day <= %(newest_day)s::date
  AND (s.day = %(newest_day)s::date
       OR NOT EXISTS (SELECT 1 FROM activity_days_loaded AS l WHERE l.day = s.day));
