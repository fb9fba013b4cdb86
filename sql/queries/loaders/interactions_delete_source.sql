-- loaders/interactions_delete_source: forget the interactions one source wrote
-- before, in the transaction that writes them again, so re-running a load
-- replaces its rows instead of duplicating them.
-- Grain: deletes rows of interactions; rowcount = rows removed.
-- Parameters: %(source)s text, the loader's source name.
-- Run by: recsys.loaders.copy_writer.replace_source_rows, under the source's lock.
DELETE FROM interactions WHERE source = %(source)s
