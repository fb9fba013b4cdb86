-- sim/items_clear: forget the true item quality and appeal one simulated source
-- wrote before, in the transaction that writes them again (COPY into sim_items).
-- Grain: deletes rows of sim_items (one per item of the source).
-- Parameters: %(source)s text, the simulation's source name.
-- Run by: recsys.sim.closed_loop.write_items.
DELETE FROM sim_items WHERE sim_source = %(source)s
