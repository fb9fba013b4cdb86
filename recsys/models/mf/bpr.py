"""Bayesian Personalised Ranking in PyTorch (Rendle et al., UAI 2009).

Objective, over triples (u, i, j) of a user, an item u interacted with and a
sampled item u did not interact with:

    max  sum ln sigma(x_u . y_i + b_i - x_u . y_j - b_j) - lambda (|x_u|^2 + |y_i|^2 + |y_j|^2)

optimised by stochastic gradient ascent on small mini-batches of triples. As
in `implicit`, each epoch draws nnz triples: (u, i) uniformly from the stored
interactions and j as the item of another uniformly drawn interaction (so
negatives follow item popularity); a triple whose j the user did interact
with is skipped. Each triple's step is `implicit`'s per-sample step (the
penalty, bias included, applied to all three rows once per occurrence, the
user's bias column left at 1); the steps of a batch are summed into the
factors with `index_add_` (sequential per row on CPU, so a seed gives the
same model).

The learning rate decays linearly from `learning_rate` to 0 over the fit
(`lr_schedule="linear"`), as word2vec's SGD does (Mikolov et al. 2013): with a
constant rate SGD ends in a noise ball around the optimum whose size grows with
the rate, so a rate large enough to learn in few epochs ends with noisy factors;
annealing it removes that noise. The default is 0.03 decaying over 50 epochs (three
quarters of the summed step size of `implicit`'s 0.01 constant over 100 epochs); how it
was chosen, against `implicit` on MovieLens and the synthetic logs, is in
docs/benchmarks.md ("Matrix factorisation against implicit").

The SGD steps run on one torch thread: a step is a dozen operations of ~50 us
on a (batch_size, f + 1) block, too small to split (two threads took a MovieLens
100K fit from 1.5 s to 3.6 s, mostly waking the second thread for each operation).
When the task has a second CPU (`num_threads`, or the affinity mask when 0), the
triples are drawn there instead: a Python thread draws and filters the next chunk of
DRAW_CHUNK triples (a few operations on 1M-element arrays, during which torch releases
the GIL) while the first takes the current chunk's steps. The draws were 40% of a fit at
10M interactions (the membership test of j alone is a sort and a binary search of 1M
keys among 10M); beside the steps they cost nothing. The random numbers are drawn in the
same order either way, so a seed gives the same model on one CPU or two.

The item bias b_i is kept as an extra factor column, with a matching column
of ones on the user side, so scores stay plain dot products: the returned
factors have `factors + 1` columns.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, TypeVar

import numpy as np
import scipy.sparse as sp
import torch

from recsys.config import BPRConfig
from recsys.errors import ModelFitError
from recsys.models.mf.common import (available_cpus, check_finite, check_interactions, effective_factors, set_threads,
                                  start_factors)

logger = logging.getLogger(__name__)

LR_SCHEDULES = ("linear", "constant")
# triples drawn (and checked against the user's items) at once; bounds the index arrays' memory
DRAW_CHUNK = 1 << 20


def fit_bpr(user_items: sp.spmatrix, config: BPRConfig,
            initial: tuple[np.ndarray, np.ndarray] | None = None, *,
            losses: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fit BPR factors.

    Args:
        user_items: (n_users, n_items) sparse interaction strengths; only
            which entries are positive matters.
        config: hyper-parameters; `seed` makes the result deterministic on CPU.
        initial: optional warm start (user_factors, item_factors) in the
            returned layout, (n_users, f + 1) and (n_items, f + 1).
        losses: optional list that receives, epoch by epoch, the mean of
            -ln sigma(x_u . y_i + b_i - x_u . y_j - b_j) over the epoch's triples
            (the penalty left out), e.g. to check that it falls.

    Returns:
        (user_factors (n_users, f + 1), item_factors (n_items, f + 1)) float32;
        the last user column is 1 and the last item column the item bias.

    Raises:
        ModelFitError: invalid config or input, or NaN factors.
    """
    if (config.learning_rate <= 0 or config.regularization < 0 or config.iterations < 0 or config.batch_size < 1
            or config.lr_schedule not in LR_SCHEDULES):
        raise ModelFitError(f"BPR needs learning_rate > 0, regularization >= 0, iterations >= 0, batch_size >= 1 "
                            f"and lr_schedule in {LR_SCHEDULES}: {config}")
    matrix = check_interactions(user_items, "BPR")
    n_users, n_items = matrix.shape
    if n_items < 2:
        raise ModelFitError("BPR needs at least two items: with one there is nothing to rank against")
    factors = effective_factors(config.factors, matrix.shape, "BPR")
    previous_threads = torch.get_num_threads()
    set_threads(1)  # one torch thread per Python thread: see the module docstring
    # a second CPU draws the next chunk of triples while the first takes the SGD steps
    draw_ahead = (config.num_threads if config.num_threads > 0 else available_cpus()) >= 2
    started = time.perf_counter()
    try:
        users, items, epoch_losses = _run_epochs(matrix, config, factors, initial, draw_ahead)
    finally:  # the caller's scoring (all users' top-K) wants its threads back
        torch.set_num_threads(previous_threads)
    check_finite("BPR", users, items)
    logger.info("BPR fit %dx%d, nnz=%d, %d factors, %d epochs, %s in %.2fs; loss %s", n_users, n_items,
                matrix.nnz, factors, config.iterations,
                "2 threads (steps, draws)" if draw_ahead else "1 thread", time.perf_counter() - started,
                " -> ".join(f"{x:.4f}" for x in epoch_losses[:1] + epoch_losses[-1:]))
    if losses is not None:
        losses.extend(epoch_losses)
    return users.numpy(), items.numpy()


def _run_epochs(matrix: sp.csr_matrix, config: BPRConfig, factors: int, initial: tuple[np.ndarray, np.ndarray] | None,
                draw_ahead: bool = False) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    n_users, n_items = matrix.shape
    generator = torch.Generator().manual_seed(config.seed)
    # centred start of scale 1/f as in `implicit`: the tiny positive start ALS uses leaves the
    # BPR gradients (proportional to the other side's factors) too small to move for many epochs
    users = start_factors(None if initial is None else initial[0], n_users, factors + 1, generator, "user factors",
                          scale=1.0 / factors, centred=True)
    items = start_factors(None if initial is None else initial[1], n_items, factors + 1, generator, "item factors",
                          scale=1.0 / factors, centred=True)
    users[:, -1] = 1.0
    if initial is None:
        items[:, -1] = 0.0
    nnz = matrix.nnz
    chunks = _draw_triples(matrix, config.iterations, generator)
    total_draws = config.iterations * nnz
    losses: list[float] = []
    total, counted = 0.0, 0
    for epoch, lo, size, u, i, j in (_one_ahead(chunks) if draw_ahead else chunks):
        kept = len(u)
        for b in range(0, kept, config.batch_size):
            done = (epoch * nnz + lo + b * size / kept) / total_draws  # share of the fit's draws made so far
            lr = config.learning_rate * (1.0 - done if config.lr_schedule == "linear" else 1.0)
            end = b + config.batch_size
            loss, n = _sgd_step(users, items, u[b:end], i[b:end], j[b:end], lr, config.regularization)
            total, counted = total + loss, counted + n
        if lo + size == nnz:  # the epoch's last chunk
            losses.append(total / max(counted, 1))
            total, counted = 0.0, 0
            if not np.isfinite(losses[-1]):
                raise ModelFitError(f"BPR diverged to NaN/inf at epoch {epoch}")
    return users, items, losses


def _draw_triples(matrix: sp.csr_matrix, epochs: int, generator: torch.Generator
                  ) -> Iterator[tuple[int, int, int, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The fit's triples, DRAW_CHUNK draws at a time: (epoch, first draw, draws, u, i, j).

    (u, i) is a uniformly drawn interaction and j the item of another one; the
    triples whose j is one of u's items are left out, so a chunk holds at most
    `draws` triples. All random numbers of the fit after the start factors come
    from here, in this order, whichever thread runs it.
    """
    n_users, n_items = matrix.shape
    nnz = matrix.nnz
    # the interactions as sorted int64 keys u * n_items + i: drawing an interaction is one gather
    # from this array alone (no separate row and column arrays: 160 MiB less at 10M), and the
    # keys double as the membership test's table. int64 indices throughout: torch's index_add_
    # takes a several times slower path for int32 ones.
    keys = torch.repeat_interleave(torch.arange(n_users) * n_items,
                                   torch.from_numpy(np.diff(matrix.indptr).astype(np.int64)))
    keys += torch.from_numpy(matrix.indices.astype(np.int64))
    is_positive = _positive_lookup(keys, n_users * n_items)
    for epoch in range(epochs):
        for lo in range(0, nnz, DRAW_CHUNK):
            size = min(DRAW_CHUNK, nnz - lo)
            # index_select, not tensor[index]: advanced indexing is 5x slower for these gathers
            drawn = keys.index_select(0, torch.randint(nnz, (size,), generator=generator))
            u = torch.div(drawn, n_items, rounding_mode="floor")
            i = drawn.sub_(u * n_items)
            j = keys.index_select(0, torch.randint(nnz, (size,), generator=generator)).remainder_(n_items)
            kept_at = torch.nonzero(~is_positive(u * n_items + j)).squeeze_(1)  # j is not one of u's items
            yield epoch, lo, size, u.index_select(0, kept_at), i.index_select(0, kept_at), j.index_select(0, kept_at)


_Item = TypeVar("_Item")


def _one_ahead(items: Iterator[_Item]) -> Iterator[_Item]:
    """`items`, each computed on a second thread while the caller works on the one before.

    torch releases the GIL inside its operations, so the draws of the next chunk
    (a few large operations) run beside the SGD steps (many small ones) on the
    other CPU. The order of the items, and so of the random numbers, is unchanged.
    """
    # OpenMP gives a new thread the machine's thread count, not torch.set_num_threads' of the caller
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bpr-draws", initializer=torch.set_num_threads,
                            initargs=(1,)) as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def _positive_lookup(keys: torch.Tensor, n_keys: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Membership test for the sorted, distinct int64 `keys` (u * n_items + i of the interactions).

    A bit set over all n_keys pairs when it is no larger than the keys themselves
    (8 bytes per interaction, i.e. density >= 1/64): one gather per query instead of a
    binary search through all interactions, about 20x faster on MovieLens 100K.
    Otherwise a binary search of the queries in sorted order: consecutive searches then
    walk nearby keys, 5x faster at 10M interactions than searching them as drawn.
    """
    if n_keys <= 64 * len(keys):
        bits = torch.zeros((n_keys + 7) // 8, dtype=torch.uint8)
        # keys are distinct, so adding each one's bit into its byte is the same as OR-ing it in
        bits.index_put_((keys >> 3,), (1 << (keys & 7)).to(torch.uint8), accumulate=True)
        return lambda query: ((bits.index_select(0, query >> 3) >> (query & 7)) & 1).bool()
    last = len(keys) - 1

    def search(query: torch.Tensor) -> torch.Tensor:
        ordered, order = torch.sort(query)
        hit = keys.index_select(0, torch.searchsorted(keys, ordered).clamp_max_(last)) == ordered
        return torch.empty(len(query), dtype=torch.bool).index_copy_(0, order, hit)

    return search


def _sgd_step(users: torch.Tensor, items: torch.Tensor, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
              lr: float, reg: float) -> tuple[float, int]:
    """One ascent step on a batch of triples, in place; returns (sum of -ln sigma(x_uij), batch size).

    Each triple contributes `implicit`'s per-sample step, computed from the
    factors as they were before the batch:

        x_u += lr (g (y_i - y_j) - reg x_u),  y_i += lr (g x_u - reg y_i),  y_j += lr (-g x_u - reg y_j)

    with g = sigma(-x_uij); a row that occurs k times in the batch gets the sum
    of its k steps. The user's last (bias) column is not updated.
    """
    n = len(u)
    ij = torch.cat((i, j))
    xu = users.index_select(0, u)
    y = items.index_select(0, ij)  # (2n, f + 1): y_i rows, then y_j rows
    diff = y[:n] - y[n:]  # the bias difference sits in the last column, against the user's column of ones
    z = torch.linalg.vecdot(xu, diff)
    z.neg_()
    loss = float(torch.nn.functional.softplus(z).sum())
    g = torch.sigmoid_(z).mul_(lr)[:, None]  # lr * d ln sigma(x_uij) / d x_uij
    # lr folded into the steps: index_add_ with an `alpha` takes a several times slower path
    step_u = diff.mul_(g).sub_(xu, alpha=lr * reg)
    step_u[:, -1] = 0.0
    g_xu = xu.mul_(g)
    step_y = y.mul_(-lr * reg)
    step_y[:n] += g_xu
    step_y[n:] -= g_xu
    users.index_add_(0, u, step_u)
    items.index_add_(0, ij, step_y)
    return loss, n
