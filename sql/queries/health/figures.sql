-- health/figures: the night's input figures and the median of each over the trailing
-- days, for the data-health checks. Day 0 is the 24 hours before %(end)s (the data
-- interval's day); days 1 .. %(history_days)s before it are the history. A history
-- day counts only once the log has begun (an event on it or earlier within the
-- window read), so a young log is not compared with days before its first event.
-- A user (item) is new on a day when it has no event in the %(lookback_days)s days
-- before it; the shares are of the day's events.
-- Grain: one row.
-- Parameters: {source}, the log (recsys.source.Source.relation); %(end)s timestamptz,
--   the interval end; %(history_days)s integer; %(lookback_days)s integer;
--   %(impression_types)s text[], the event types of role impression;
--   %(positive_types)s text[], the positive types (click-through's clicks).
-- Read by: recsys.stages.health.check_health.
WITH events AS (
    SELECT src.user_id, src.item_id, src.event_type, src.propensity, src.model_version,
           floor(extract(epoch FROM (%(end)s::timestamptz - src.event_time)) / 86400)::int AS days_ago
    FROM {source} AS src
    WHERE src.event_time >= %(end)s::timestamptz - make_interval(days => %(history_days)s + 1 + %(lookback_days)s)
      AND src.event_time < %(end)s::timestamptz
), log_begins AS (  -- the oldest day of the window that has an event: no history counts before it
    SELECT max(days_ago) AS oldest FROM events
), user_days AS (
    SELECT user_id, days_ago, count(*) AS n,
           lead(days_ago) OVER (PARTITION BY user_id ORDER BY days_ago) AS seen_before
    FROM events
    GROUP BY user_id, days_ago
), item_days AS (
    SELECT item_id, days_ago, count(*) AS n,
           lead(days_ago) OVER (PARTITION BY item_id ORDER BY days_ago) AS seen_before
    FROM events
    GROUP BY item_id, days_ago
), new_users AS (
    SELECT days_ago, sum(n) AS events
    FROM user_days
    WHERE days_ago <= %(history_days)s AND (seen_before IS NULL OR seen_before > days_ago + %(lookback_days)s)
    GROUP BY days_ago
), new_items AS (
    SELECT days_ago, sum(n) AS events
    FROM item_days
    WHERE days_ago <= %(history_days)s AND (seen_before IS NULL OR seen_before > days_ago + %(lookback_days)s)
    GROUP BY days_ago
), counts AS (
    SELECT days_ago,
           count(*) AS events,
           count(*) FILTER (WHERE event_type = ANY (%(impression_types)s)) AS impressions,
           count(*) FILTER (WHERE event_type = ANY (%(positive_types)s)) AS positives,
           count(*) FILTER (WHERE event_type = ANY (%(impression_types)s) AND propensity IS NOT NULL) AS with_propensity,
           count(*) FILTER (WHERE event_type = ANY (%(impression_types)s) AND model_version IS NOT NULL) AS with_version
    FROM events
    WHERE days_ago <= %(history_days)s
    GROUP BY days_ago
), daily AS (  -- every day of the history the log covers, a day without events included
    SELECT d.days_ago,
           coalesce(c.events, 0) AS events,
           coalesce(c.impressions, 0) AS impressions,
           c.positives::float8 / nullif(c.impressions, 0) AS ctr,
           coalesce(nu.events, 0)::float8 / nullif(c.events, 0) AS new_user_share,
           coalesce(ni.events, 0)::float8 / nullif(c.events, 0) AS new_item_share,
           c.with_propensity::float8 / nullif(c.impressions, 0) AS propensity_share,
           c.with_version::float8 / nullif(c.impressions, 0) AS version_share
    FROM generate_series(0, %(history_days)s) AS d (days_ago)
    CROSS JOIN log_begins AS b
    LEFT JOIN counts AS c ON c.days_ago = d.days_ago
    LEFT JOIN new_users AS nu ON nu.days_ago = d.days_ago
    LEFT JOIN new_items AS ni ON ni.days_ago = d.days_ago
    WHERE d.days_ago = 0 OR d.days_ago <= b.oldest
)
SELECT
    count(*) FILTER (WHERE days_ago > 0) AS history_days,
    max(events) FILTER (WHERE days_ago = 0) AS events,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY events) FILTER (WHERE days_ago > 0) AS events_median,
    max(impressions) FILTER (WHERE days_ago = 0) AS impressions,
    count(*) FILTER (WHERE days_ago > 0 AND impressions > 0) AS history_impression_days,
    max(ctr) FILTER (WHERE days_ago = 0) AS ctr,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY ctr) FILTER (WHERE days_ago > 0) AS ctr_median,
    max(new_user_share) FILTER (WHERE days_ago = 0) AS new_user_share,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY new_user_share) FILTER (WHERE days_ago > 0) AS new_user_median,
    max(new_item_share) FILTER (WHERE days_ago = 0) AS new_item_share,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY new_item_share) FILTER (WHERE days_ago > 0) AS new_item_median,
    max(propensity_share) FILTER (WHERE days_ago = 0) AS propensity_share,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY propensity_share) FILTER (WHERE days_ago > 0) AS propensity_median,
    max(version_share) FILTER (WHERE days_ago = 0) AS version_share,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY version_share) FILTER (WHERE days_ago > 0) AS version_median
FROM daily
