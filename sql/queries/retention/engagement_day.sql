-- retention/engagement_day: DAU, WAU, MAU and stickiness of the newest day.
-- Grain: one row per day in engagement.
--   dau            distinct users active on the day
--   wau            distinct users active on one of the 7 days ending on it
--   mau            distinct users active on one of the 30 days ending on it
--   stickiness     dau / mau (NULL when mau = 0)
--   is_full_window each of the 30 days of the window has activity in the log:
--                  MAU counts a whole month of observed log (a window reaching
--                  before the log's first day, or across days the log lost, does not)
-- A day before the first active day has no row; a later day with no activity
-- has dau = 0 (and its wau, mau from the days before it).
-- Returns one row: rows_written, rows_deleted.
-- Parameters: %(newest_day)s date, run_date - 1.
-- A correction of an old day d reaches the rows d .. d + 29 when the dates
-- d + 1 .. d + 30 are re-run, as for the classic cells.
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh); dashboards read engagement.
WITH first_active AS (
    SELECT min(a.day) AS first_day FROM user_activity_days AS a
),
window_counts AS (
    SELECT count(DISTINCT a.user_id) FILTER (WHERE a.day = %(newest_day)s::date) AS dau,
           count(DISTINCT a.user_id) FILTER (WHERE a.day > %(newest_day)s::date - 7) AS wau,
           count(DISTINCT a.user_id) AS mau,
           count(DISTINCT a.day) AS observed_days
    FROM user_activity_days AS a
    WHERE a.day > %(newest_day)s::date - 30
      AND a.day <= %(newest_day)s::date
),
day_row AS (
    SELECT %(newest_day)s::date AS day, w.dau, w.wau, w.mau,
           w.dau::double precision / NULLIF(w.mau, 0) AS stickiness,
           w.observed_days = 30 AS is_full_window
    FROM window_counts AS w
    CROSS JOIN first_active AS f
    WHERE f.first_day <= %(newest_day)s::date
),
written AS (
    INSERT INTO engagement AS e (day, dau, wau, mau, stickiness, is_full_window, computed_at)
    SELECT d.day, d.dau, d.wau, d.mau, d.stickiness, d.is_full_window, now()
    FROM day_row AS d
    ON CONFLICT (day) DO UPDATE
        SET dau            = EXCLUDED.dau,
            wau            = EXCLUDED.wau,
            mau            = EXCLUDED.mau,
            stickiness     = EXCLUDED.stickiness,
            is_full_window = EXCLUDED.is_full_window,
            computed_at    = EXCLUDED.computed_at
    RETURNING 1
),
emptied AS (
    DELETE FROM engagement AS e
    WHERE e.day = %(newest_day)s::date
      AND NOT EXISTS (SELECT 1 FROM day_row)
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM written) AS rows_written,
    (SELECT count(*) FROM emptied) AS rows_deleted;
