"""The MF solvers on small seeded data whose right answer is known."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.config import ALSConfig, BPRConfig
from recsys.errors import ModelFitError
from recsys.models.mf.als import fit_als
from recsys.models.mf.bpr import fit_bpr
from recsys.models.mf.warm import align_factors, warm_start_factors
from recsys.models.factors import FactorModel
from recsys.models.topk import top_k_factors

ALS = ALSConfig(factors=8, regularization=0.1, alpha=5.0, iterations=10, num_threads=1)
BPR = BPRConfig(factors=8, learning_rate=0.05, iterations=40, batch_size=512, num_threads=1)


def planted(n_users=300, n_items=120, groups=4, seed=0, density=0.5):
    """Block structure: users of group g interact with a random half of group g's items only."""
    rng = np.random.default_rng(seed)
    user_group = np.arange(n_users) % groups
    item_group = np.arange(n_items) % groups
    same = user_group[:, None] == item_group[None, :]
    dense = same & (rng.random((n_users, n_items)) < density)
    return sp.csr_matrix(dense.astype(np.float32)), same


def _heldout_precision(users, items, train, truth, k=5):
    top = top_k_factors(users, items, train, k)
    return float(truth[top.user_index, top.item_index].mean())


@pytest.mark.parametrize("fit,config", [(fit_als, ALS), (fit_bpr, BPR)], ids=["als", "bpr"])
def test_recovers_planted_block_structure(fit, config):
    train, same = planted()
    users, items = fit(train, config)
    # every unseen item it recommends lies in the user's own block (random guessing: 1/4)
    assert _heldout_precision(users, items, train, same) > 0.95


def test_als_reconstructs_low_rank_preferences():
    train, same = planted(groups=3)
    users, items = fit_als(train, ALSConfig(factors=3, regularization=0.01, alpha=20.0, iterations=15, num_threads=1))
    scores = users @ items.T
    inside, outside = scores[same].mean(), scores[~same].mean()
    assert inside > 0.5 and abs(outside) < 0.1


def test_bpr_loss_falls_and_positives_outrank_negatives():
    train, same = planted(seed=1)
    losses: list[float] = []
    users, items = fit_bpr(train, BPR, losses=losses)
    assert len(losses) == BPR.iterations and losses[-1] < 0.5 * losses[0]
    scores = users @ items.T
    rng = np.random.default_rng(0)
    u = rng.integers(0, train.shape[0], 2000)
    pos = np.array([rng.choice(train[x].indices) for x in u])
    neg = np.array([rng.choice(np.flatnonzero(~same[x])) for x in u])
    assert (scores[u, pos] > scores[u, neg]).mean() > 0.95



def test_bpr_fits_on_one_thread_and_gives_the_callers_threads_back():
    """BPR runs single-threaded, but the top-K scoring that follows in the same process must not."""
    import torch

    train, _ = planted(seed=1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fit_bpr(train, BPRConfig(factors=4, iterations=1))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_bpr_draws_on_a_second_thread_give_the_same_model_as_on_one(monkeypatch):
    """With two CPUs the next chunk's triples are drawn beside the SGD steps; the model must not change."""
    import recsys.models.mf.bpr as bpr

    monkeypatch.setattr(bpr, "DRAW_CHUNK", 500)  # several chunks per epoch, so the draws really run ahead
    train, _ = planted(seed=2)
    config = BPRConfig(factors=4, iterations=3, batch_size=64, seed=5)
    one_losses: list[float] = []
    two_losses: list[float] = []
    one = fit_bpr(train, dataclasses.replace(config, num_threads=1), losses=one_losses)
    two = fit_bpr(train, dataclasses.replace(config, num_threads=2), losses=two_losses)
    assert len(one_losses) == 3 and two_losses == one_losses
    assert all(np.array_equal(a, b) for a, b in zip(one, two))


@pytest.mark.parametrize("threads", [1, 2])
def test_bpr_that_diverges_is_refused_and_its_draw_thread_ends(threads):
    import threading

    train, _ = planted(seed=3)
    before = threading.active_count()
    with pytest.raises(ModelFitError, match="diverged to NaN/inf at epoch"):
        fit_bpr(train, BPRConfig(factors=4, learning_rate=1e30, iterations=5, batch_size=64, num_threads=threads))
    assert threading.active_count() == before


def test_bpr_step_is_implicits_per_sample_step_summed_over_occurrences():
    # implicit/cpu/bpr.pyx: x_u += lr (g (y_i - y_j) - reg x_u), y_i += lr (g x_u - reg y_i),
    # y_j += lr (-g x_u - reg y_j), g = sigma(-x_u . (y_i - y_j)); the bias column (last) is
    # penalised on the items and never updated on the user
    import torch

    from recsys.models.mf.bpr import _sgd_step

    rng = np.random.default_rng(0)
    users0, items0 = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    users0[:, -1] = 1.0
    lr, reg = 0.1, 0.05

    def one_sample(users, items, u, i, j):
        x, yi, yj = users[u].copy(), items[i].copy(), items[j].copy()
        g = 1.0 / (1.0 + np.exp(x @ (yi - yj)))
        users[u, :-1] += lr * (g * (yi - yj) - reg * x)[:-1]
        items[i] += lr * (g * x - reg * yi)
        items[j] += lr * (-g * x - reg * yj)

    # distinct rows: exactly one per-sample step each
    users, items = torch.from_numpy(users0.copy()), torch.from_numpy(items0.copy())
    u, i, j = torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 3])
    loss, n = _sgd_step(users, items, u, i, j, lr, reg)
    expected_u, expected_i = users0.copy(), items0.copy()
    for t in range(2):
        one_sample(expected_u, expected_i, int(u[t]), int(i[t]), int(j[t]))
    np.testing.assert_allclose(users.numpy(), expected_u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(items.numpy(), expected_i, rtol=1e-5, atol=1e-6)
    z = (users0[[0, 1]] * (items0[[0, 1]] - items0[[2, 3]])).sum(1)
    assert n == 2 and loss == pytest.approx(float(np.log1p(np.exp(-z)).sum()), rel=1e-5)

    # a row occurring twice (user 2, item 4) gets the sum of both steps, each taken from the
    # factors as they were before the batch
    users, items = torch.from_numpy(users0.copy()), torch.from_numpy(items0.copy())
    _sgd_step(users, items, torch.tensor([2, 2]), torch.tensor([4, 0]), torch.tensor([1, 4]), lr, reg)
    expected_u, expected_i = users0.copy(), items0.copy()
    for u_, i_, j_ in ((2, 4, 1), (2, 0, 4)):
        step_u, step_i = users0.copy(), items0.copy()
        one_sample(step_u, step_i, u_, i_, j_)
        expected_u += step_u - users0
        expected_i += step_i - items0
    np.testing.assert_allclose(users.numpy(), expected_u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(items.numpy(), expected_i, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("schedule", ["linear", "constant"])
def test_bpr_learning_rate_schedule(monkeypatch, schedule):
    import dataclasses

    from recsys.models.mf import bpr

    seen = []
    step = bpr._sgd_step

    def recording(users, items, u, i, j, lr, reg):
        seen.append(lr)
        return step(users, items, u, i, j, lr, reg)

    monkeypatch.setattr(bpr, "_sgd_step", recording)
    train, _ = planted(n_users=80, n_items=40)
    config = dataclasses.replace(BPR, iterations=5, batch_size=64, lr_schedule=schedule)
    bpr.fit_bpr(train, config)
    lrs = np.array(seen)
    assert lrs[0] == pytest.approx(config.learning_rate)
    if schedule == "constant":
        assert np.all(lrs == config.learning_rate)
    else:
        # linear in the share of triples drawn so far: from lr down to about lr / (epochs x batches)
        assert np.all(np.diff(lrs) < 0) and 0 < lrs[-1] < 0.05 * config.learning_rate
        assert lrs.sum() == pytest.approx(0.5 * config.learning_rate * len(lrs), rel=0.05)
    with pytest.raises(ModelFitError, match="lr_schedule"):
        bpr.fit_bpr(train, dataclasses.replace(config, lr_schedule="cosine"))


@pytest.mark.parametrize("n_users,n_items,density", [(50, 40, 0.2), (300, 2000, 0.002)], ids=["bitset", "search"])
def test_bpr_positive_lookup_matches_the_matrix(n_users, n_items, density):
    import torch

    from recsys.models.mf.bpr import _positive_lookup

    matrix = sp.random(n_users, n_items, density=density, random_state=1, format="csr")
    rows = np.repeat(np.arange(n_users), np.diff(matrix.indptr))
    keys = torch.from_numpy(rows * n_items + matrix.indices.astype(np.int64))
    query = torch.arange(n_users * n_items)
    found = _positive_lookup(keys, n_users * n_items)(query).numpy()
    assert np.array_equal(found, (matrix.toarray() > 0).ravel())


@pytest.mark.parametrize("fit,config", [(fit_als, ALS), (fit_bpr, BPR)], ids=["als", "bpr"])
def test_same_seed_same_model_and_other_seed_differs(fit, config):
    import dataclasses

    train, _ = planted(n_users=80, n_items=40)
    a, b = fit(train, config), fit(train, config)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = fit(train, dataclasses.replace(config, seed=config.seed + 1))
    assert not np.array_equal(a[1], c[1])


def _dense_half_step(r: np.ndarray, fixed: np.ndarray, alpha: float, a0: float, reg: float, nu: float) -> np.ndarray:
    """The closed form of one half-step from the dense weighted least squares, with no Gram trick:
    x_u = (Y^T W_u Y + lambda_u I)^-1 Y^T W_u p_u, W_u = c_ui on the observed pairs and alpha_0 elsewhere,
    lambda_u = reg * (n_u + alpha_0 * n_items) ** nu."""
    n_rows, f = r.shape[0], fixed.shape[1]
    out = np.empty((n_rows, f))
    for u in range(n_rows):
        observed = r[u] > 0
        w = np.where(observed, 1 + alpha * r[u], a0)
        lam = reg * max(1.0, observed.sum() + a0 * r.shape[1]) ** nu
        out[u] = np.linalg.solve(fixed.T @ (w[:, None] * fixed) + lam * np.eye(f), fixed.T @ (w * observed))
    return out


@pytest.mark.parametrize("a0,nu", [(1.0, 0.0), (0.1, 1.0), (3.0, 0.5), (0.0, 1.0)],
                         ids=["hu", "rendle", "heavy-unobserved", "no-unobserved"])
def test_als_half_step_matches_the_dense_closed_form(a0, nu):
    """One half-step with many CG steps solves the normal equations, alpha_0 Y^T Y + sum_obs (c - alpha_0)
    y y^T + lambda_u I, exactly: checked against the dense weighted least squares on a tiny matrix."""
    import dataclasses
    import torch

    from recsys.models.mf._sparse import BlockedCSR
    from recsys.models.mf.als import _cg_half_step, confidence_matrix, row_regularization

    rng = np.random.default_rng(3)
    r = sp.random(30, 20, density=0.3, random_state=4, format="csr", dtype=np.float32)
    r.data[:] = rng.integers(1, 4, r.nnz)
    r = (sp.diags((np.arange(30) != 5).astype(np.float32)) @ r).tocsr()  # user 5 with no item: lambda_u and
    r.eliminate_zeros()                                                  # alpha_0 Y^T Y alone hold her
    f = 4
    cfg = dataclasses.replace(ALS, factors=f, cg_steps=40, alpha=2.0, regularization=0.05, unobserved_weight=a0,
                              reg_exponent=nu)
    y = torch.from_numpy(rng.random((20, f)).astype(np.float32))
    x = torch.from_numpy(rng.random((30, f)).astype(np.float32))  # CG from a non-zero start
    _cg_half_step(x, y, BlockedCSR.by_rows(confidence_matrix(r, cfg.alpha), f),
                  row_regularization(np.diff(r.indptr), 20, cfg), cfg)
    exact = _dense_half_step(r.toarray().astype(np.float64), y.numpy().astype(np.float64), cfg.alpha, a0,
                             cfg.regularization, nu)
    np.testing.assert_allclose(x.numpy(), exact, rtol=2e-3, atol=2e-4)


def test_als_fit_reaches_the_fixed_point_of_both_dense_half_steps():
    """A converged fit with alpha_0 and nu is stationary: each side equals the dense closed form given the
    other (the item side with its own lambda_i = lambda (n_i + alpha_0 n_users)^nu)."""
    rng = np.random.default_rng(8)
    r = sp.random(25, 15, density=0.35, random_state=9, format="csr", dtype=np.float32)
    r.data[:] = rng.integers(1, 3, r.nnz)
    cfg = ALSConfig(factors=3, alpha=4.0, regularization=0.02, unobserved_weight=0.2, reg_exponent=1.0,
                    iterations=200, cg_steps=6, num_threads=1)
    users, items = fit_als(r, cfg)
    dense = r.toarray().astype(np.float64)
    u64, i64 = users.astype(np.float64), items.astype(np.float64)
    np.testing.assert_allclose(users, _dense_half_step(dense, i64, 4.0, 0.2, 0.02, 1.0), rtol=5e-3, atol=5e-4)
    np.testing.assert_allclose(items, _dense_half_step(dense.T, u64, 4.0, 0.2, 0.02, 1.0), rtol=5e-3, atol=5e-4)


def test_blocked_kernels_match_a_dense_computation(monkeypatch):
    import torch

    from recsys.models.mf import _sparse

    train, _ = planted(n_users=200, n_items=90, seed=5)
    train.data *= np.arange(1, train.nnz + 1, dtype=np.float32) % 3 + 1
    rng = np.random.default_rng(0)
    solve, fixed = torch.from_numpy(rng.random((200, 6), np.float32)), torch.from_numpy(rng.random((90, 6), np.float32))
    dense = train.toarray()
    expected = (dense * (solve.numpy() @ fixed.numpy().T)) @ fixed.numpy()  # sum_c v_rc (s_r . f_c) f_c
    expected_t = (dense.T * (fixed.numpy() @ solve.numpy().T)) @ solve.numpy()
    monkeypatch.setattr(_sparse, "BLOCK_BYTES", 1024)  # many column blocks on both sides
    monkeypatch.setattr(_sparse, "BLOCK_NNZ", 500)
    by_rows, by_cols = _sparse.BlockedCSR.by_rows(train, 6), _sparse.BlockedCSR.by_columns(train, 6)
    assert len(by_rows._blocks) > 3 and len(by_cols._blocks) > 3 and by_rows.nnz == by_cols.nnz == train.nnz
    np.testing.assert_allclose(by_rows.apply(solve, fixed, lambda v, d: v * d).numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(by_cols.apply(fixed, solve, lambda v, d: v * d).numpy(), expected_t, rtol=1e-4)


@pytest.mark.parametrize("fit,config", [(fit_als, ALS), (fit_bpr, BPR)], ids=["als", "bpr"])
def test_bad_input_is_refused(fit, config):
    good, _ = planted(n_users=20, n_items=12)
    for bad_value, message in ((np.nan, "NaN"), (np.inf, "infinite"), (-1.0, "negative")):
        bad = good.copy()
        bad.data[0] = bad_value
        with pytest.raises(ModelFitError, match=message):
            fit(bad, config)
    with pytest.raises(ModelFitError, match="at least one"):
        fit(sp.csr_matrix((5, 4), dtype=np.float32), config)


def test_edge_shapes_give_finite_models():
    # a single user, a single item (ALS), more factors than items, users/items without interactions
    one_user = sp.csr_matrix(np.array([[1, 0, 2, 0]], dtype=np.float32))
    users, items = fit_als(one_user, ALS)
    assert users.shape == (1, 1) and np.isfinite(items).all()
    one_item = sp.csr_matrix(np.ones((5, 1), dtype=np.float32))
    assert np.isfinite(fit_als(one_item, ALS)[0]).all()
    with pytest.raises(ModelFitError, match="two items"):
        fit_bpr(one_item, BPR)
    gaps = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0], [1, 0, 1]], dtype=np.float32))
    users, items = fit_als(gaps, ALSConfig(factors=64, num_threads=1))
    assert users.shape == (3, 3) and np.isfinite(users).all() and np.allclose(users[1], 0, atol=1e-3)
    users, items = fit_bpr(gaps, BPRConfig(factors=64, iterations=3, num_threads=1))
    assert users.shape == (3, 4) and np.isfinite(items).all()


def test_factor_model_refuses_nan_and_tampered_files(tmp_path):
    model = FactorModel(np.ones((2, 2), np.float32), np.ones((3, 2), np.float32), np.arange(2), np.arange(3))
    npz, digest = model.save(tmp_path / "m")
    assert FactorModel.load(npz, digest).item_factors.shape == (3, 2)
    npz.write_bytes(npz.read_bytes() + b"x")
    with pytest.raises(ModelFitError, match="checksum"):
        FactorModel.load(npz, digest)
    model.user_factors[0, 0] = np.nan
    with pytest.raises(ModelFitError, match="NaN"):
        model.save(tmp_path / "n")


def test_align_factors_keeps_known_ids_and_marks_new_ones():
    previous = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]], np.float32)
    out, known = align_factors(np.array([10, 20, 30]), previous, np.array([5, 20, 30, 40]))
    assert known == 2
    assert np.isnan(out[[0, 3]]).all() and out[1].tolist() == [2.0, 2.0] and out[2].tolist() == [3.0, 3.0]


@pytest.mark.parametrize("fit,config,extra", [(fit_als, ALS, 0), (fit_bpr, BPR, 1)], ids=["als", "bpr"])
def test_warm_start_reaches_the_cold_quality_in_fewer_iterations(fit, config, extra):
    import dataclasses

    train, same = planted(n_users=400, n_items=160, seed=7)
    ids_u, ids_i = np.arange(400) * 3, np.arange(160) * 2
    # yesterday: 350 of the users and 150 of the items
    old = train[:350][:, :150]
    prev_u, prev_i = fit(old, config)
    previous = FactorModel(prev_u, prev_i, ids_u[:350], ids_i[:150])
    initial, counts = warm_start_factors(previous, ids_u, ids_i, config.factors + extra)
    assert counts == {"known_users": 350, "new_users": 50, "known_items": 150, "new_items": 10}
    short = dataclasses.replace(config, iterations=max(1, config.iterations // 5))
    warm = fit(train, short, initial)
    cold_short = fit(train, short)
    warm_p = _heldout_precision(*warm, train, same)
    assert warm_p > 0.95
    assert warm_p >= _heldout_precision(*cold_short, train, same) - 1e-9
    # the new users and items got finite, fresh factors
    assert np.isfinite(warm[0][350:]).all() and np.isfinite(warm[1][150:]).all()


def test_warm_start_from_a_model_with_another_factor_count_is_skipped():
    previous = FactorModel(np.ones((3, 16), np.float32), np.ones((2, 16), np.float32), np.arange(3), np.arange(2))
    assert warm_start_factors(previous, np.arange(3), np.arange(2), 64) is None
    initial, counts = warm_start_factors(previous, np.arange(3), np.arange(2), 16)
    assert counts["known_users"] == 3 and initial[0].shape == (3, 16)
