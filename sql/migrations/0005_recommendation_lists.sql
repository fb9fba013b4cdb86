-- 0005: store each user's list as one row of arrays.
--
-- A published version was one row per recommendation (users x K rows, each
-- repeating model, version and date, plus a (user_id, rank) index of the
-- same length). It is now one row per user: the items and scores in rank
-- order as arrays, and a unique index on user_id, so a publish writes and
-- indexes about K times fewer tuples (bench/serving.py measures it).
-- The SQL interface does not change: `recommendations` (all kept versions)
-- and `live_recommendations` (what serving reads) are views with the same
-- columns as before, one row per recommendation, rank from 1.
-- Existing partitions are converted in place, so history is kept.

CREATE TABLE recommendation_lists (
    model         text     NOT NULL,
    model_version text     NOT NULL,
    run_date      date     NOT NULL,
    user_id       bigint   NOT NULL,
    item_ids      bigint[] NOT NULL,  -- rank order: item_ids[1] is rank 1
    scores        real[]   NOT NULL,
    CHECK (cardinality(item_ids) >= 1 AND cardinality(item_ids) = cardinality(scores))
) PARTITION BY LIST (model_version);
-- No index on the parent: each version's table gets its own UNIQUE (user_id)
-- index when published (a parent's unique index would have to lead with the
-- partition key, which the serving lookup does not filter on).

DO $$
DECLARE
    part record;
    names text[] := '{}';
    bounds text[] := '{}';
    branches text[] := '{}';
    live record;
BEGIN
    -- build each version's list table beside its old partition
    FOR part IN
        SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound, r.model, r.model_version
        FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        LEFT JOIN model_runs AS r
               ON 'recommendations_' || r.model || '_' || to_char(r.run_date, 'YYYYMMDD') = c.relname
        WHERE i.inhparent = 'recommendations'::regclass
    LOOP
        EXECUTE format(
            'CREATE TABLE %I (LIKE recommendation_lists INCLUDING CONSTRAINTS);'
            ' INSERT INTO %I SELECT model, model_version, run_date, user_id,'
            '   array_agg(item_id ORDER BY rank), array_agg(score ORDER BY rank) FROM %I GROUP BY 1, 2, 3, 4',
            part.name || '_lists', part.name || '_lists', part.name);
        IF part.model IS NOT NULL THEN  -- as publish adds them: they let the planner skip other versions
            EXECUTE format('ALTER TABLE %I ADD CHECK (model_version IS NOT NULL AND model_version = %L),'
                           ' ADD CHECK (model = %L)', part.name || '_lists', part.model_version, part.model);
        END IF;
        names := names || part.name;
        bounds := bounds || part.bound;
    END LOOP;
    -- point the live view at the new tables before the old ones go
    FOR live IN SELECT model, run_date FROM live_models ORDER BY model LOOP
        branches := branches || format(
            'SELECT l.model, l.model_version, l.run_date, l.user_id, r.rank::smallint AS rank, r.item_id, r.score'
            ' FROM %I AS l CROSS JOIN LATERAL unnest(l.item_ids, l.scores) WITH ORDINALITY AS r (item_id, score, rank)',
            'recommendations_' || live.model || '_' || to_char(live.run_date, 'YYYYMMDD') || '_lists');
    END LOOP;
    IF cardinality(branches) = 0 THEN
        branches := ARRAY['SELECT l.model, l.model_version, l.run_date, l.user_id, r.rank::smallint AS rank,'
                          ' r.item_id, r.score FROM recommendation_lists AS l'
                          ' CROSS JOIN LATERAL unnest(l.item_ids, l.scores) WITH ORDINALITY AS r (item_id, score, rank)'
                          ' WHERE false'];
    END IF;
    EXECUTE 'CREATE OR REPLACE VIEW live_recommendations AS ' || array_to_string(branches, ' UNION ALL ');
    -- swap: the old partitioned table goes, the list tables take its partitions' names
    DROP TABLE recommendations;
    FOR i IN 1 .. cardinality(names) LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', names[i] || '_lists', names[i]);
        EXECUTE format('CREATE UNIQUE INDEX %I ON %I (user_id)', names[i] || '_user', names[i]);
        EXECUTE format('ALTER TABLE recommendation_lists ATTACH PARTITION %I %s', names[i], bounds[i]);
    END LOOP;
END
$$;

-- Every kept version, one row per recommendation, as the old table was.
CREATE VIEW recommendations AS
SELECT l.model, l.model_version, l.run_date, l.user_id, r.rank::smallint AS rank, r.item_id, r.score
FROM recommendation_lists AS l
CROSS JOIN LATERAL unnest(l.item_ids, l.scores) WITH ORDINALITY AS r (item_id, score, rank);
