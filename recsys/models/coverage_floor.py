"""A floor of catalogue coverage for published lists: spread a collapsed policy's lists.

A policy trained off-policy on a log without propensities can collapse onto a few items
for everyone (on the MIND sample REINFORCE's lists held 15 distinct items over 4,637
users). `spread_over_items` keeps each user's own ranking but caps how many lists one
item may hold, so the lists hold at least `min_distinct` distinct items: rank by rank,
a user takes her next candidate unless that item already fills `cap` lists, where
cap = slots // min_distinct (slots: the lists' total length). When every slot is filled
under the cap, at least slots / cap >= min_distinct items are listed. A list the capped
pass leaves short is filled from the user's remaining candidates in rank order,
ignoring the cap, so no list is shorter than it was.

Lists that already hold `min_distinct` items are returned as they were (their top K):
the floor changes nothing for a policy that does not collapse.
"""

from __future__ import annotations

import numpy as np

from recsys.models.topk import TopK


def distinct_items(top: TopK) -> int:
    """Distinct items over all the lists."""
    return int(len(np.unique(top.item_index)))


def spread_over_items(candidates: TopK, k: int, min_distinct: int) -> TopK:
    """Top-`k` lists from each user's ranked `candidates` holding at least `min_distinct`
    distinct items where the candidates allow it (see the module docstring).

    Args:
        candidates: each user's ranked candidates (ranks 1..M, M >= k; more than k gives room).
        k: list length.
        min_distinct: the floor; <= 0 turns it off.

    Returns:
        The lists, ranks renumbered 1..k in each user's own candidate order, scores kept.
    """
    order = np.lexsort((candidates.rank, candidates.user_index))
    user, item = candidates.user_index[order], candidates.item_index[order]
    rank, score = candidates.rank[order], candidates.score[order]
    head = rank <= k
    if min_distinct <= 0 or len(np.unique(item[head])) >= min_distinct:
        return TopK(user[head], item[head], rank[head], score[head])
    users, user_pos = np.unique(user, return_inverse=True)
    slots = np.minimum(np.bincount(user_pos, minlength=len(users)), k)
    cap = max(1, int(slots.sum()) // min_distinct)
    taken = np.zeros(len(user), dtype=bool)
    filled = np.zeros(len(users), dtype=np.int64)
    listed = np.zeros(int(item.max()) + 1, dtype=np.int64)
    for r in np.unique(rank):  # rank by rank, so everyone's first choices are served before anyone's later ones
        want = np.flatnonzero((rank == r) & (filled[user_pos] < k))
        if not len(want):
            continue
        # among the users who want the same item at this rank, those who score it highest get it first
        want = want[np.lexsort((-score[want], item[want]))]
        accept = want[_position_in_group(item[want]) < cap - listed[item[want]]]
        taken[accept] = True
        filled += np.bincount(user_pos[accept], minlength=len(users))
        listed += np.bincount(item[accept], minlength=len(listed))
    short = filled < slots
    if short.any():  # the cap left these lists short: their next candidates in rank order, cap ignored
        untaken = np.flatnonzero(~taken & short[user_pos])
        position = _position_in_group(user_pos[untaken])
        taken[untaken[position < (slots - filled)[user_pos[untaken]]]] = True
    keep = np.flatnonzero(taken)
    new_rank = (_position_in_group(user_pos[keep]) + 1).astype(candidates.rank.dtype)
    return TopK(user[keep], item[keep], new_rank, score[keep])


def _position_in_group(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted `group`."""
    if not len(group):
        return np.zeros(0, dtype=np.int64)
    start = np.r_[True, group[1:] != group[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(len(group)), 0))
    return np.arange(len(group)) - first
