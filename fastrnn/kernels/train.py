"""Training loop as a kernel: the twin of ``fastrnn.reference.train`` (read
that module for the arguments). Whole epochs run here, with no Python work
per mini-batch or per step: each chunk of a mini-batch is gathered into
workspaces allocated once per call, then the loss-and-gradient kernel, the
clipping and the optimizer run on it.
"""
import math

import numpy as np

from fastrnn._codes import LSTM
from fastrnn._jit import kernel
from fastrnn.kernels.lstm import lstm_loss_and_grad
from fastrnn.kernels._checks import all_finite
from fastrnn.kernels.optim import clip_gradient, optimizer_step
from fastrnn.kernels.rnn import rnn_loss_and_grad

OK, LOSS_NOT_FINITE, GRAD_NOT_FINITE, UPDATE_NOT_FINITE = range(4)


@kernel
def unflatten(theta, sizes):
    """Views W_x, W_h, b_h, W_y, b_y into the flat vector, in that order."""
    k, d, m = sizes[1], sizes[2], sizes[3]
    rows = 4 * d if sizes[0] == LSTM else d
    at = 0
    W_x = theta[at:at + rows * k].reshape((rows, k))
    at += rows * k
    W_h = theta[at:at + rows * d].reshape((rows, d))
    at += rows * d
    b_h = theta[at:at + rows]
    at += rows
    W_y = theta[at:at + m * d].reshape((m, d))
    at += m * d
    b_y = theta[at:at + m]
    return W_x, W_h, b_h, W_y, b_y


@kernel
def train_epochs(theta, sizes, X, Y, starts, lengths, order, batch_size, bptt,
                 optimizer, hyper, clip_mode, clip, state, step, losses, progress):
    """Run len(order) epochs of mini-batch training; see the twin's docstring."""
    lstm = sizes[0] == LSTM
    d, m = sizes[2], sizes[3]
    W_x, W_h, b_h, W_y, b_y = unflatten(theta, sizes)
    grad = np.empty_like(theta)
    dW_x, dW_h, db_h, dW_y, db_y = unflatten(grad, sizes)
    previous = np.empty_like(theta)
    n_sequences = order.shape[1]

    # Workspaces for the largest chunk: batch_size sequences of bptt steps.
    max_rows = min(batch_size * bptt, X.shape[0])
    Xc = np.empty((max_rows,) + X.shape[1:], dtype=X.dtype)
    Yc = np.empty((max_rows,) + Y.shape[1:], dtype=Y.dtype)
    H = np.empty((max_rows, d))
    P = np.empty((max_rows, m))
    offsets = np.empty(batch_size + 1, dtype=np.int64)
    h_carry = np.empty((batch_size, d))
    h0 = np.empty((batch_size, d))
    dh0 = np.empty((batch_size, d))
    # The LSTM also carries its cell state c_t from chunk to chunk.
    lstm_rows = max_rows if lstm else 0
    lstm_batch = batch_size if lstm else 0
    C = np.empty((lstm_rows, d))
    c_carry = np.empty((lstm_batch, d))
    c0 = np.empty((lstm_batch, d))
    dc0 = np.empty((lstm_batch, d))
    running = np.empty(batch_size, dtype=np.int64)

    for epoch in range(order.shape[0]):
        total = 0.0
        updates = 0
        for first in range(0, n_sequences, batch_size):
            n_batch = min(batch_size, n_sequences - first)
            longest = 0
            for b in range(n_batch):
                longest = max(longest, lengths[order[epoch, first + b]])
            h_carry[:n_batch] = 0.0
            c_carry[:] = 0.0
            for chunk_start in range(0, longest, bptt):
                # Gather this chunk of every sequence that is still running.
                n_run = 0
                r = 0
                offsets[0] = 0
                for b in range(n_batch):
                    s = order[epoch, first + b]
                    if lengths[s] <= chunk_start:
                        continue
                    end = starts[s] + min(lengths[s], chunk_start + bptt)
                    for row in range(starts[s] + chunk_start, end):
                        Xc[r] = X[row]
                        Yc[r] = Y[row]
                        r += 1
                    h0[n_run] = h_carry[b]
                    if lstm:
                        c0[n_run] = c_carry[b]
                    running[n_run] = b
                    n_run += 1
                    offsets[n_run] = r
                if lstm:
                    loss = lstm_loss_and_grad(W_x, W_h, b_h, W_y, b_y, Xc[:r], Yc[:r],
                                              offsets[:n_run + 1], h0[:n_run], c0[:n_run],
                                              H[:r], C[:r], P[:r], dW_x, dW_h, db_h, dW_y,
                                              db_y, dh0[:n_run], dc0[:n_run])
                else:
                    loss = rnn_loss_and_grad(W_x, W_h, b_h, W_y, b_y, Xc[:r], Yc[:r],
                                             offsets[:n_run + 1], h0[:n_run], H[:r], P[:r],
                                             dW_x, dW_h, db_h, dW_y, db_y, dh0[:n_run])
                fault = check_and_update(theta, grad, loss, optimizer, hyper,
                                         clip_mode, clip, state, step, previous)
                if fault != OK:
                    progress[1] = updates
                    return fault
                updates += 1
                total += loss * n_run
                for j in range(n_run):              # the next chunk starts here
                    h_carry[running[j]] = H[offsets[j + 1] - 1]
                    if lstm:
                        c_carry[running[j]] = C[offsets[j + 1] - 1]
        losses[epoch] = total / n_sequences
        progress[0] += 1
    return OK


@kernel
def check_and_update(theta, grad, loss, optimizer, hyper, clip_mode, clip, state, step,
                     previous):
    """Clip, then update unless the loss, the gradient or the result is not finite."""
    if not math.isfinite(loss):
        return LOSS_NOT_FINITE
    if not math.isfinite(clip_gradient(grad, clip_mode, clip)):
        return GRAD_NOT_FINITE
    previous[:] = theta
    optimizer_step(theta, grad, optimizer, hyper, state, step)
    if not all_finite(theta):
        theta[:] = previous
        return UPDATE_NOT_FINITE
    return OK
