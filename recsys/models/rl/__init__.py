"""Reinforcement-learning recommenders trained offline from the logs.

* `trajectories`: sessions, states (recent items), actions (shown items), rewards
  (click + retention, discounted across a user's sessions) from logged events.
* `reinforce`: REINFORCE with the top-K off-policy correction (Chen et al., WSDM 2019),
  an advantage actor-critic with a learned behaviour-policy head.

Models never import the database layer: the stage (`recsys.stages.train_rl`) reads the
log and hands arrays in.
"""
