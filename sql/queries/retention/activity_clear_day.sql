-- retention/activity_clear_day: forget the activity of the days about to be
-- (re)loaded: the newest day, always reloaded so a re-run of a date picks up
-- late or corrected events of its day, and any day in the reload range not
-- recorded as loaded (normally without rows; cleared so the fill never collides).
-- Grain: deletes (user_id, day) rows of user_activity_days; rowcount = rows removed.
-- Parameters:
--   %(reload_from)s date, first day to reload (NULL on the first run: all days)
--   %(newest_day)s  date, run_date - 1
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh) (step 1 of the activity sync).
DELETE FROM user_activity_days AS a
WHERE a.day >= COALESCE(%(reload_from)s::date, '-infinity'::date)
  AND a.day <= %(newest_day)s::date
  AND (a.day = %(newest_day)s::date
       OR NOT EXISTS (SELECT 1 FROM activity_days_loaded AS l WHERE l.day = a.day));
