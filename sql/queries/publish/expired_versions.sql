-- publish/expired_versions: versions of a model whose partitions fall outside
-- the history kept: all but the %(keep)s newest as-of dates, never the live one.
-- Grain: one row per expired model_version.
-- Parameters: %(model)s text; %(keep)s integer, as-of dates kept.
-- Read by: recsys.stages.publish.publish_lists, which drops their partitions in
--   the publish transaction.
WITH attached AS (
    SELECT r.model_version, r.run_date
    FROM model_runs AS r
    WHERE r.model = %(model)s
      AND to_regclass(quote_ident('recommendations_' || r.model || '_' || to_char(r.run_date, 'YYYYMMDD'))) IS NOT NULL
), ranked AS (
    SELECT model_version, row_number() OVER (ORDER BY run_date DESC) AS newest_first
    FROM attached
)
SELECT ranked.model_version
FROM ranked
LEFT JOIN live_models AS l ON l.model_version = ranked.model_version
WHERE ranked.newest_first > %(keep)s AND l.model_version IS NULL
