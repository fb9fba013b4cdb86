"""The consumption and abandonment terms of the RL reward (`consume_weight`,
`abandon_penalty`) and `retention_credit="consumed"`, by hand; CQL's use of them."""

import dataclasses

import numpy as np
import pytest
import torch

from recsys.config import RLConfig, Settings
from recsys.models.rl import trajectories
from recsys.models.rl.cql import QNet, cql_loss
from recsys.models.rl.training import session_batches

DAY = 86_400.0

# user 0, session A on day 0: items 1, 2, 3 shown; 2 clicked and consumed, 3 clicked only, 1 ignored.
# user 0, session B on day 1: item 0 shown, clicked and consumed; no session on day 2 (seen: window ends day 3).
USER = np.zeros(9, np.int64)
ITEM = np.array([1, 2, 3, 2, 3, 2, 0, 0, 0])
CODE = np.array([0, 0, 0, 1, 1, 2, 0, 1, 2])  # impression, click, consume
TS = np.array([10, 11, 12, 20, 21, 25, DAY + 5, DAY + 6, DAY + 7])
SESSION = np.array([1, 1, 1, 1, 1, 1, 2, 2, 2.0])


def rewards(consume_weight: float, credit: str = "clicked",
            abandon_penalty: float = 0.0) -> tuple[dict, trajectories.Trajectories]:
    """{(session day, item): R} and the trajectories, gamma 0.5, retention_weight 1, horizon 1 day."""
    t = trajectories.build(USER, ITEM, CODE, TS, SESSION, np.full(9, 0.25),
                           n_items=4, history_len=2, gamma=0.5, retention_weight=1.0, return_horizon_days=1,
                           window_end_ts=3 * DAY, retention_credit=credit, consume_weight=consume_weight,
                           abandon_penalty=abandon_penalty)
    day_of = {int(s): int(t.session_day[s]) for s in range(len(t.session_day))}
    return {(day_of[int(s)], int(a)): float(r) for s, a, r in zip(t.session_of, t.action, t.reward)}, t


def test_consume_term_by_hand():
    r, t = rewards(consume_weight=2.0)
    # session B (last, not censored, no return): R = 1 click + 2 * 1 consumed = 3; G_B = 3 / 1 impression = 3
    assert r[(1, 0)] == pytest.approx(3.0)
    # session A returned: retention term = 1 * 1 + 0.5 * G_B = 2.5, to clicked impressions
    assert r[(0, 2)] == pytest.approx(1.0 + 2.0 + 2.5)  # clicked and consumed
    assert r[(0, 3)] == pytest.approx(1.0 + 0.0 + 2.5)  # clicked only
    assert r[(0, 1)] == pytest.approx(0.0)
    by_action = dict(zip(t.action.tolist(), t.consumed.tolist()))
    assert by_action == {0: 1.0, 1: 0.0, 2: 1.0, 3: 0.0}
    np.testing.assert_array_equal(t.click[np.argsort(t.action)], [1.0, 0.0, 1.0, 1.0])


def test_zero_consume_weight_is_the_click_reward():
    r, _ = rewards(consume_weight=0.0)
    # G_B = click rate 1; retention term of A = 1 + 0.5 * 1
    assert r == pytest.approx({(1, 0): 1.0, (0, 2): 2.5, (0, 3): 2.5, (0, 1): 0.0})


def test_retention_credit_to_consumed_impressions():
    r, _ = rewards(consume_weight=2.0, credit="consumed")
    assert r[(0, 2)] == pytest.approx(3.0 + 2.5)
    assert r[(0, 3)] == pytest.approx(1.0)  # clicked, not consumed: no retention credit
    assert r[(0, 1)] == pytest.approx(0.0)


def test_abandoned_click_is_penalised_by_hand():
    r, t = rewards(consume_weight=2.0, credit="consumed", abandon_penalty=3.0)
    # session B: item 0 consumed, R = 1 + 2 = 3, nothing abandoned; G_B = 3
    assert r[(1, 0)] == pytest.approx(3.0)
    # session A returned: retention term 1 + 0.5 * 3 = 2.5 to the consumed impression only
    assert r[(0, 2)] == pytest.approx(1.0 + 2.0 + 2.5)
    assert r[(0, 3)] == pytest.approx(1.0 - 3.0)  # clicked, walked away: 1 - penalty, no retention credit
    assert r[(0, 1)] == pytest.approx(0.0)  # not clicked: not abandoned either
    immediate = dict(zip(t.action.tolist(), t.immediate.tolist()))
    assert immediate == pytest.approx({0: 3.0, 1: 0.0, 2: 3.0, 3: -2.0})


def test_a_log_without_consumption_is_not_all_abandoned_clicks(caplog):
    no_consume = CODE != trajectories.CONSUME
    t = trajectories.build(USER[no_consume], ITEM[no_consume], CODE[no_consume], TS[no_consume], SESSION[no_consume],
                           np.full(int(no_consume.sum()), 0.25), n_items=4, history_len=2, gamma=0.5,
                           retention_weight=1.0, return_horizon_days=1, window_end_ts=3 * DAY,
                           retention_credit="clicked", consume_weight=2.0, abandon_penalty=3.0)
    np.testing.assert_array_equal(t.immediate, t.click)  # clicks count as clicks, not as -2 each
    assert "no consume events" in caplog.text


def test_abandon_penalty_enters_the_session_value():
    # session A's mean immediate reward (3 - 2 + 0) / 3 counts in its value, which only shows
    # through a previous session: add one on day -1 for the same user, shown item 1, not clicked
    user, item = np.r_[0, USER], np.r_[1, ITEM]
    code, ts, session = np.r_[0, CODE], np.r_[-DAY + 5, TS], np.r_[0.0, SESSION]
    values = []
    for penalty in (0.0, 3.0):
        t = trajectories.build(user, item, code, ts, session, np.full(10, 0.25), n_items=4, history_len=2,
                               gamma=0.5, retention_weight=1.0, return_horizon_days=1, window_end_ts=3 * DAY,
                               retention_credit="session", consume_weight=2.0, abandon_penalty=penalty)
        values.append(float(t.reward[t.session_of == t.session_of[0]][0]))
    # R of the day -1 impression = 0 + 1 * returned + 0.5 * G_A, G_A = mean_A(r) + 1 + 0.5 * 3
    assert values[0] == pytest.approx(1.0 + 0.5 * ((3.0 + 1.0 + 0.0) / 3 + 1.0 + 1.5))
    assert values[1] == pytest.approx(1.0 + 0.5 * ((3.0 - 2.0 + 0.0) / 3 + 1.0 + 1.5))


def test_cql_reward_is_the_immediate_reward_plus_retention():
    """With Q = 0 everywhere the TD loss is the mean squared reward: r + retention_weight * returned_t."""
    _, t = rewards(consume_weight=2.0, credit="consumed", abandon_penalty=3.0)
    config = dataclasses.replace(RLConfig(), gamma=0.5, embedding_dim=4, hidden_dim=4, history_len=2)
    torch.manual_seed(0)
    net = QNet(t.n_items, config)
    with torch.no_grad():
        for param in net.parameters():
            param.zero_()
    sess, imp, local, _ = next(session_batches(t, 10, torch.Generator().manual_seed(0)))
    _, parts = cql_loss(net, net, t, sess, imp, local, config)
    # session A (returned, session_reward 1): items 1, 2, 3 -> 0 + 1, 3 + 1, -2 + 1; session B: 3 + 0
    expected = {1: 1.0, 2: 4.0, 3: -1.0, 0: 3.0}
    assert parts["critic"] == pytest.approx(np.mean([expected[int(a)] ** 2 for a in t.action[imp]]))


def test_bad_credit_or_weight_is_refused():
    with pytest.raises(ValueError, match="retention_credit"):
        rewards(1.0, credit="impressed")
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="consume_weight"):
            rewards(bad)
        with pytest.raises(ValueError, match="RECSYS_RL_CONSUME_WEIGHT"):
            RLConfig(consume_weight=bad)
        with pytest.raises(ValueError, match="abandon_penalty"):
            rewards(1.0, abandon_penalty=bad)
        with pytest.raises(ValueError, match="RECSYS_RL_ABANDON_PENALTY"):
            RLConfig(abandon_penalty=bad)
    with pytest.raises(ValueError, match="RECSYS_RL_RETENTION_CREDIT"):
        RLConfig(retention_credit="impressed")


def test_settings_read_the_reward_from_the_environment():
    default = Settings.from_env({}).rl
    assert (default.consume_weight, default.retention_credit, default.abandon_penalty) == (4.0, "consumed", 6.0)
    rl = Settings.from_env({"RECSYS_RL_CONSUME_WEIGHT": "0", "RECSYS_RL_RETENTION_CREDIT": "clicked",
                            "RECSYS_RL_ABANDON_PENALTY": "2.5"}).rl
    assert (rl.consume_weight, rl.retention_credit, rl.abandon_penalty) == (0.0, "clicked", 2.5)
