-- 0011: data health per night (recsys.stages.health): one row per as-of date and check
-- of the night's input (event volume against the trailing median, click-through, new
-- users and items, impressions with a propensity and a model version, serving
-- compliance). A check whose status is 'held' puts the night's publishes on hold.
CREATE TABLE data_health (
    run_date       date             NOT NULL,  -- the as-of date D: the checks read day D - 1
    check_name     text             NOT NULL,
    value          double precision,           -- the night's figure (NULL: not measurable)
    baseline       double precision,           -- the median of the trailing days, where the check has one
    threshold_low  double precision,           -- the figure is out of bounds below this ...
    threshold_high double precision,           -- ... or above this (NULL: no such bound)
    status         text             NOT NULL CHECK (status IN ('ok', 'held', 'warned', 'skipped')),
    reason         text             NOT NULL,
    detail         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    computed_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (run_date, check_name)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'recsys_reader') THEN
        EXECUTE format('GRANT SELECT ON %1$I.data_health TO recsys_reader', current_schema());
    END IF;
END
$$;
