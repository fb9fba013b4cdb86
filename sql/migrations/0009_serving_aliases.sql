-- 0009: serving aliases: a model name (RECSYS_SERVING_ALIAS, default 'default') whose
-- live lists are those of whichever candidate won the night's comparison on the
-- hold-out, so the serving query need not change when the winner does.
--
-- live_recommendations gains one branch per alias, over its model's live partition,
-- with the alias as the model column: `WHERE model = 'default' AND user_id = ...` is
-- still one probe of one partition's index.
CREATE TABLE serving_aliases (
    alias     text        PRIMARY KEY,
    model     text        NOT NULL,            -- the model whose live lists it serves
    run_date  date        NOT NULL,            -- the night whose comparison chose it
    chosen_at timestamptz NOT NULL DEFAULT now()
);

-- One row per alias and night: which candidate won, by how much, against what.
CREATE TABLE alias_choices (
    alias         text        NOT NULL,
    run_date      date        NOT NULL,
    model         text,                         -- NULL: no candidate had a figure; the alias stayed
    model_version text        REFERENCES model_runs (model_version),
    reason        text        NOT NULL,
    figures       jsonb       NOT NULL,         -- each candidate's figure, users, and the margins
    chosen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alias, run_date)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'recsys_reader') THEN
        EXECUTE format('GRANT SELECT ON %1$I.serving_aliases, %1$I.alias_choices TO recsys_reader', current_schema());
    END IF;
END
$$;
