-- ab/model_retention_compare: the A/B read-out of two serving models' N-day
-- retention over a range of serve days, from the mature cells of model_retention.
-- Grain: one row. Units are (user, serve day) pairs: a user served on several
-- days of the range counts once per day.
--   n_a, k_a, rate_a, ci_low_a, ci_high_a   model A: users served, retained, rate, Wilson 95 percent
--   n_b, k_b, rate_b, ci_low_b, ci_high_b   model B: the same
--   serve_days_a, serve_days_b              mature serve days that contributed
--   diff                                    rate_a - rate_b
--   diff_ci_low, diff_ci_high               Newcombe's hybrid score 95 percent interval of diff
--                                           (Newcombe 1998, method 10: from the two Wilson intervals)
--   z, p_value                              pooled two-proportion z-test, two-sided
-- An arm with no mature cell has n = 0 and NULL rate, interval and test.
-- Parameters:
--   %(model_a)s, %(model_b)s  text, model versions as recorded on impressions
--   %(day_n)s                 integer, the N
--   %(first_day)s, %(last_day)s  date, serve days included (both ends)
-- Read by: recsys.metrics.ab.compare_models.
WITH arms AS (
    SELECT m.model_version,
           sum(m.users_served) AS n,
           sum(m.retained_users) AS k,
           count(*) AS serve_days
    FROM model_retention AS m
    WHERE m.model_version IN (%(model_a)s, %(model_b)s)
      AND m.day_n = %(day_n)s
      AND m.is_mature
      AND m.serve_day BETWEEN %(first_day)s::date AND %(last_day)s::date
    GROUP BY m.model_version
),
pair AS (
    SELECT COALESCE(a.n, 0)::bigint AS n_a, COALESCE(a.k, 0)::bigint AS k_a,
           COALESCE(a.serve_days, 0) AS serve_days_a,
           COALESCE(b.n, 0)::bigint AS n_b, COALESCE(b.k, 0)::bigint AS k_b,
           COALESCE(b.serve_days, 0) AS serve_days_b
    FROM (SELECT 1) AS one
    LEFT JOIN arms AS a ON a.model_version = %(model_a)s
    LEFT JOIN arms AS b ON b.model_version = %(model_b)s
),
rated AS (
    SELECT p.*,
           p.k_a::double precision / NULLIF(p.n_a, 0) AS rate_a,
           p.k_b::double precision / NULLIF(p.n_b, 0) AS rate_b,
           wa.low AS ci_low_a, wa.high AS ci_high_a,
           wb.low AS ci_low_b, wb.high AS ci_high_b,
           t.diff, t.z, t.p_value
    FROM pair AS p
    CROSS JOIN LATERAL wilson_interval(p.k_a, p.n_a) AS wa
    CROSS JOIN LATERAL wilson_interval(p.k_b, p.n_b) AS wb
    CROSS JOIN LATERAL two_proportion_z_test(p.k_a, p.n_a, p.k_b, p.n_b) AS t
)
SELECT r.n_a, r.k_a, r.rate_a, r.ci_low_a, r.ci_high_a, r.serve_days_a,
       r.n_b, r.k_b, r.rate_b, r.ci_low_b, r.ci_high_b, r.serve_days_b,
       r.diff,
       r.diff - sqrt((r.rate_a - r.ci_low_a) ^ 2 + (r.ci_high_b - r.rate_b) ^ 2) AS diff_ci_low,
       r.diff + sqrt((r.ci_high_a - r.rate_a) ^ 2 + (r.rate_b - r.ci_low_b) ^ 2) AS diff_ci_high,
       r.z, r.p_value
FROM rated AS r;
