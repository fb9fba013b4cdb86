-- retention/cells_placeholders: immature cells of the newest cohort.
-- Grain: one row per (retention_kind, cohort_date = newest_day, day_n) in retention,
--   with cohort_size known and retained_users, rate NULL, is_mature false.
-- A cell that is already mature is never touched, so a backfill of an old date
-- cannot turn a mature cell back into a placeholder; an immature placeholder
-- only has its cohort_size corrected. If the cohort is now empty, its immature
-- placeholders are deleted (cohorts of size 0 have no rows).
-- Returns one row: cells_written, cells_deleted.
-- Parameters:
--   %(kind)s            text, retention_kind ('classic')
--   %(newest_day)s      date, run_date - 1: the cohort that first appears in this run
--   %(retention_days)s  integer[], the N of the cells
-- Read by: recsys.stages.retention.refresh_retention (in recsys.stages.retention._refresh) (after retention/cells_mature.sql,
--   so an N = 0 cell, mature at once, is not overwritten).
WITH horizons AS (
    SELECT DISTINCT n AS day_n
    FROM unnest(%(retention_days)s::integer[]) AS n
),
cohort AS (
    SELECT count(*) AS cohort_size
    FROM user_cohorts
    WHERE cohort_date = %(newest_day)s::date
),
written AS (
    INSERT INTO retention AS r
        (retention_kind, cohort_date, day_n, cohort_size, retained_users, rate, is_mature, computed_at)
    SELECT %(kind)s, %(newest_day)s::date, h.day_n, c.cohort_size, NULL, NULL, false, now()
    FROM horizons AS h
    CROSS JOIN cohort AS c
    WHERE c.cohort_size > 0
    ON CONFLICT (retention_kind, cohort_date, day_n) DO UPDATE
        SET cohort_size = EXCLUDED.cohort_size,
            computed_at = EXCLUDED.computed_at
        WHERE NOT r.is_mature AND r.cohort_size <> EXCLUDED.cohort_size
    RETURNING 1
),
emptied AS (
    DELETE FROM retention AS r
    USING cohort AS c
    WHERE c.cohort_size = 0
      AND r.retention_kind = %(kind)s
      AND r.cohort_date = %(newest_day)s::date
      AND NOT r.is_mature
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM written) AS cells_written,
    (SELECT count(*) FROM emptied) AS cells_deleted;
