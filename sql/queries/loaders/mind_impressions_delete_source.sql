-- loaders/mind_impressions_delete_source: forget the MIND slots one load wrote
-- before, in the transaction that writes them again, so a reload replaces them.
-- Grain: deletes rows of mind_impressions; rowcount = rows removed.
-- Parameters: %(source)s text, the load's source name ('mind:<folder>').
-- Run by: recsys.loaders.mind.load_mind, under the source's lock.
DELETE FROM mind_impressions WHERE source = %(source)s
