-- retention/engagement_full_recompute: DAU, WAU, MAU and stickiness of every day from
-- the first active day to as_of - 1, from full_active_days (the log's active
-- days, see retention/full_source_days.sql), by a different method than the
-- nightly retention/engagement_day.sql: each active (user, day) covers the window days
-- from that day until the day before the user's next active day, at most 7
-- (WAU) or 30 (MAU) days; the coverage starts and ends are summed per day.
-- Grain: one row per day in engagement (see retention/engagement_day.sql for columns;
--   is_full_window: each of the window's 30 days has activity).
-- Parameters: %(newest_day)s date, as_of - 1.
-- Read by: recsys.stages.retention.full_recompute (in recsys.stages.retention._write_full).
WITH spans AS (
    SELECT a.day,
           lead(a.day) OVER (PARTITION BY a.user_id ORDER BY a.day) AS next_day
    FROM full_active_days AS a
),
deltas AS (
    SELECT s.day, 1 AS d_dau, 1 AS d_wau, 1 AS d_mau FROM spans AS s
    UNION ALL
    SELECT s.day + 1, -1, 0, 0 FROM spans AS s
    UNION ALL
    SELECT LEAST(s.day + 7, COALESCE(s.next_day, s.day + 7)), 0, -1, 0 FROM spans AS s
    UNION ALL
    SELECT LEAST(s.day + 30, COALESCE(s.next_day, s.day + 30)), 0, 0, -1 FROM spans AS s
),
per_day AS (
    SELECT d.day, sum(d.d_dau) AS d_dau, sum(d.d_wau) AS d_wau, sum(d.d_mau) AS d_mau
    FROM deltas AS d
    GROUP BY d.day
),
first_active AS (
    SELECT min(a.day) AS first_day FROM full_active_days AS a
),
days AS (
    SELECT f.first_day + offs.i AS day, f.first_day
    FROM first_active AS f
    CROSS JOIN generate_series(0, %(newest_day)s::date - f.first_day) AS offs(i)
),
running AS (
    SELECT d.day, d.first_day,
           sum(COALESCE(p.d_dau, 0)) OVER w AS dau,
           sum(COALESCE(p.d_wau, 0)) OVER w AS wau,
           sum(COALESCE(p.d_mau, 0)) OVER w AS mau
    FROM days AS d
    LEFT JOIN per_day AS p ON p.day = d.day
    WINDOW w AS (ORDER BY d.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
observed AS (
    -- days is one row per calendar day, so 30 rows are the 30-day window
    SELECT r.*, sum((r.dau > 0)::integer) OVER (ORDER BY r.day ROWS BETWEEN 29 PRECEDING AND CURRENT ROW)
               AS observed_days
    FROM running AS r
)
INSERT INTO engagement (day, dau, wau, mau, stickiness, is_full_window, computed_at)
SELECT o.day, o.dau, o.wau, o.mau, o.dau::double precision / NULLIF(o.mau, 0),
       o.observed_days = 30, now()
FROM observed AS o;
