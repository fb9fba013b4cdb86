-- 0004: off-policy estimates checked against what happened, and the closed-loop
-- simulator's ground truth (kept apart from `interactions`, which is all the
-- models ever see). Runs with search_path set to the configured schema.

-- One row per (as-of date, candidate policy): the headline off-policy
-- estimate of the policy's D1 return rate from the logged impressions of the
-- run's interval, with its bootstrap 95% interval. `realised` stays NULL until
-- the arm that served that policy has a mature D1 cell in model_retention.
-- Read by the UI panel "OPE: predicted vs realised" (ui_ope_series.sql).
CREATE TABLE ope_estimates (
    run_date        date             NOT NULL,
    policy          text             NOT NULL,   -- model name, e.g. 'rl_reinforce'
    model_version   text,                        -- the candidate version estimated
    estimator       text             NOT NULL CHECK (estimator IN ('ips', 'snips', 'dr')),
    target          text             NOT NULL,   -- 'return_d1'
    predicted       double precision NOT NULL,
    ci_low          double precision,
    ci_high         double precision,
    realised        double precision,            -- realised rate of the serving arm; NULL until mature
    realised_version text,                       -- the serving version whose cell gave `realised`
    n_units         bigint           NOT NULL,   -- logged sessions used
    ess             double precision,            -- effective sample size of the (clipped) weights
    weight_cap      double precision,
    computed_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (run_date, policy)
);

-- Ground truth of a closed-loop simulation, one row per simulated user and day
-- on which the user was in the system. Never read by training.
CREATE TABLE sim_user_days (
    sim_source       text             NOT NULL,   -- e.g. 'closed_loop:seed=7'
    day              date             NOT NULL,
    user_id          bigint           NOT NULL,
    arm              text             NOT NULL,
    active           boolean          NOT NULL,   -- came that day (saw a slate)
    satisfaction     double precision NOT NULL,   -- after the day's consumption
    return_prob      double precision NOT NULL,   -- true probability of coming back the next day
    churned          boolean          NOT NULL,   -- left for good at the end of the day
    clicks           integer          NOT NULL,
    consumed         integer          NOT NULL,
    consumed_quality double precision,            -- mean quality of consumed items; NULL if none
    PRIMARY KEY (sim_source, day, user_id)
);

-- Item ground truth of a closed-loop simulation.
CREATE TABLE sim_items (
    sim_source text             NOT NULL,
    item_id    bigint           NOT NULL,
    topic      integer          NOT NULL,
    quality    double precision NOT NULL,
    appeal     double precision NOT NULL,
    PRIMARY KEY (sim_source, item_id)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'recsys_reader') THEN
        EXECUTE format('GRANT SELECT ON %I.ope_estimates TO recsys_reader', current_schema());
    END IF;
END
$$;
