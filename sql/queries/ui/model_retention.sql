-- ui/model_retention: per-model N-day retention over serve days with a Wilson
-- 95 percent interval, from the mature cells of model_retention (migration 0002).
-- Versions of one model served on the same day are pooled: the model is read
-- from model_runs, or from the version string's part before '@' when the
-- version is not in the registry (e.g. a simulator arm).
-- Grain: one row per (model, day_n, serve_day).
-- Parameters: %(day_ns)s integer[], the N shown; %(days)s integer, serve days shown back from the newest mature one.
-- Read by: recsys.ui.data.model_retention (the "Retention by model" panel).
WITH cells AS (
    SELECT COALESCE(r.model, split_part(m.model_version, '@', 1)) AS model,
           m.day_n, m.serve_day, m.users_served, m.retained_users
    FROM model_retention AS m
    LEFT JOIN model_runs AS r ON r.model_version = m.model_version
    WHERE m.is_mature
      AND m.day_n = ANY(%(day_ns)s)
      AND m.serve_day >= (SELECT max(serve_day) FROM model_retention WHERE is_mature) - %(days)s
),
pooled AS (
    SELECT model, day_n, serve_day,
           sum(users_served)::bigint AS users_served,
           sum(retained_users)::bigint AS retained_users
    FROM cells
    GROUP BY model, day_n, serve_day
)
SELECT p.model, p.day_n, p.serve_day, p.users_served, p.retained_users,
       p.retained_users::double precision / p.users_served AS rate,
       w.low AS ci_low, w.high AS ci_high
FROM pooled AS p
CROSS JOIN LATERAL wilson_interval(p.retained_users, p.users_served) AS w
ORDER BY p.model, p.day_n, p.serve_day
