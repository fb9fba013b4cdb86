-- 0014: hourly lists of new items between nights (issue #19, recsys_fresh_items).
--
-- live_models.model_version stays the trained model that serves (the gate, evaluate,
-- choose and ope read its artifact); lists_version is the version whose partition of
-- recommendation_lists the live view reads: the model's own lists after a nightly publish,
-- or an hourly version '<model>@YYYY-MM-DDTHH' (the hour's end, UTC) that merged the hour's
-- new items into them. A nightly publish sets it back to its own version, so the next night
-- supersedes the hourly lists. NULL (a row written without it) means the model's own lists.
ALTER TABLE live_models ADD COLUMN lists_version text;
UPDATE live_models SET lists_version = model_version;

-- One row per hourly version: what it was built from, so a re-run of the hour merges into
-- the same lists (idempotent) and the partitions can be found and dropped.
CREATE TABLE fresh_lists (
    model_version text        PRIMARY KEY,   -- '<model>@YYYY-MM-DDTHH', the hour's end
    model         text        NOT NULL,
    base_version  text        NOT NULL REFERENCES model_runs (model_version),  -- the model scored with
    base_lists    text        NOT NULL,      -- the lists merged into (a nightly or an earlier hour)
    run_date      date        NOT NULL,      -- the base model's as-of date
    hour_start    timestamptz NOT NULL,
    hour_end      timestamptz NOT NULL CHECK (hour_end > hour_start),
    new_items     integer     NOT NULL,
    users         integer     NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fresh_lists_model_hour ON fresh_lists (model, hour_end DESC);
