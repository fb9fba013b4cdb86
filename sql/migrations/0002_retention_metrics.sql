-- 0002: retention metrics beyond classic N-day retention: rolling retention
-- (in `retention`), daily engagement, per-model retention with Wilson
-- intervals, the compact tables that keep them incremental, the indexes the
-- nightly refresh needs at 10M interactions, and two statistics functions.
-- Runs with search_path set to the configured schema (names unqualified).

-- `retention` now holds two kinds: 'classic' (active on exactly day c + N) and
-- 'rolling' (active on day c + N or any later day observed so far).
ALTER TABLE retention
    ADD CONSTRAINT retention_kind_known CHECK (retention_kind IN ('classic', 'rolling'));

-- Last active day of each user, next to the first: rolling retention counts
-- the members of a cohort whose last day is on or after c + N.
ALTER TABLE user_cohorts ADD COLUMN last_day date;
UPDATE user_cohorts AS uc
SET last_day = COALESCE(
    (SELECT max(a.day) FROM user_activity_days AS a WHERE a.user_id = uc.user_id), uc.cohort_date);
ALTER TABLE user_cohorts ALTER COLUMN last_day SET NOT NULL;
-- Cohort members with their last day, read index-only by the rolling cells;
-- last_day alone finds the users whose last day a reloaded day may move.
DROP INDEX IF EXISTS user_cohorts_cohort_date;
CREATE INDEX user_cohorts_cohort_last ON user_cohorts (cohort_date, last_day);
CREATE INDEX user_cohorts_last_day ON user_cohorts (last_day);

-- (day, user_id) lets DAU/WAU/MAU count distinct users of a day range index-only.
DROP INDEX IF EXISTS user_activity_days_day;
CREATE INDEX user_activity_days_day_user ON user_activity_days (day, user_id);

-- Which model version served which user on which day: the distinct
-- (day, model_version, user_id) of impressions carrying a model_version.
-- Loaded with user_activity_days, for the days recorded in activity_days_loaded.
CREATE TABLE user_model_days (
    day           date   NOT NULL,
    model_version text   NOT NULL,
    user_id       bigint NOT NULL,
    PRIMARY KEY (day, model_version, user_id)
);

-- The settings the compact tables were built with. Days in another time zone
-- or another notion of "active" cannot be mixed into them: a refresh with
-- different settings stops and says so (see recsys.stages.retention.reset_retention).
CREATE TABLE retention_state (
    singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    timezone           text        NOT NULL,
    active_event_types text[]      NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Daily engagement: distinct active users on the day (DAU), in the 7 days
-- ending on it (WAU) and in the 30 days ending on it (MAU).
CREATE TABLE engagement (
    day            date        PRIMARY KEY,
    dau            bigint      NOT NULL,
    wau            bigint      NOT NULL,
    mau            bigint      NOT NULL,
    stickiness     double precision,       -- dau / mau; NULL when mau = 0
    is_full_window boolean     NOT NULL,   -- the 30-day window lies inside the observed days
    computed_at    timestamptz NOT NULL DEFAULT now()
);

-- Per-model retention: of the users model_version served (showed an
-- impression to) on serve_day, the share active on exactly serve_day + N.
-- Immature cells (serve_day + N not yet observed) have retained_users, rate
-- and the interval NULL, never 0.
CREATE TABLE model_retention (
    model_version  text        NOT NULL,
    serve_day      date        NOT NULL,
    day_n          integer     NOT NULL CHECK (day_n >= 0),
    users_served   bigint      NOT NULL CHECK (users_served > 0),
    retained_users bigint,
    rate           double precision,
    ci_low         double precision,   -- Wilson 95% interval of rate
    ci_high        double precision,
    is_mature      boolean     NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_version, serve_day, day_n)
);
CREATE INDEX model_retention_day ON model_retention (serve_day, day_n);

-- Wilson score interval of a binomial proportion (Wilson 1927): the p with
-- |phat - p| <= z sqrt(p (1 - p) / n). z = 1.96 gives the 95% interval.
-- NULLs when trials = 0.
CREATE FUNCTION wilson_interval(
    successes bigint, trials bigint, z double precision DEFAULT 1.959963984540054,
    OUT low double precision, OUT high double precision)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- CASE first: GREATEST and LEAST ignore NULLs, so 0 trials would give [0, 1].
    SELECT CASE WHEN n IS NOT NULL THEN
               GREATEST(0.0, (phat + z * z / (2 * n) - z * sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)))
                             / (1 + z * z / n)) END,
           CASE WHEN n IS NOT NULL THEN
               LEAST(1.0, (phat + z * z / (2 * n) + z * sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)))
                          / (1 + z * z / n)) END
    FROM (SELECT successes::double precision / NULLIF(trials, 0) AS phat,
                 NULLIF(trials, 0)::double precision AS n) AS s
$$;

-- Complementary error function, Numerical Recipes' erfcc (Chebyshev fit,
-- fractional error below 1.2e-7 everywhere, so tiny p-values keep their digits).
CREATE FUNCTION erfc_approx(x double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN abs(x) > 26 THEN CASE WHEN x > 0 THEN 0.0 ELSE 2.0 END  -- exp() would underflow
        WHEN x >= 0 THEN r ELSE 2.0 - r END
    FROM (
        SELECT t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                 + t * (-0.82215223 + t * 0.17087277))))))))) AS r
        FROM (SELECT LEAST(abs(x), 26.0) AS z, 1.0 / (1.0 + 0.5 * LEAST(abs(x), 26.0)) AS t) AS zt
    ) AS e
$$;

-- Two-proportion z-test of p1 = k1/n1 against p2 = k2/n2 with the pooled
-- standard error; two-sided p-value. diff = p1 - p2. When the pooled rate is
-- 0 or 1 both rates are equal: z = 0, p_value = 1. NULLs when n1 or n2 is 0.
CREATE FUNCTION two_proportion_z_test(
    k1 bigint, n1 bigint, k2 bigint, n2 bigint,
    OUT diff double precision, OUT z double precision, OUT p_value double precision)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p1 - p2, zz, CASE WHEN zz IS NOT NULL THEN LEAST(1.0, erfc_approx(abs(zz) / sqrt(2.0))) END
    FROM (
        SELECT p1, p2, CASE WHEN se = 0 THEN 0.0 ELSE (p1 - p2) / se END AS zz
        FROM (
            SELECT k1::double precision / NULLIF(n1, 0) AS p1,
                   k2::double precision / NULLIF(n2, 0) AS p2,
                   sqrt(pool * (1 - pool) * (1.0 / NULLIF(n1, 0) + 1.0 / NULLIF(n2, 0))) AS se
            FROM (SELECT (k1 + k2)::double precision / NULLIF(n1 + n2, 0) AS pool) AS pooled
        ) AS rates
    ) AS tested
$$;
