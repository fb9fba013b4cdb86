-- loaders/items_delete_source: forget the items one source described before
-- (the load's new items, if any, are upserted next).
-- Grain: deletes rows of items.
-- Parameters: %(source)s text, the loader's source name.
-- Run by: recsys.loaders.copy_writer.replace_source_rows and recsys.loaders.mind.load_mind, under the source's lock.
DELETE FROM items WHERE source = %(source)s
