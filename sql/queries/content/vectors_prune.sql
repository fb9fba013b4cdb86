-- content/vectors_prune: drop the vectors of a version whose item no longer has text.
-- Grain: the rows of item_vectors deleted; none returned (rowcount = rows deleted).
-- Parameters: %(encoder_version)s text; %(keep)s bigint[], the items with text.
-- Run by: recsys.stages.embed.embed_catalogue.
DELETE FROM item_vectors WHERE encoder_version = %(encoder_version)s AND item_id <> ALL(%(keep)s)
