"""Simulated interaction logs: open-loop (synthetic_log) and the closed loop served from the published
lists (world, closed_loop; stepwise plays it one day per task for the recsys_closed_loop DAG)."""
