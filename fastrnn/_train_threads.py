"""Training on several threads, for updates large enough to pay for it.

``fastrnn.kernels.train.train_epochs`` runs whole epochs in one compiled
call, on one core. When one update is big (at least
``_parallel.MIN_PARALLEL_FIT_WORK`` multiply-adds: a mini-batch of 32
sequences of 50 steps with 128 hidden units is 50 million), both cores pay
more than a Python step per update costs. This ``train_epochs``, with the
same signature, is that loop with one Python step per update: the kernels
gather the update's data (``gather_chunk``), its loss and gradient run in
chunks of whole sequences on threads (``fastrnn._parallel``), and the
compiled ``check_and_update`` clips and updates. The chunks depend only on
the sizes, so the result does not depend on the number of threads; the
tests hold it to the reference's own loop (``fastrnn.reference.train``).
"""
import numpy as np

from fastrnn import _parallel
from fastrnn._codes import OK, STOPPED
from fastrnn._parallel import loss_and_grad_in_chunks
from fastrnn.kernels.dropout import splitmix64
from fastrnn.kernels.network import loss_and_grad
from fastrnn.kernels.train import check_and_update, gather_chunk


def train_epochs(cell, theta, table, dims, X, Y, starts, lengths, seq_weight, step_weight,
                 order, seeds, batch_size, bptt, loss, last_step, dropout, optimizer, hyper,
                 clip_mode, clip, state, step, losses, progress, stop, work_per_row=1):
    """Run len(order) epochs of mini-batch training; see ``fastrnn.reference.train``.
    ``work_per_row``: multiply-adds per step, to cut updates into chunks."""
    L, D, n_states, cache_blocks = (int(v) for v in dims)
    d = int(table[1, 2])
    run = loss_and_grad_in_chunks(loss_and_grad, work_per_row)
    grad = np.empty_like(theta)
    previous = np.empty((3, len(theta)), theta.dtype)
    max_rows = min(batch_size * bptt, len(X))
    Xc = np.empty((max_rows,) + X.shape[1:], X.dtype)
    Yc = np.empty((max_rows,) + Y.shape[1:], Y.dtype)
    offsets, running = np.empty(batch_size + 1, np.int64), np.empty(batch_size, np.int64)
    scale, step_w = np.empty(batch_size), np.empty(max_rows if len(step_weight) else 0)
    no_dX = np.empty((0, 0), theta.dtype)
    total_weight = seq_weight.sum()
    for epoch in range(order.shape[0]):
        total = 0.0
        progress[1:] = 0
        for first in range(0, order.shape[1], batch_size):
            batch = np.ascontiguousarray(order[epoch, first:first + batch_size])
            carry = np.zeros((L * D, n_states, len(batch), d), theta.dtype)
            for chunk_start in range(0, int(lengths[batch].max()), bptt):
                if stop[0]:                       # between updates, never inside an
                    return STOPPED                # epoch's bookkeeping
                n_run, n_rows, weight = gather_chunk(X, Y, starts, lengths, seq_weight,
                                                     step_weight, batch, chunk_start, bptt,
                                                     last_step, Xc, Yc, offsets, running,
                                                     scale, step_w)
                taken = running[:n_run]
                state0 = np.ascontiguousarray(carry[:, :, taken])
                state_last = np.empty_like(state0)
                seed = np.uint64(splitmix64(np.uint64(progress[1]), seeds[epoch]))
                value = run(cell, theta, table, Xc[:n_rows],
                            Yc[:n_run] if last_step else Yc[:n_rows], offsets[:n_run + 1],
                            scale[:n_run], step_w[:n_rows], state0, loss, last_step, dropout,
                            seed, 0, np.empty((L, D, n_rows, d), theta.dtype),
                            np.empty((L, D, n_rows, cache_blocks * d), theta.dtype), state_last,
                            grad,
                            np.empty_like(state0), no_dX)
                if weight > 0.0:
                    fault = check_and_update(theta, grad, value, optimizer, hyper, clip_mode,
                                             clip, state, step, previous)
                    if fault != OK:
                        return fault
                    total += value * weight
                carry[:, :, taken] = state_last
                progress[1] += 1
                progress[2] += n_rows
        losses[epoch] = total / total_weight
        progress[0] += 1
    return OK


def is_worth_it(work_per_row, batch_size, bptt):
    """Whether an update of batch_size sequences of bptt steps is big enough."""
    return batch_size > 1 and batch_size * bptt * work_per_row >= _parallel.MIN_PARALLEL_FIT_WORK
