"""The training loop as a kernel: the twin of ``fastrnn.reference.train``
(read that module for the arguments). Whole epochs run in one call, with no
Python work per update: each update's data are gathered into workspaces
allocated once per call, then the network's loss and gradient, the
clipping and the optimizer run on them. Between updates the loop reads
``stop``, which another thread may set (a Ctrl-C): a call never runs on for
more than one update after it.
"""
import math

import numpy as np

from fastrnn._codes import (GRAD_NOT_FINITE, LOSS_NOT_FINITE, OK, STOPPED,
                            UPDATE_NOT_FINITE)
from fastrnn._jit import kernel
from fastrnn.kernels._linalg import copy_into
from fastrnn.kernels.dropout import splitmix64
from fastrnn.kernels.network import loss_and_grad
from fastrnn.kernels.optim import clip_gradient, optimizer_step


@kernel
def train_epochs(cell, theta, table, dims, X, Y, starts, lengths, seq_weight, step_weight,
                 order, seeds, batch_size, bptt, loss, last_step, dropout, optimizer, hyper,
                 clip_mode, clip, state, step, losses, progress, stop):
    """Run len(order) epochs of mini-batch training; see the twin's docstring."""
    L, D, n_states, cache_blocks = dims[0], dims[1], dims[2], dims[3]
    d = table[1, 2]
    S = order.shape[1]
    if (starts.shape[0] != S or lengths.shape[0] != S or seq_weight.shape[0] != S
            or seeds.shape[0] != order.shape[0] or losses.shape[0] != order.shape[0]
            or progress.shape[0] != 3 or stop.shape[0] != 1 or batch_size < 1 or bptt < 1
            or (step_weight.shape[0] != 0 and step_weight.shape[0] != X.shape[0])
            or Y.shape[0] != (S if last_step else X.shape[0])):
        raise ValueError("train_epochs: expected starts, lengths, seq_weight (S,), order (E, S), "
                         "seeds and losses (E,), progress (3,), stop (1,), Y a row per step "
                         "(per sequence with last_step)")
    for s in range(S):
        if lengths[s] < 1 or starts[s] < 0 or starts[s] + lengths[s] > X.shape[0]:
            raise ValueError("train_epochs: a sequence outside X")
    for e in range(order.shape[0]):
        for j in range(S):
            if order[e, j] < 0 or order[e, j] >= S:
                raise ValueError("train_epochs: order holds a sequence index out of range")
    grad = np.empty_like(theta)
    previous = np.empty((3, theta.shape[0]), dtype=theta.dtype)

    # Workspaces for the largest update: batch_size sequences of bptt steps.
    max_rows = min(batch_size * bptt, X.shape[0])
    Xc = np.empty((max_rows,) + X.shape[1:], dtype=X.dtype)
    Yc = np.empty((max_rows,) + Y.shape[1:], dtype=Y.dtype)
    step_w = np.empty(max_rows if step_weight.shape[0] else 0, dtype=step_weight.dtype)
    offsets = np.empty(batch_size + 1, dtype=np.int64)
    running = np.empty(batch_size, dtype=np.int64)
    scale = np.empty(batch_size, dtype=seq_weight.dtype)
    # Per-update arrays are views of flat buffers, reshaped to the update's
    # size, so every kernel receives C-contiguous arrays.
    Hs_buffer = np.empty(L * D * max_rows * d, dtype=theta.dtype)
    caches_buffer = np.empty(L * D * max_rows * cache_blocks * d, dtype=theta.dtype)
    state_size = L * D * n_states * batch_size * d
    states_buffer = np.empty(3 * state_size, dtype=theta.dtype)   # state0, state_last, dstate0
    carry = np.empty((L * D, n_states, batch_size, d), dtype=theta.dtype)
    no_dX = np.empty((0, 0), dtype=theta.dtype)
    total_weight = 0.0
    for s in range(S):
        total_weight += seq_weight[s]

    for epoch in range(order.shape[0]):
        total = 0.0
        progress[1] = 0
        progress[2] = 0
        for first in range(0, S, batch_size):
            batch = order[epoch, first:min(first + batch_size, S)]
            longest = 0
            for b in range(batch.shape[0]):
                longest = max(longest, lengths[batch[b]])
            carry[:] = 0.0                                # every layer's states
            for chunk_start in range(0, longest, bptt):
                if stop[0]:                       # between updates, never inside an
                    return STOPPED                # epoch's bookkeeping
                n_run, n_rows, weight = gather_chunk(X, Y, starts, lengths, seq_weight,
                                                     step_weight, batch, chunk_start, bptt,
                                                     last_step, Xc, Yc, offsets, running,
                                                     scale, step_w)
                shape = (L * D, n_states, n_run, d)
                size = L * D * n_states * n_run * d
                state0 = states_buffer[:size].reshape(shape)
                state_last = states_buffer[state_size:state_size + size].reshape(shape)
                dstate0 = states_buffer[2 * state_size:2 * state_size + size].reshape(shape)
                for slot in range(L * D):
                    for k in range(n_states):
                        for j in range(n_run):
                            copy_into(state0[slot, k, j], carry[slot, k, running[j]])
                Hs = Hs_buffer[:L * D * n_rows * d].reshape((L, D, n_rows, d))
                caches = caches_buffer[:L * D * n_rows * cache_blocks * d].reshape(
                    (L, D, n_rows, cache_blocks * d))
                seed = np.uint64(splitmix64(np.uint64(progress[1]), seeds[epoch]))
                value = loss_and_grad(cell, theta, table, Xc[:n_rows],
                                      Yc[:n_run] if last_step else Yc[:n_rows],
                                      offsets[:n_run + 1], scale[:n_run],
                                      step_w[:n_rows if step_w.shape[0] else 0], state0, loss,
                                      last_step, dropout, seed, 0, Hs, caches, state_last, grad,
                                      dstate0, no_dX)
                if weight > 0.0:
                    fault = check_and_update(theta, grad, value, optimizer, hyper, clip_mode,
                                             clip, state, step, previous)
                    if fault != OK:
                        return fault
                    total += value * weight
                for slot in range(L * D):                 # the next chunk starts here
                    for k in range(n_states):
                        for j in range(n_run):
                            copy_into(carry[slot, k, running[j]], state_last[slot, k, j])
                progress[1] += 1
                progress[2] += n_rows
        losses[epoch] = total / total_weight
        progress[0] += 1
    return OK


@kernel
def gather_chunk(X, Y, starts, lengths, seq_weight, step_weight, batch, chunk_start, bptt,
                 last_step, Xc, Yc, offsets, running, scale, step_w):
    """One update's data, packed into the first rows of the workspaces;
    see the twin. Returns (sequences, rows, Σ w_b)."""
    n_run = 0
    r = 0
    offsets[0] = 0
    weight = 0.0
    for b in range(batch.shape[0]):
        s = batch[b]
        if lengths[s] <= chunk_start:
            continue
        end = starts[s] + min(lengths[s], chunk_start + bptt)
        for row in range(starts[s] + chunk_start, end):
            if X.ndim == 1:
                Xc[r] = X[row]
            else:
                copy_into(Xc[r], X[row])
            if not last_step:
                if Y.ndim == 1:
                    Yc[r] = Y[row]
                else:
                    copy_into(Yc[r], Y[row])
            if step_w.shape[0]:
                step_w[r] = step_weight[row]
            r += 1
        if last_step:
            if Y.ndim == 1:
                Yc[n_run] = Y[s]
            else:
                copy_into(Yc[n_run], Y[s])
        running[n_run] = b
        scale[n_run] = seq_weight[s]
        weight += seq_weight[s]
        n_run += 1
        offsets[n_run] = r
    for j in range(n_run):
        scale[j] = scale[j] / weight if weight > 0.0 else 0.0
    return n_run, r, weight


@kernel
def check_and_update(theta, grad, loss, optimizer, hyper, clip_mode, clip, state, step,
                     previous):
    """Clip, then update unless the loss, the gradient or the result is not finite."""
    if not math.isfinite(loss):
        return LOSS_NOT_FINITE
    if not math.isfinite(clip_gradient(grad, clip_mode, clip)):
        return GRAD_NOT_FINITE
    if not optimizer_step(theta, grad, optimizer, hyper, state, step, previous):
        return UPDATE_NOT_FINITE
    return OK
