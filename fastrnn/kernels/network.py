"""A whole network as kernels: the twin of ``fastrnn.reference.network``
(same functions, same signatures; read that module for the arguments).

The cell is chosen by the length of the ``cell`` tuple, which Numba knows
when it compiles: the other cells' branches are pruned before typing, so
a network of one cell compiles only that cell's kernels.
"""
import numpy as np

from fastrnn._codes import GRU, LSTM
from fastrnn._jit import kernel
from fastrnn.kernels._checks import all_finite
from fastrnn.kernels import gru, lstm, rnn
from fastrnn.kernels.dropout import dropout_mask
from fastrnn.kernels._linalg import copy_into, multiply_into
from fastrnn.kernels.head import (loss_and_delta, output_backward, output_layer,
                                  probabilities, row_factors)
from fastrnn.kernels.layers import add_input_gradient, input_projection, weight_gradients
from fastrnn.kernels.layout import output_arrays, output_transpose, slot_arrays, slot_transposes
from fastrnn.kernels.sequences import longest_first


@kernel
def _cell_forward(cell, W_h, W_hT, b_hn, A, offsets, order, running, reverse, state0, H, cache,
                  state_last):
    if len(cell) == LSTM:
        lstm.forward_steps(W_h, W_hT, b_hn, A, offsets, order, running, reverse, state0, H,
                           cache, state_last)
    elif len(cell) == GRU:
        gru.forward_steps(W_h, W_hT, b_hn, A, offsets, order, running, reverse, state0, H,
                          cache, state_last)
    else:
        rnn.forward_steps(W_h, W_hT, b_hn, A, offsets, order, running, reverse, state0, H,
                          cache, state_last)


@kernel
def _cell_backward(cell, W_h, b_hn, offsets, order, running, reverse, state0, H, cache, dH,
                   dA_x, dA_h, db_hn, dstate0):
    if len(cell) == LSTM:
        lstm.backward_steps(W_h, b_hn, offsets, order, running, reverse, state0, H, cache, dH,
                            dA_x, dA_h, db_hn, dstate0)
    elif len(cell) == GRU:
        gru.backward_steps(W_h, b_hn, offsets, order, running, reverse, state0, H, cache, dH,
                           dA_x, dA_h, db_hn, dstate0)
    else:
        rnn.backward_steps(W_h, b_hn, offsets, order, running, reverse, state0, H, cache, dH,
                           dA_x, dA_h, db_hn, dstate0)


@kernel
def _check_network(theta, thetaT, table, X, offsets, state0, Hs, caches, state_last, n_out_rows,
                   last_step):
    """The shape contract of a network's entry points."""
    L, D, N, d = Hs.shape
    S = L * D
    B = offsets.shape[0] - 1
    if table.shape[0] != 4 * S + 2 or table.shape[1] != 3:
        raise ValueError("network: expected a layout table of 4 (L·D) + 2 rows")
    if thetaT.shape[0] != 0 and thetaT.shape[0] != theta.shape[0]:
        raise ValueError("network: expected thetaT like theta, or empty")
    for r in range(table.shape[0]):
        if table[r, 0] < 0 or table[r, 1] < 0 or table[r, 2] < 0 \
                or table[r, 0] + table[r, 1] * table[r, 2] > theta.shape[0]:
            raise ValueError("network: the layout table points outside theta")
    if (state0.shape[0] != S or state0.shape[2] != B or state0.shape[3] != d
            or state_last.shape != state0.shape or caches.shape[0] != L
            or caches.shape[1] != D or caches.shape[2] != N or table[1, 2] != d
            or B < 1 or offsets[0] != 0 or offsets[B] != N
            or n_out_rows != (B if last_step else N)):
        raise ValueError("network: expected state0 (L·D, n_states, B, d), Hs (L, D, N, d), "
                         "caches (L, D, N, c·d), offsets (B + 1,) from 0 to N")
    k = table[0, 2]
    if X.ndim == 1:
        if X.shape[0] != N:
            raise ValueError("network: expected ids X (N,)")
        for n in range(N):
            if X[n] < 0 or X[n] >= k:
                raise ValueError("network: a token id out of range")
    elif X.shape[0] != N or X.shape[1] != k:
        raise ValueError("network: expected inputs X (N, k)")


@kernel
def _forward_layers(cell, theta, thetaT, table, X, offsets, order, running, state0, dropout,
                    seed, row0, Hs, caches, state_last, dropped):
    """Every layer, bottom up. With dropout > 0, ``dropped`` (L - 1, D, N, d)
    receives each layer's output times its mask: the next layer's input."""
    L, D, N, d = Hs.shape
    X0 = X if X.ndim == 1 else X.reshape((1, X.shape[0], X.shape[1]))
    A = np.empty((N, table[1, 1]), dtype=Hs.dtype)
    for layer in range(L):
        for direction in range(D):
            slot = layer * D + direction
            W_x, W_h, b_h, b_hn = slot_arrays(theta, table, slot)
            W_xT, W_hT = slot_transposes(thetaT, table, slot)
            if layer == 0:
                input_projection(X0, W_x, W_xT, b_h, A)    # W_x x_t + b_h, every step at once
            elif dropout > 0.0:
                input_projection(dropped[layer - 1], W_x, W_xT, b_h, A)
            else:
                input_projection(Hs[layer - 1], W_x, W_xT, b_h, A)
            if not all_finite(A.reshape(A.size)):
                raise FloatingPointError("network: W_x x_t + b_h overflowed to inf or nan")
            _cell_forward(cell, W_h, W_hT, b_hn, A, offsets, order, running, direction == 1,
                          state0[slot], Hs[layer, direction], caches[layer, direction],
                          state_last[slot])
        if dropout > 0.0 and layer + 1 < L:
            dropout_mask(seed, dropout, layer, L - 1, row0, dropped[layer])
            multiply_into(dropped[layer].reshape(dropped[layer].size), Hs[layer].reshape(Hs[layer].size))


@kernel
def forward(cell, theta, thetaT, table, X, offsets, state0, loss, last_step, Hs, caches,
            state_last, P):
    """Forward pass: every layer's output and cache, the last states, and
    ŷ of every output row in P."""
    _check_network(theta, thetaT, table, X, offsets, state0, Hs, caches, state_last, P.shape[0],
                   last_step)
    order, running = longest_first(offsets)
    dropped = np.empty((0,) + Hs.shape[1:], dtype=Hs.dtype)
    # No dropout, with the argument types training passes (a uint64 seed, the
    # literal row 0): a process that has trained reuses the compiled
    # _forward_layers instead of compiling another (a second of a cold start).
    _forward_layers(cell, theta, thetaT, table, X, offsets, order, running, state0, 0.0,
                    np.uint64(0), 0, Hs, caches, state_last, dropped)
    W_y, b_y = output_arrays(theta, table)
    output_layer(Hs[Hs.shape[0] - 1], W_y, output_transpose(thetaT, table), b_y, offsets,
                 last_step, P)
    probabilities(P, loss)


@kernel
def loss_and_grad(cell, theta, table, X, Y, offsets, scale, step_weight, state0, loss,
                  last_step, dropout, seed, row0, Hs, caches, state_last, grad, dstate0, dX):
    """Forward pass, the weighted loss and backpropagation through time:
    fills the gradient of every parameter, dstate0 and dX; returns the loss."""
    L, D, N, d = Hs.shape
    B = offsets.shape[0] - 1
    n_rows = B if last_step else N
    none = theta[:0]                                     # no transposed weights: thetaT
    _check_network(theta, none, table, X, offsets, state0, Hs, caches, state_last, n_rows,
                   last_step)
    if (Y.shape[0] != n_rows or grad.shape != theta.shape or dstate0.shape != state0.shape
            or (dX.shape[0] != 0 and (X.ndim == 1 or dX.shape != X.shape))
            or not 0.0 <= dropout < 1.0):
        raise ValueError("network.loss_and_grad: expected Y (rows, ...), grad like theta, "
                         "dstate0 like state0, dX like dense X or with 0 rows, dropout in [0, 1)")
    order, running = longest_first(offsets)
    dropped = np.empty((L - 1 if dropout > 0.0 else 0, D, N, d), dtype=Hs.dtype)
    _forward_layers(cell, theta, none, table, X, offsets, order, running, state0, dropout, seed,
                    row0, Hs, caches, state_last, dropped)
    W_y, b_y = output_arrays(theta, table)
    Z = np.empty((n_rows, b_y.shape[0]), dtype=Hs.dtype)
    output_layer(Hs[L - 1], W_y, output_transpose(none, table), b_y, offsets, last_step, Z)
    factors = np.empty(n_rows, dtype=Hs.dtype)
    row_factors(scale, step_weight, offsets, last_step, factors)
    total = loss_and_delta(Z, Y, factors, loss)          # Z is ∂L/∂z from here on

    dW_y, db_y = output_arrays(grad, table)
    dH = np.empty((D, N, d), dtype=Hs.dtype)             # ∂L/∂(this layer's output)
    output_backward(Z, Hs[L - 1], W_y, offsets, last_step, dW_y, db_y, dH)
    rows = table[1, 1]
    dA_x = np.empty((N, rows), dtype=Hs.dtype)
    if len(cell) == GRU:                                 # W_hn h_{t-1} is scaled by r_t
        dA_h = np.empty((N, rows), dtype=Hs.dtype)
    else:
        dA_h = dA_x
    d_below = np.empty((D if L > 1 else 0, N, d), dtype=Hs.dtype)
    mask = np.empty((D if dropout > 0.0 else 0, N, d), dtype=Hs.dtype)
    X0 = X if X.ndim == 1 else X.reshape((1, X.shape[0], X.shape[1]))
    dX0 = dX.reshape((1, dX.shape[0], dX.shape[1]))
    for layer in range(L - 1, -1, -1):
        if layer > 0:
            d_below[:] = 0.0
        elif dX.shape[0]:
            dX[:] = 0.0
        for direction in range(D):
            slot = layer * D + direction
            W_x, W_h, b_h, b_hn = slot_arrays(theta, table, slot)
            dW_x, dW_h, db_h, db_hn = slot_arrays(grad, table, slot)
            _cell_backward(cell, W_h, b_hn, offsets, order, running, direction == 1,
                           state0[slot], Hs[layer, direction], caches[layer, direction],
                           dH[direction], dA_x, dA_h, db_hn, dstate0[slot])
            if layer == 0:
                weight_gradients(dA_x, dA_h, X0, Hs[0, direction], state0[slot, 0], offsets,
                                 direction == 1, dW_x, dW_h, db_h)
                if dX.shape[0]:
                    add_input_gradient(dA_x, W_x, dX0)
            else:
                below = dropped[layer - 1] if dropout > 0.0 else Hs[layer - 1]
                weight_gradients(dA_x, dA_h, below, Hs[layer, direction], state0[slot, 0],
                                 offsets, direction == 1, dW_x, dW_h, db_h)
                add_input_gradient(dA_x, W_x, d_below)
        if layer > 0:
            copy_into(dH.reshape(dH.size), d_below.reshape(d_below.size))   # through the layer below's output
            if dropout > 0.0:
                dropout_mask(seed, dropout, layer - 1, L - 1, row0, mask)
                multiply_into(dH.reshape(dH.size), mask.reshape(mask.size))
    return total
