-- retention_full_recompute: every classic N-day retention cell of the cohorts
-- before as_of, computed from scratch from the interaction log (it does not
-- read the compact tables user_activity_days / user_cohorts, so it checks them).
-- Grain: one row per (retention_kind, cohort_date, day_n) in retention, for
--   every non-empty cohort c < as_of and every N:
--   mature (retained_users, rate set) iff c + N <= as_of - 1; otherwise
--   retained_users and rate are NULL and is_mature is false.
-- Parameters:
--   %(kind)s            text, retention_kind ('classic')
--   %(as_of_start)s     timestamptz, as_of 00:00 UTC (events before it count)
--   %(newest_day)s      date, as_of - 1
--   %(active)s          text[], event types that count as activity
--   %(retention_days)s  integer[], the N of the cells
-- {source} is the configured interaction table, quoted by the caller.
-- Read by: recsys.retention.full_recompute (repairs, and tests comparing it
--   with the incremental refresh).
WITH active_days AS (
    SELECT DISTINCT i.user_id, (i.event_time AT TIME ZONE 'UTC')::date AS day
    FROM {source} AS i
    WHERE i.event_time < %(as_of_start)s::timestamptz
      AND i.event_type = ANY(%(active)s::text[])
),
cohorts AS (
    SELECT a.user_id, min(a.day) AS cohort_date
    FROM active_days AS a
    GROUP BY a.user_id
),
cohort_sizes AS (
    SELECT c.cohort_date, count(*) AS cohort_size
    FROM cohorts AS c
    GROUP BY c.cohort_date
),
horizons AS (
    SELECT DISTINCT n AS day_n
    FROM unnest(%(retention_days)s::integer[]) AS n
),
retained AS (
    SELECT c.cohort_date, h.day_n, count(*) AS retained_users
    FROM cohorts AS c
    CROSS JOIN horizons AS h
    JOIN active_days AS a
      ON a.user_id = c.user_id AND a.day = c.cohort_date + h.day_n
    GROUP BY c.cohort_date, h.day_n
),
cells AS (
    SELECT s.cohort_date, h.day_n, s.cohort_size,
           s.cohort_date + h.day_n <= %(newest_day)s::date AS is_mature,
           COALESCE(r.retained_users, 0) AS retained_users
    FROM cohort_sizes AS s
    CROSS JOIN horizons AS h
    LEFT JOIN retained AS r
      ON r.cohort_date = s.cohort_date AND r.day_n = h.day_n
)
INSERT INTO retention
    (retention_kind, cohort_date, day_n, cohort_size, retained_users, rate, is_mature, computed_at)
SELECT %(kind)s, c.cohort_date, c.day_n, c.cohort_size,
       CASE WHEN c.is_mature THEN c.retained_users END,
       CASE WHEN c.is_mature THEN c.retained_users::double precision / c.cohort_size END,
       c.is_mature, now()
FROM cells AS c;
