"""State encoders: shapes, padding and causal masks, empty histories, seeded SASRec fits, the setting."""

import dataclasses

import numpy as np
import pytest
import torch

from recsys.config import RLConfig, Settings
from recsys.models.rl.cql import fit_cql
from recsys.models.rl.encoders import GRUEncoder, SASRecEncoder, make_encoder
from recsys.models.rl.reinforce import fit_reinforce
from recsys.models.rl.training import serving_factors
from recsys.models.rl.trajectories import Trajectories

N_ITEMS, PAD = 30, 30
CFG = RLConfig(embedding_dim=8, hidden_dim=8, history_len=5, epochs=3, batch_sessions=32, learning_rate=0.01,
               encoder="sasrec")


def synthetic_trajectories(n_sessions: int = 120, seed: int = 0) -> Trajectories:
    """Random left-padded histories (some empty), 1-5 impressions a session, 3 sessions a user."""
    rng = np.random.default_rng(seed)
    length = CFG.history_len
    history = np.full((n_sessions, length), PAD, dtype=np.int64)
    for s, n in enumerate(rng.integers(0, length + 1, n_sessions)):
        history[s, length - n:] = rng.integers(0, N_ITEMS, n)
    per_session = rng.integers(1, 6, n_sessions)
    session_of = np.repeat(np.arange(n_sessions), per_session)
    n = len(session_of)
    click = (rng.random(n) < 0.3).astype(np.float64)
    next_session = np.where(np.arange(n_sessions) % 3 < 2, np.arange(n_sessions) + 1, -1)
    returned = (next_session >= 0).astype(np.float64)
    slate_size = per_session[session_of].astype(np.float64)
    return Trajectories(
        history=history, session_of=session_of, action=rng.integers(0, N_ITEMS, n).astype(np.int64),
        reward=click + click * returned[session_of], click=click,
        propensity=np.where(rng.random(n) < 0.8, slate_size / N_ITEMS, np.nan), slate_size=slate_size,
        session_user=np.arange(n_sessions) // 3, session_day=np.arange(n_sessions) % 3,
        session_returned=returned, n_items=N_ITEMS, next_session=next_session, session_reward=returned,
    )


def encoder(name: str, **changes) -> torch.nn.Module:
    torch.manual_seed(0)
    return make_encoder(N_ITEMS, dataclasses.replace(CFG, encoder=name, **changes)).eval()


@pytest.mark.parametrize("name, cls", [("gru", GRUEncoder), ("sasrec", SASRecEncoder)])
def test_encoders_map_histories_to_states_and_take_mf_init(name, cls):
    item_init = np.random.default_rng(1).normal(size=(N_ITEMS, 6))
    cfg = dataclasses.replace(CFG, encoder=name, embedding_dim=6, hidden_dim=8)
    enc = make_encoder(N_ITEMS, cfg, item_init)
    assert isinstance(enc, cls)
    history = torch.tensor([[PAD, PAD, 3, 4, 5], [1, 2, 3, 4, 5], [PAD] * 5])
    state = enc(history)
    assert state.shape == (3, 8) and state.dtype == torch.float32 and torch.isfinite(state).all()
    np.testing.assert_allclose(enc.embedding.weight[:N_ITEMS].detach().numpy(), item_init, rtol=1e-6)


@pytest.mark.parametrize("name", ["gru", "sasrec"])
def test_the_most_recent_item_changes_the_state(name):
    enc = encoder(name)
    with torch.no_grad():
        states = enc(torch.tensor([[PAD, PAD, 3, 4, 5], [PAD, PAD, 3, 4, 6], [PAD, PAD, 7, 4, 5]]))
    assert not torch.allclose(states[0], states[1], atol=1e-4)
    assert not torch.allclose(states[0], states[2], atol=1e-4)  # older real items are attended to as well


def test_sasrec_state_does_not_see_the_left_padding():
    enc = encoder("sasrec")
    padded = torch.tensor([[PAD, PAD, 3, 4, 5], [PAD, PAD, PAD, PAD, 9]])
    with torch.no_grad():
        state = enc(padded)
        # the same items without the padding (they keep the last positions): padded keys are masked
        np.testing.assert_allclose(enc(padded[:, 2:])[0], state[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(enc(padded[:, 4:])[1], state[1], rtol=1e-5, atol=1e-6)
        # whatever the padding row and the padded positions' embeddings hold
        enc.embedding.weight[PAD] = 5.0
        enc.position.weight[:2] = -3.0
        np.testing.assert_allclose(enc(padded), state, rtol=1e-5, atol=1e-6)


def test_sasrec_attention_mask_is_causal_and_masks_padded_keys():
    enc = encoder("sasrec", attention_heads=2)
    pad = torch.tensor([[True, True, False, False], [False, False, False, False]])
    mask = enc.attention_mask(pad)
    assert mask.shape == (4, 4, 4)  # (batch * heads, query, key), batch-major as MultiheadAttention wants
    causal = torch.ones(4, 4, dtype=torch.bool).triu(1)
    assert torch.equal(mask[2], causal) and torch.equal(mask[3], causal)
    expected = causal.clone()
    expected[:, :2] = True
    expected[0, 0] = expected[1, 1] = False  # a padded query still sees itself: no empty softmax row
    assert torch.equal(mask[0], expected) and torch.equal(mask[1], expected)
    assert not mask.all(dim=2).any()


@pytest.mark.parametrize("name", ["gru", "sasrec"])
def test_an_empty_history_gives_a_finite_state_and_finite_gradients(name):
    enc = encoder(name).train()
    state = enc(torch.full((4, CFG.history_len), PAD))
    assert torch.isfinite(state).all()
    state.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)
    with torch.no_grad():
        assert torch.isfinite(enc.eval()(torch.full((2, CFG.history_len), PAD))).all()


def test_sasrec_eval_fast_path_matches_the_training_path():
    # under no_grad in eval mode torch takes its fused encoder-layer kernel; the mask must mean the same there
    enc = encoder("sasrec")
    history = torch.tensor([[PAD, PAD, 3, 4, 5], [1, 2, 3, 4, 5], [PAD] * 5, [PAD, PAD, PAD, PAD, 8]])
    with torch.no_grad():
        fast = enc(history)
    np.testing.assert_allclose(fast, enc(history).detach(), rtol=1e-5, atol=1e-5)


def assert_same_parameters(a: torch.nn.Module, b: torch.nn.Module) -> None:
    named_b = dict(b.named_parameters())
    for name, param in a.named_parameters():
        assert torch.isfinite(param).all(), name
        assert torch.equal(param, named_b[name]), name


def test_sasrec_reinforce_fit_is_deterministic_finite_and_served_without_dropout():
    traj = synthetic_trajectories()
    net, fit = fit_reinforce(traj, CFG, k=5)
    net2, fit2 = fit_reinforce(traj, CFG, k=5)
    assert isinstance(net.encoder, SASRecEncoder)
    assert np.isfinite(fit.loss).all() and fit.loss == fit2.loss
    assert_same_parameters(net, net2)
    assert not net.training  # returned ready to serve
    other, _ = fit_reinforce(traj, dataclasses.replace(CFG, seed=7), k=5)
    assert not torch.equal(other.encoder.position.weight, net.encoder.position.weight)

    net.train()
    with torch.no_grad():
        noisy = net.encoder(torch.from_numpy(traj.history[:8]))
        assert not torch.equal(noisy, net.encoder(torch.from_numpy(traj.history[:8])))  # dropout is on in training
    user_f, item_f = serving_factors(net, traj.history[:8])
    assert net.training  # the caller's mode is restored
    user_again, _ = serving_factors(net, traj.history[:8])
    np.testing.assert_array_equal(user_f, user_again)
    assert user_f.shape == (8, 9) and item_f.shape == (N_ITEMS, 9) and np.isfinite(user_f).all()
    with torch.no_grad():
        expected = net.eval().policy(net.encoder(torch.from_numpy(traj.history[:8]))).numpy()
    np.testing.assert_allclose(user_f @ item_f.T, expected, rtol=1e-4, atol=1e-5)


def test_sasrec_cql_fit_is_deterministic_and_finite():
    traj = synthetic_trajectories(seed=1)
    net, fit = fit_cql(traj, CFG)
    net2, fit2 = fit_cql(traj, CFG)
    assert isinstance(net.encoder, SASRecEncoder) and not net.training
    assert np.isfinite(fit.loss).all() and fit.loss == fit2.loss
    assert_same_parameters(net, net2)
    user_f, _ = serving_factors(net, traj.history, head="q")
    assert np.isfinite(user_f).all()


def test_unknown_encoder_or_heads_are_refused():
    with pytest.raises(ValueError, match=r"RECSYS_RL_ENCODER.*'gru' or 'sasrec'.*'lstm'"):
        RLConfig(encoder="lstm")
    with pytest.raises(ValueError, match="RECSYS_RL_ENCODER"):
        Settings.from_env({"RECSYS_RL_ENCODER": "transformer"})
    with pytest.raises(ValueError, match="attention_heads"):
        make_encoder(N_ITEMS, dataclasses.replace(CFG, hidden_dim=8, attention_heads=3))
    with pytest.raises(ValueError, match="history_len"):
        encoder("sasrec")(torch.full((1, CFG.history_len + 1), PAD))


def test_settings_pick_the_encoder_from_the_environment():
    assert Settings.from_env({}).rl.encoder == "gru"
    settings = Settings.from_env({"RECSYS_RL_ENCODER": "sasrec"})
    assert settings.rl.encoder == "sasrec"
    assert isinstance(make_encoder(N_ITEMS, settings.rl), SASRecEncoder)
    assert settings.to_dict()["rl"]["encoder"] == "sasrec"  # what the registry's params record
