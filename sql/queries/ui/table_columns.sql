-- ui/table_columns: the columns of one table of the recsys schema, to tell
-- whether an optional table (added by a later migration) is there yet.
-- Grain: one row per column; none when the table is missing.
-- Parameters: %(table)s text, the unqualified table name.
-- Read by: recsys.ui.data._has_columns (optional panels).
SELECT a.attname AS column_name
FROM pg_attribute AS a
WHERE a.attrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(%(table)s))
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY a.attnum
