"""Training loop in plain NumPy: the twin of ``fastrnn.kernels.train``.

One call runs ``len(order)`` epochs. Epoch e visits the sequences in the
order ``order[e]`` (drawn in Python, so both twins see the same data order),
``batch_size`` sequences per mini-batch. With truncated BPTT each sequence
of a mini-batch is cut into chunks of ``bptt`` steps; every chunk is one
update, and the hidden state at the end of a chunk starts the next one
without the gradient flowing back into it (min-char-rnn's ``hprev``).

Arguments shared by both twins:

* ``theta`` (P,): every parameter, flat (see :func:`unflatten`); updated in place.
* ``sizes``: int64 [cell code, k, d, m].
* ``X``, ``Y``, ``starts``, ``lengths``: all training sequences packed as in
  ``fastrnn.reference.rnn``; sequence s is rows ``starts[s]:starts[s]+lengths[s]``.
* ``order`` (E, S), ``batch_size``, ``bptt``: the data order, as above.
* ``optimizer``, ``hyper``, ``state``, ``step``: see ``fastrnn.reference.optim``.
* ``clip_mode``, ``clip``: see ``clip_gradient``.
* ``losses`` (E,): filled with each epoch's loss, the mean over sequences of
  the summed cross-entropy, as the updates saw it.
* ``progress``: int64 [epochs completed, updates done in the failed epoch].

Returns 0, or on a fault (the update is not applied, theta keeps the last
finite parameters): 1 the loss was not finite, 2 the gradient was not
finite, 3 the update would have made a parameter non-finite.
"""
from typing import Callable, NamedTuple

import numpy as np

from fastrnn._codes import LSTM
from fastrnn.reference.lstm import lstm_loss_and_grad
from fastrnn.reference.optim import clip_gradient, optimizer_step
from fastrnn.reference.rnn import rnn_loss_and_grad

OK, LOSS_NOT_FINITE, GRAD_NOT_FINITE, UPDATE_NOT_FINITE = range(4)


def unflatten(theta, sizes):
    """Views W_x, W_h, b_h, W_y, b_y into the flat vector, in that order."""
    cell, k, d, m = sizes
    rows = 4 * d if cell == LSTM else d
    shapes = ((rows, k), (rows, d), (rows,), (m, d), (m,))
    views, at = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        views.append(theta[at:at + size].reshape(shape))
        at += size
    return tuple(views)


# Non-finite values are detected and reported by the fault codes, as in the
# kernel; NumPy's own warnings about them (log 0, overflow) would only add
# noise, and an exception under warnings-as-errors that the kernel never raises.
@np.errstate(divide="ignore", over="ignore", invalid="ignore")
def train_epochs(theta, sizes, X, Y, starts, lengths, order, batch_size, bptt,
                 optimizer, hyper, clip_mode, clip, state, step, losses, progress):
    """Run len(order) epochs of mini-batch training; see the module docstring."""
    return run_epochs(REFERENCE_STEPS, theta, sizes, X, Y, starts, lengths, order, batch_size,
                      bptt, optimizer, hyper, clip_mode, clip, state, step, losses, progress)


class Steps(NamedTuple):
    """What one update computes: the loss and gradient of a chunk (per
    cell), then clipping and the optimizer. The reference's own here; the
    threaded trainer (fastrnn._train_threads) runs the same loop with the
    kernels, on several threads."""
    rnn_loss_and_grad: Callable
    lstm_loss_and_grad: Callable
    check_and_update: Callable


def run_epochs(steps, theta, sizes, X, Y, starts, lengths, order, batch_size, bptt,
               optimizer, hyper, clip_mode, clip, state, step, losses, progress):
    """The loop of :func:`train_epochs`, with the update's ``steps``."""
    lstm = sizes[0] == LSTM
    d = sizes[2]
    params = unflatten(theta, sizes)
    grad = np.empty_like(theta)
    grads = unflatten(grad, sizes)
    previous = np.empty_like(theta)
    n_sequences = order.shape[1]
    for epoch in range(order.shape[0]):
        total = 0.0
        updates = 0
        for first in range(0, n_sequences, batch_size):
            batch = order[epoch, first:first + batch_size]
            h = np.zeros((len(batch), d))           # carried across chunks,
            c = np.zeros((len(batch), d))           # and c_t too for an LSTM
            for chunk_start in range(0, lengths[batch].max(), bptt):
                running = np.flatnonzero(lengths[batch] > chunk_start)
                seqs = batch[running]
                chunk_lengths = np.minimum(lengths[seqs] - chunk_start, bptt)
                rows = np.concatenate([np.arange(starts[s] + chunk_start,
                                                 starts[s] + chunk_start + n)
                                       for s, n in zip(seqs, chunk_lengths)])
                offsets = np.concatenate([[0], np.cumsum(chunk_lengths)])
                H = np.empty((len(rows), d))
                P = np.empty((len(rows), sizes[3]))
                dh0 = np.empty((len(seqs), d))
                if lstm:
                    C = np.empty_like(H)
                    loss = steps.lstm_loss_and_grad(*params, X[rows], Y[rows], offsets,
                                                    h[running], c[running], H, C, P, *grads,
                                                    dh0, np.empty_like(dh0))
                    c[running] = C[offsets[1:] - 1]
                else:
                    loss = steps.rnn_loss_and_grad(*params, X[rows], Y[rows], offsets,
                                                   h[running], H, P, *grads, dh0)
                fault = steps.check_and_update(theta, grad, loss, optimizer, hyper,
                                               clip_mode, clip, state, step, previous)
                if fault != OK:
                    progress[1] = updates
                    return fault
                updates += 1
                total += loss * len(seqs)
                h[running] = H[offsets[1:] - 1]     # the next chunk starts here
        losses[epoch] = total / n_sequences
        progress[0] += 1
    return OK


def check_and_update(theta, grad, loss, optimizer, hyper, clip_mode, clip, state, step,
                     previous):
    """Clip, then update unless the loss, the gradient or the result is not finite."""
    if not np.isfinite(loss):
        return LOSS_NOT_FINITE
    if not np.isfinite(clip_gradient(grad, clip_mode, clip)):
        return GRAD_NOT_FINITE
    previous[:] = theta
    optimizer_step(theta, grad, optimizer, hyper, state, step)
    if not np.isfinite(theta).all():
        theta[:] = previous
        return UPDATE_NOT_FINITE
    return OK


REFERENCE_STEPS = Steps(rnn_loss_and_grad, lstm_loss_and_grad, check_and_update)
