-- sim/user_days_clear: forget the ground truth of one simulated day of one
-- source, in the transaction that writes it again (COPY into sim_user_days).
-- Grain: deletes rows of sim_user_days (one per user in the system that day).
-- Parameters: %(source)s text, the simulation's source name; %(day)s date.
-- Run by: recsys.sim.closed_loop._write_truth.
DELETE FROM sim_user_days WHERE sim_source = %(source)s AND day = %(day)s
