-- 0006: external keys, and a catalogue that knows when an item may be served.
--
-- A team's log often carries text or uuid ids (`U81994`, `N138`, a UUID). The
-- models and the published tables work on bigint ids, so recsys keeps its own
-- maps: each external key gets an internal bigint the first time a night (or a
-- loader) sees it, from an identity sequence, so an id is never reused and two
-- nights that meet the same new key concurrently end with one row
-- (INSERT ... ON CONFLICT DO NOTHING, see sql/queries/keys/). A source whose ids
-- are already integers does not use these tables.
CREATE TABLE user_keys (
    user_key   text   PRIMARY KEY,
    user_id    bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    first_seen timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE item_keys (
    item_key   text   PRIMARY KEY,
    item_id    bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    first_seen timestamptz NOT NULL DEFAULT now()
);

-- The catalogue. item_key: the item's key in the log when it is text (NULL for
-- integer ids); topic is the category. available_from / available_until bound
-- when an item may be recommended (NULL: no bound); published_at is when it
-- first appeared (news), which availability defaults to nothing.
ALTER TABLE items
    ADD COLUMN item_key        text UNIQUE,
    ADD COLUMN body            text,
    ADD COLUMN published_at    timestamptz,
    ADD COLUMN available_from  timestamptz,
    ADD COLUMN available_until timestamptz,
    ADD CONSTRAINT items_availability_order CHECK (available_until IS NULL OR available_from IS NULL
                                                   OR available_until > available_from);
-- the publish and score stages look up what is unavailable at a time
CREATE INDEX items_available_until ON items (available_until) WHERE available_until IS NOT NULL;
CREATE INDEX items_available_from ON items (available_from) WHERE available_from IS NOT NULL;

-- Published lists carry what serving needs without a join: the external keys
-- (NULL when the log's ids are integers) and each item's expiry (NULL when the
-- catalogue sets none), so the live view can drop an item that expires after
-- the publish with a filter on the row it already read.
ALTER TABLE recommendation_lists
    ADD COLUMN user_key     text,
    ADD COLUMN item_keys    text[],
    ADD COLUMN item_expires timestamptz[];

-- Both views gain user_key and item_key (the external keys, or the integer ids
-- as text), and the live one drops expired items; each live branch names its
-- model as a constant, so a query on one model prunes the others. Same branch as
-- sql/queries/publish/live_recommendations_branch.sql at the time of this migration.
DO $$
DECLARE
    live record;
    branches text[] := '{}';
    branch constant text :=
        'SELECT %L::text AS model, l.model_version, l.run_date, l.user_id, r.rank::smallint AS rank, r.item_id, r.score,'
        ' coalesce(l.user_key, l.user_id::text) AS user_key, coalesce(r.item_key, r.item_id::text) AS item_key'
        ' FROM %I AS l CROSS JOIN LATERAL unnest(l.item_ids, l.scores, l.item_keys, l.item_expires)'
        ' WITH ORDINALITY AS r (item_id, score, item_key, expires, rank)'
        ' WHERE r.expires IS NULL OR r.expires > now()';
BEGIN
    FOR live IN SELECT model, run_date FROM live_models ORDER BY model LOOP
        branches := branches || format(branch, live.model,
                                       'recommendations_' || live.model || '_' || to_char(live.run_date, 'YYYYMMDD'));
    END LOOP;
    IF cardinality(branches) = 0 THEN
        branches := ARRAY[format(branch, NULL, 'recommendation_lists') || ' AND false'];
    END IF;
    EXECUTE 'CREATE OR REPLACE VIEW live_recommendations AS ' || array_to_string(branches, ' UNION ALL ');
END
$$;

CREATE OR REPLACE VIEW recommendations AS
SELECT l.model, l.model_version, l.run_date, l.user_id, r.rank::smallint AS rank, r.item_id, r.score,
       coalesce(l.user_key, l.user_id::text) AS user_key, coalesce(r.item_key, r.item_id::text) AS item_key
FROM recommendation_lists AS l
CROSS JOIN LATERAL unnest(l.item_ids, l.scores, l.item_keys) WITH ORDINALITY AS r (item_id, score, item_key, rank);
