-- source/columns: the columns of the configured source and their types,
-- checked before the COPY so a wrong view fails with a message naming the
-- column, not with a parse error.
-- Grain: one row per column (column_name, data_type); none when the source is missing.
-- Parameters: %(schema)s, %(table)s text, the source's schema and name.
-- Read by: recsys.source.inspect_source, for every stage that reads the log.
SELECT column_name, data_type
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = %(table)s
