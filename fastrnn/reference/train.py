"""The training loop in plain NumPy: the twin of ``fastrnn.kernels.train``.

One call runs ``len(order)`` epochs. Epoch e visits the sequences in the
order ``order[e]`` (drawn in Python, so both twins see the same data order),
``batch_size`` sequences per mini-batch. With truncated BPTT each sequence
of a mini-batch is cut into chunks of ``bptt`` steps; every chunk is one
update, and the states at the end of a chunk (every layer's h, and c for an
LSTM) start the next one without the gradient flowing back into them
(min-char-rnn's ``hprev``).

Arguments shared by both twins:

* ``cell``, ``theta``, ``table``: as in ``fastrnn.reference.network``;
  theta is updated in place. ``dims``: int64 [n_layers, n_directions,
  n_states, cache_blocks] of the network.
* ``X``, ``Y``: every training sequence packed as in
  ``fastrnn.reference.sequences``; sequence s is rows
  ``starts[s]:starts[s] + lengths[s]``. Y has a row per step, or with
  ``last_step`` a row per sequence.
* ``seq_weight`` (S,): each sequence's weight; ``step_weight`` (N,) or
  empty: each step's. An update weights its sequences by w_b / Σ w_b over
  the sequences it holds; one whose weights are all 0 still carries the
  states forward, but changes neither theta nor the optimizer.
* ``order`` (E, S), ``batch_size``, ``bptt``: the data order, as above.
* ``loss``, ``last_step``: the head. ``dropout``, ``seeds`` (E,) uint64:
  dropout between layers; update u of epoch e draws its masks from the seed
  splitmix64(u, seeds[e]) (``fastrnn.reference.dropout``).
* ``optimizer``, ``hyper``, ``state``, ``step``: see ``fastrnn.reference.optim``;
  ``clip_mode``, ``clip``: see ``clip_gradient``.
* ``losses`` (E,): filled with each completed epoch's loss, the weighted
  mean over sequences of their summed loss, as the updates saw it.
* ``progress`` int64 (3,): [epochs completed, updates and steps done in
  the running epoch], kept current after every update.
* ``stop`` int64 (1,): when another thread sets it, the loop returns
  STOPPED after the update it is in.

Returns a code of ``fastrnn._codes``: OK; STOPPED; or a fault, after which
the update that caused it is not applied (theta and the optimizer state are
those of the last good update): LOSS_NOT_FINITE, GRAD_NOT_FINITE (the
gradient was not finite) or UPDATE_NOT_FINITE (the update would have made a
parameter or the optimizer's state non-finite).
"""
import numpy as np

from fastrnn._codes import (GRAD_NOT_FINITE, LOSS_NOT_FINITE, OK, STOPPED,
                            UPDATE_NOT_FINITE)
from fastrnn.reference.dropout import splitmix64
from fastrnn.reference.network import loss_and_grad
from fastrnn.reference.optim import clip_gradient, optimizer_step


# Non-finite values are detected and reported by the fault codes, as in the
# kernel; NumPy's own warnings about them (overflow) would only add noise,
# and an exception under warnings-as-errors that the kernel never raises.
@np.errstate(over="ignore", invalid="ignore")
def train_epochs(cell, theta, table, dims, X, Y, starts, lengths, seq_weight, step_weight,
                 order, seeds, batch_size, bptt, loss, last_step, dropout, optimizer, hyper,
                 clip_mode, clip, state, step, losses, progress, stop):
    """Run len(order) epochs of mini-batch training; see the module docstring."""
    L, D, n_states, cache_blocks = (int(v) for v in dims)
    d = int(table[1, 2])
    grad = np.empty_like(theta)
    previous = np.empty((3, len(theta)), theta.dtype)
    # Room for the largest update: batch_size sequences of bptt steps.
    max_rows = min(batch_size * bptt, len(X))
    Xc, Yc = np.empty((max_rows,) + X.shape[1:], X.dtype), np.empty((max_rows,) + Y.shape[1:], Y.dtype)
    offsets, running = np.empty(batch_size + 1, np.int64), np.empty(batch_size, np.int64)
    scale, step_w = np.empty(batch_size), np.empty(max_rows if len(step_weight) else 0)
    for epoch in range(order.shape[0]):
        total = 0.0
        progress[1:] = 0
        for first in range(0, order.shape[1], batch_size):
            batch = order[epoch, first:first + batch_size]
            carry = np.zeros((L * D, n_states, len(batch), d), theta.dtype)   # every layer's states
            for chunk_start in range(0, lengths[batch].max(), bptt):
                if stop[0]:                       # between updates, never inside an
                    return STOPPED                # epoch's bookkeeping
                n_run, n_rows, weight = gather_chunk(X, Y, starts, lengths, seq_weight,
                                                     step_weight, batch, chunk_start, bptt,
                                                     last_step, Xc, Yc, offsets, running,
                                                     scale, step_w)
                taken = running[:n_run]
                state0 = carry[:, :, taken]
                Hs = np.empty((L, D, n_rows, d), theta.dtype)
                caches = np.empty((L, D, n_rows, cache_blocks * d), theta.dtype)
                state_last = np.empty_like(state0)
                seed = splitmix64(np.array([progress[1]], dtype=np.uint64), seeds[epoch])[0]
                value = loss_and_grad(cell, theta, table, Xc[:n_rows],
                                      Yc[:n_run] if last_step else Yc[:n_rows],
                                      offsets[:n_run + 1], scale[:n_run], step_w[:n_rows],
                                      state0, loss, last_step, dropout, seed, 0, Hs, caches,
                                      state_last, grad, np.empty_like(state0),
                                      np.empty((0, 0), theta.dtype))
                if weight > 0.0:
                    fault = check_and_update(theta, grad, value, optimizer, hyper, clip_mode,
                                             clip, state, step, previous)
                    if fault != OK:
                        return fault
                    total += value * weight
                carry[:, :, taken] = state_last             # the next chunk starts here
                progress[1] += 1
                progress[2] += n_rows
        losses[epoch] = total / seq_weight.sum()
        progress[0] += 1
    return OK


def gather_chunk(X, Y, starts, lengths, seq_weight, step_weight, batch, chunk_start, bptt,
                 last_step, Xc, Yc, offsets, running, scale, step_w):
    """One update's data: steps chunk_start .. chunk_start + bptt - 1 of the
    sequences of ``batch`` that are that long, packed into the first rows
    of Xc, Yc (a row per sequence with last_step) and step_w, with their
    offsets; ``running`` receives their positions in the batch and
    ``scale`` their w_b / Σ w_b. Returns (sequences, rows, Σ w_b)."""
    taken = np.flatnonzero(lengths[batch] > chunk_start)
    seqs = batch[taken]
    counts = np.minimum(lengths[seqs] - chunk_start, bptt)
    rows = np.concatenate([np.arange(starts[s] + chunk_start, starts[s] + chunk_start + n)
                           for s, n in zip(seqs, counts)])
    n_run, n_rows = len(seqs), len(rows)
    running[:n_run] = taken
    offsets[:n_run + 1] = np.concatenate([[0], np.cumsum(counts)])
    Xc[:n_rows] = X[rows]
    if last_step:
        Yc[:n_run] = Y[seqs]
    else:
        Yc[:n_rows] = Y[rows]
    if len(step_weight):
        step_w[:n_rows] = step_weight[rows]
    weight = seq_weight[seqs].sum()
    scale[:n_run] = seq_weight[seqs] / weight if weight > 0.0 else 0.0
    return n_run, n_rows, weight


def check_and_update(theta, grad, loss, optimizer, hyper, clip_mode, clip, state, step,
                     previous):
    """Clip, then update unless the loss, the gradient or the result is not finite."""
    if not np.isfinite(loss):
        return LOSS_NOT_FINITE
    if not np.isfinite(clip_gradient(grad, clip_mode, clip)):
        return GRAD_NOT_FINITE
    if not optimizer_step(theta, grad, optimizer, hyper, state, step, previous):
        return UPDATE_NOT_FINITE
    return OK
