-- health/compliance: serving compliance of the interval's day, per model version tagged
-- on its impressions: how many impressions carry it, what the registry says of it, and
-- how many of them show an item that is in that version's published list for that user.
-- `state`: 'kept' (published, its lists are kept: measured), 'not_kept' (published, its
-- lists dropped beyond RECSYS_KEEP_VERSIONS: cannot be measured), 'never_published'
-- (registered but its lists never went out: none of its impressions complies), or
-- 'unregistered' (not a version of model_runs: served by something else, e.g. the
-- simulator's logging policy).
-- Grain: one row per model_version tagged on an impression of the day.
-- Parameters: {source}, the log (recsys.source.Source.relation); %(start)s, %(end)s
--   timestamptz, the data interval; %(impression_types)s text[].
-- Read by: recsys.stages.health.check_health.
WITH tagged AS (
    SELECT src.model_version, src.user_id, src.item_id
    FROM {source} AS src
    WHERE src.event_time >= %(start)s AND src.event_time < %(end)s
      AND src.event_type = ANY (%(impression_types)s)
      AND src.model_version IS NOT NULL
), versions AS (
    SELECT t.model_version,
           count(*) AS impressions,
           CASE WHEN r.model_version IS NULL THEN 'unregistered'
                WHEN r.published_at IS NULL THEN 'never_published'
                WHEN to_regclass(quote_ident('recommendations_' || r.model || '_' || to_char(r.run_date, 'YYYYMMDD')))
                     IS NULL THEN 'not_kept'
                ELSE 'kept' END AS state
    FROM tagged AS t
    LEFT JOIN model_runs AS r ON r.model_version = t.model_version
    GROUP BY t.model_version, r.model_version, r.published_at, r.model, r.run_date
), listed AS (  -- one probe of the version's partition (its user_id index) per impression
    SELECT t.model_version, count(*) AS in_list
    FROM tagged AS t
    JOIN versions AS v ON v.model_version = t.model_version AND v.state = 'kept'
    WHERE EXISTS (SELECT 1 FROM recommendation_lists AS l
                  WHERE l.model_version = t.model_version AND l.user_id = t.user_id AND t.item_id = ANY (l.item_ids))
    GROUP BY t.model_version
)
SELECT v.model_version, v.state, v.impressions, coalesce(l.in_list, 0) AS in_list
FROM versions AS v
LEFT JOIN listed AS l ON l.model_version = v.model_version
ORDER BY v.impressions DESC, v.model_version
