"""Logged events -> per-impression training examples for the RL recommenders.

Inputs are flat event arrays over contiguous user and item indices (what
`recsys.stages.train_rl` reads from `interactions`). A *session* is (user, session_id),
or (user, calendar day) where session_id is NULL. For each impression in session t
of user u:

* state: the last `history_len` items u clicked or consumed before session t
  started (left-padded with the padding index n_items);
* action: the item shown; propensity: the logged one (NaN where missing), and the
  number of impressions of the session (the slate size);
* reward R = r + credit * (retention_weight * returned_t + gamma * G_{t+1}), with the
  immediate reward r = click + consume_weight * consumed - abandon_penalty * abandoned,
  consumed = 1 when the user consumed the item in the session (a consume event of the
  same item; the log's observable sign that the user valued what they clicked, where a
  click alone also rewards clickbait; `consume_weight = 0` leaves the reward as click
  only; RLConfig's default is 4) and abandoned = 1 when the user clicked the item but
  did not consume it (a click the user walked away from: the usual sign of clickbait;
  RLConfig's default is 6, `abandon_penalty = 0` leaves it a plain click; a window with
  no consume event at all is taken as a log that does not record consumption, and the
  penalty is then not applied, with a warning), returned_t = 1 when u
  starts a session on one of the `return_horizon_days` days after session t's day
  (the retention credit goes to the session before the return),
  G_t = mean_t(r) + retention_weight * returned_t + gamma * G_{t+1} the discounted
  per-session value of u's later sessions (0 after the last; mean_t(r) is the mean
  immediate reward per impression of session t, so a session's value holds the same
  immediate terms as its impressions' rewards), and `credit` how the
  session's credit is shared among its impressions:
  `retention_credit="clicked"` gives it to the impressions the user clicked
  (what was not engaged with cannot have changed whether the user comes back; the
  policy then learns P(click | a) x value-when-clicked, not just clicks),
  `"consumed"` (the default) to the impressions the user consumed (only what was
  consumed moves the user much, so the policy learns P(consume | a) x
  value-when-consumed),
  `"session"` to every impression of the session alike.

Censoring: a session within `return_horizon_days` of the window's end cannot see a
return yet; its returned_t is the mean over uncensored sessions (the prior) rather
than 0, so the newest sessions are not taught that users never come back. A user
with a single session gets just that session's rewards. Logs without impressions
give no examples (`Trajectories.n == 0`); the stage refuses to train on them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

IMPRESSION, CLICK, CONSUME = 0, 1, 2
_DAY_S = 86_400.0
RETENTION_CREDITS = ("clicked", "consumed", "session")


@dataclass(frozen=True)
class Trajectories:
    """Per-impression examples grouped by session.

    Attributes:
        history: (n_sessions, L) int64 item indices, padding = n_items.
        session_of: (n,) session index of each impression, sorted ascending.
        action: (n,) item index shown.
        reward: (n,) R as in the module docstring.
        click: (n,) 1.0 when the impression was clicked.
        propensity: (n,) logged propensity, NaN where missing.
        slate_size: (n,) impressions in the impression's session.
        session_user: (n_sessions,) user index; session_day: (n_sessions,) day number;
        session_returned: (n_sessions,) returned_t (after censoring).
        next_session: (n_sessions,) the user's next session in the window, -1 after the last.
        session_reward: (n_sessions,) retention_weight * returned_t (the session-level part of R).
        consumed: (n,) 1.0 when the impression's item was consumed in the session.
        immediate: (n,) the immediate reward r (click, consumption and abandonment terms),
            which the CQL learner uses as its per-step reward; hand-built examples may leave it out.
    """

    history: np.ndarray
    session_of: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    click: np.ndarray
    propensity: np.ndarray
    slate_size: np.ndarray
    session_user: np.ndarray
    session_day: np.ndarray
    session_returned: np.ndarray
    n_items: int
    next_session: np.ndarray | None = None
    session_reward: np.ndarray | None = None
    consumed: np.ndarray | None = None
    immediate: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.action.shape[0])

    @property
    def propensity_coverage(self) -> float:
        return float(np.mean(np.isfinite(self.propensity))) if self.n else 0.0


def user_histories(user: np.ndarray, item: np.ndarray, ts: np.ndarray, positive: np.ndarray,
                   query_user: np.ndarray, query_ts: np.ndarray, length: int, pad: int) -> np.ndarray:
    """(q, length) last `length` positive items of query_user strictly before query_ts, left-padded."""
    pos = np.flatnonzero(positive)
    order = pos[np.lexsort((ts[pos], user[pos]))]
    p_user, p_ts, p_item = user[order], ts[order], item[order]
    # index of the first positive of each query's user at or after query_ts
    key = p_user.astype(np.float64) * 1e11 + p_ts
    end = np.searchsorted(key, query_user.astype(np.float64) * 1e11 + query_ts, side="left")
    start_user = np.searchsorted(p_user, query_user, side="left")
    out = np.full((len(query_user), length), pad, dtype=np.int64)
    for j in range(length):  # column length-1-j holds the (j+1)-th most recent item
        idx = end - 1 - j
        ok = idx >= start_user
        out[ok, length - 1 - j] = p_item[idx[ok]]
    return out


def build(user: np.ndarray, item: np.ndarray, event_code: np.ndarray, ts: np.ndarray, session_id: np.ndarray,
          propensity: np.ndarray, n_items: int, history_len: int, gamma: float, retention_weight: float,
          return_horizon_days: int, window_end_ts: float, retention_credit: str = "consumed",
          consume_weight: float = 4.0, abandon_penalty: float = 6.0) -> Trajectories:
    """Examples from flat events (see the module docstring).

    Args:
        user, item: (m,) contiguous indices; event_code: (m,) 0 impression, 1 click, 2 consume.
        ts: (m,) Unix seconds; session_id: (m,) float with NaN where NULL; propensity: (m,) NaN where NULL.
        window_end_ts: end of the training window (censoring of returns).
        retention_credit: 'clicked', 'consumed' or 'session' (see the module docstring).
        consume_weight: weight of the consumption term of R (0: click-only immediate reward).
        abandon_penalty: what a click without consumption costs (0: it counts as a plain click).

    Raises:
        ValueError: an unknown `retention_credit`, or a negative or non-finite `consume_weight`
            or `abandon_penalty`.
    """
    if retention_credit not in RETENTION_CREDITS:
        raise ValueError(f"retention_credit must be one of {RETENTION_CREDITS}, got {retention_credit!r}")
    if not np.isfinite(consume_weight) or consume_weight < 0:
        raise ValueError(f"consume_weight must be finite and >= 0, got {consume_weight!r}")
    if not np.isfinite(abandon_penalty) or abandon_penalty < 0:
        raise ValueError(f"abandon_penalty must be finite and >= 0, got {abandon_penalty!r}")
    day = np.floor(ts / _DAY_S).astype(np.int64)
    sess_key = np.where(np.isfinite(session_id), np.nan_to_num(session_id), -1.0 - day)
    # sessions: unique (user, key)
    _, sess_index = np.unique(np.stack([user.astype(np.float64), sess_key], axis=1), axis=0, return_inverse=True)
    sess_index = sess_index.ravel()
    n_sess = int(sess_index.max()) + 1 if sess_index.size else 0
    is_imp = event_code == IMPRESSION
    s_start = np.full(n_sess, np.inf)
    np.minimum.at(s_start, sess_index, ts)
    s_user = np.zeros(n_sess, np.int64)
    s_user[sess_index] = user
    s_day = np.floor(s_start / _DAY_S).astype(np.int64)

    # click of an impression: a click/consume of the same item in the same session
    imp = np.flatnonzero(is_imp)
    pos_ev = np.flatnonzero(event_code != IMPRESSION)
    # (session, item) pairs as one int64 key, looked up by sorting (np.isin): a Python set of
    # tuples took minutes and gigabytes at 10M events
    stride = np.int64(int(item.max()) + 1 if item.size else 1)
    pair_key = sess_index.astype(np.int64) * stride + item.astype(np.int64)
    imp_key = pair_key[imp]
    click = np.isin(imp_key, pair_key[pos_ev]).astype(np.float64)
    cons_ev = np.flatnonzero(event_code == CONSUME)
    consumed = np.isin(imp_key, pair_key[cons_ev]).astype(np.float64)
    if abandon_penalty > 0 and imp.size and not cons_ev.size:
        # a log that records no consumption at all would make every click an abandoned one
        logger.warning("the window holds clicks but no consume events: the abandon penalty (%g) is not applied, "
                       "since abandonment cannot be told from a log without consumption", abandon_penalty)
        abandon_penalty = 0.0
    immediate = click + consume_weight * consumed - abandon_penalty * click * (1.0 - consumed)
    imp_sess = sess_index[imp]
    n_imp_sess = np.bincount(imp_sess, minlength=n_sess)
    immediate_rate = np.bincount(imp_sess, weights=immediate, minlength=n_sess) / np.maximum(n_imp_sess, 1)

    # returns and discounted session values, per user in time order
    order = np.lexsort((s_start, s_user))
    returned = np.zeros(n_sess)
    censored = np.zeros(n_sess, dtype=bool)
    g_next = np.zeros(n_sess)
    last_day_seen = np.floor((window_end_ts - 1e-6) / _DAY_S)
    next_same_user = np.r_[s_user[order][1:] == s_user[order][:-1], False] if n_sess else np.zeros(0, bool)
    # vectorised over sessions in (user, time) order: the next session of the same user decides
    day_o = s_day[order]
    next_day_o = np.r_[day_o[1:], 0] if n_sess else day_o
    returned_o = next_same_user & (day_o < next_day_o) & (next_day_o <= day_o + return_horizon_days)
    returned[order] = returned_o
    censored[order] = ~returned_o & (day_o + return_horizon_days > last_day_seen)
    prior = float(returned[~censored].mean()) if (~censored).any() else 0.0
    returned[censored] = prior
    session_value = np.zeros(n_sess)
    next_session = np.full(n_sess, -1, dtype=np.int64)
    if n_sess:
        next_session[order[:-1][next_same_user[:-1]]] = order[1:][next_same_user[:-1]]
    # G_t = r_t + gamma * G_{t+1}, backwards within each user: one vectorised step per
    # session rank from a user's last session (a few dozen), not one Python step per session
    base_o = (immediate_rate + retention_weight * returned)[order]
    value_o = np.zeros(n_sess)
    later_o = np.zeros(n_sess)
    from_end = np.zeros(n_sess, dtype=np.int64)
    if n_sess:
        segment_end = np.flatnonzero(~next_same_user)  # each user's last position in `order`
        end_of = segment_end[np.searchsorted(segment_end, np.arange(n_sess))]
        from_end = end_of - np.arange(n_sess)
    by_rank = np.argsort(from_end, kind="stable")
    bounds = np.searchsorted(from_end[by_rank], np.arange(int(from_end.max(initial=0)) + 2))
    for rank in range(len(bounds) - 1):
        pos = by_rank[bounds[rank]:bounds[rank + 1]]
        if rank:
            later_o[pos] = value_o[pos + 1]
        value_o[pos] = base_o[pos] + gamma * later_o[pos]
    session_value[order] = value_o
    g_next[order] = later_o
    credit = {"clicked": click, "consumed": consumed, "session": 1.0}[retention_credit]
    reward = immediate + credit * (retention_weight * returned[imp_sess] + gamma * g_next[imp_sess])

    hist = user_histories(user, item, ts, ~is_imp, s_user, s_start, history_len, n_items)
    by_session = np.argsort(imp_sess, kind="stable")
    return Trajectories(
        history=hist, session_of=imp_sess[by_session], action=item[imp][by_session].astype(np.int64),
        reward=reward[by_session], click=click[by_session], propensity=propensity[imp][by_session].astype(np.float64),
        slate_size=n_imp_sess[imp_sess][by_session].astype(np.float64), session_user=s_user, session_day=s_day,
        session_returned=returned, n_items=n_items, next_session=next_session,
        session_reward=retention_weight * returned, consumed=consumed[by_session], immediate=immediate[by_session],
    )
