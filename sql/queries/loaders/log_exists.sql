-- loaders/log_exists: whether the configured log (table or view) exists, so a
-- catalogue load can tell "integer log" from "no log yet" before inspecting it.
-- Grain: one row, a boolean.
-- Parameters: %(schema)s, %(table)s text: the configured log.
-- Read by: recsys.loaders.items.item_keys_are_text.
SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = %(schema)s AND table_name = %(table)s)
