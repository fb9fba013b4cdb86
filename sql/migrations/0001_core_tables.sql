-- 0001: source and output tables of the nightly pipeline.
-- Runs with search_path set to the configured schema (default `recsys`), so
-- names are unqualified. Applied once by `recsys db upgrade`, recorded in
-- schema_migrations.

-- Interaction log: one row per event. Append-mostly and loaded in time order,
-- so a BRIN index on event_time lets the nightly extract read one window
-- without scanning the whole log.
CREATE TABLE interactions (
    event_time    timestamptz      NOT NULL,
    user_id       bigint           NOT NULL CHECK (user_id >= 0),
    item_id       bigint           NOT NULL CHECK (item_id >= 0),
    event_type    text             NOT NULL CHECK (event_type IN ('impression', 'click', 'consume')),
    value         double precision CHECK (value = value AND value NOT IN ('Infinity', '-Infinity')),
    session_id    bigint,
    model_version text,            -- impressions: the model version that served the item
    propensity    double precision CHECK (propensity > 0 AND propensity <= 1),
    source        text             NOT NULL DEFAULT 'external'  -- loader that wrote the row
);
CREATE INDEX interactions_event_time_brin ON interactions USING brin (event_time) WITH (pages_per_range = 32, autosummarize = on);
CREATE INDEX interactions_user_time ON interactions (user_id, event_time);
CREATE INDEX interactions_source ON interactions (source);

CREATE TABLE items (
    item_id    bigint PRIMARY KEY CHECK (item_id >= 0),
    title      text,
    topic      text,
    attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
    source     text  NOT NULL DEFAULT 'external'
);

-- One row per trained model (the registry). model_version is unique and names
-- the model and the as-of date it was trained for.
CREATE TABLE model_runs (
    run_id              bigserial   PRIMARY KEY,
    model               text        NOT NULL,
    model_kind          text        NOT NULL,
    model_version       text        NOT NULL UNIQUE,
    run_date            date        NOT NULL,
    data_interval_start timestamptz NOT NULL,
    data_interval_end   timestamptz NOT NULL,
    train_window_start  timestamptz NOT NULL,
    n_interactions      bigint,
    n_users             integer,
    n_items             integer,
    params              jsonb       NOT NULL DEFAULT '{}'::jsonb,
    metrics             jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status              text        NOT NULL CHECK (status IN
                          ('trained', 'rejected', 'published', 'superseded', 'failed')),
    triggered_by        text,
    code_version        text,
    artifact_path       text,
    artifact_sha256     text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    published_at        timestamptz,
    UNIQUE (model, run_date)
);

-- Published top-K lists. Partitioned by model version: each publish builds a
-- fresh partition (COPY, then its index), and attaches it in one short
-- transaction. Each partition also carries CHECK constraints on model and
-- version, so queries on one model skip the others' partitions.
CREATE TABLE recommendations (
    model         text     NOT NULL,
    model_version text     NOT NULL,
    run_date      date     NOT NULL,
    user_id       bigint   NOT NULL,
    rank          smallint NOT NULL CHECK (rank >= 1),
    item_id       bigint   NOT NULL,
    score         real     NOT NULL
) PARTITION BY LIST (model_version);
CREATE INDEX recommendations_user_rank ON recommendations (user_id, rank);

-- The version of each model that serving reads. A backfill of an older date
-- never moves this pointer back (see publish_make_live.sql).
CREATE TABLE live_models (
    model         text        PRIMARY KEY,
    model_version text        NOT NULL REFERENCES model_runs (model_version),
    run_date      date        NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now()
);

-- What serving reads. recsys.stages.publish redefines this view in each publish
-- transaction as a UNION ALL over the live partition of each model (so the
-- planner reads one small table per query, not the partition tree); this is
-- its definition while nothing is published.
CREATE VIEW live_recommendations AS
SELECT model, model_version, run_date, user_id, rank, item_id, score
FROM recommendations
WHERE false;

-- Cohort retention cells. retained_users and rate are NULL while the cell is
-- immature (day N not yet observed); they are never reported as zero.
CREATE TABLE retention (
    retention_kind text        NOT NULL,          -- 'classic' (active on exactly day N)
    cohort_date    date        NOT NULL,          -- day of the users' first activity
    day_n          integer     NOT NULL CHECK (day_n >= 0),
    cohort_size    bigint      NOT NULL,
    retained_users bigint,
    rate           double precision,
    is_mature      boolean     NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (retention_kind, cohort_date, day_n)
);

-- Compact activity tables that keep the retention refresh incremental.
CREATE TABLE user_activity_days (
    user_id bigint NOT NULL,
    day     date   NOT NULL,
    PRIMARY KEY (user_id, day)
);
CREATE INDEX user_activity_days_day ON user_activity_days (day);

CREATE TABLE activity_days_loaded (
    day       date        PRIMARY KEY,
    loaded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_cohorts (
    user_id     bigint PRIMARY KEY,
    cohort_date date   NOT NULL
);
CREATE INDEX user_cohorts_cohort_date ON user_cohorts (cohort_date);

CREATE TABLE eval_metrics (
    model_version text             NOT NULL REFERENCES model_runs (model_version) ON DELETE CASCADE,
    subject       text             NOT NULL,   -- 'model' or a baseline such as 'popularity'
    metric        text             NOT NULL,   -- 'recall', 'ndcg', ...
    k             integer          NOT NULL,
    value         double precision NOT NULL,
    n_users       integer          NOT NULL,
    PRIMARY KEY (model_version, subject, metric, k)
);
