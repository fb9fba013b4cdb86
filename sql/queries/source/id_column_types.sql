-- source/id_column_types: the types of the log's user_id and item_id columns
-- (text or uuid ids are mapped through user_keys / item_keys); no row when the
-- log does not exist.
-- Grain: one row per id column found (column_name, data_type).
-- Parameters: %(schema)s, %(table)s text: the configured log.
-- Read by: recsys.source.keyed_id_columns (the publish stage).
SELECT column_name, data_type
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = %(table)s AND column_name IN ('user_id', 'item_id')
