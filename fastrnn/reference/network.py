"""A whole network: layers of one cell, one or two directions each, then
the head. Twin of ``fastrnn.kernels.network``; read the modules it
composes first (``rnn`` for the cells' arguments, ``layers``, ``head``).

Arguments shared by the twins:

* ``cell``: the cell's tag (``fastrnn._cells``), a tuple whose length is
  its code (RNN, LSTM, GRU of ``fastrnn._codes``);
* ``theta``: every parameter, flat; ``table``: where each array sits in it
  (``fastrnn._layout``); ``thetaT`` (forward only): theta with every matrix
  stored transposed (``fastrnn._layout.transposed``), or empty. The kernels
  multiply with those transposes instead of making them (a Stream keeps
  them, made once); the reference computes with theta alone;
* ``X``: int64 ids (N,) or float inputs (N, k); ``offsets`` (B + 1,);
* ``state0`` (S, n_states, B, d): the initial states of the S = L·D slots
  (layer by layer, forward before reverse), h (and c) of every sequence;
* ``loss``, ``last_step``: the head (see ``head``);
* ``Hs`` (L, D, N, d), ``caches`` (L, D, N, c·d): filled with every layer's
  output and cache; ``state_last`` (S, n_states, B, d) with the last states.

Training adds the targets ``Y``, the loss weights ``scale`` (B,) and
``step_weight`` (N,) or empty (see ``head.row_factors``), dropout between
layers (``dropout`` = p, ``seed``, ``row0``: see ``dropout``), and outputs
the flat gradient ``grad`` (like theta), ``dstate0`` (like state0) and
``dX`` (N, k), ∂L/∂x_t of dense inputs, unless it has 0 rows.
"""
import numpy as np

from fastrnn._codes import GRU, LSTM
from fastrnn.reference import gru, lstm, rnn
from fastrnn.reference.dropout import dropout_mask
from fastrnn.reference.head import (loss_and_delta, output_backward, output_layer,
                                    probabilities, row_factors)
from fastrnn.reference.layers import add_input_gradient, input_projection, weight_gradients
from fastrnn.reference.layout import (output_arrays, output_transpose, slot_arrays,
                                      slot_transposes)
from fastrnn.reference.sequences import longest_first


def _cell_module(cell):
    return {LSTM: lstm, GRU: gru}.get(len(cell), rnn)


def _forward_layers(cell, theta, thetaT, table, X, offsets, order, running, state0, dropout,
                    seed, row0, Hs, caches, state_last):
    """Every layer, bottom up; returns the input each layer read: X (as one
    block of vectors, or ids), then the output of the layer below,
    multiplied by its dropout mask when dropout > 0 (training only)."""
    step = _cell_module(cell).forward_steps
    L, D = Hs.shape[:2]
    inputs = [X if X.ndim == 1 else X[None]]
    for layer in range(L):
        if layer:
            below = Hs[layer - 1]
            if dropout > 0.0:
                mask = np.empty_like(below)
                dropout_mask(seed, dropout, layer - 1, L - 1, row0, mask)
                below = below * mask
            inputs.append(below)
        for direction in range(D):
            slot = layer * D + direction
            W_x, W_h, b_h, b_hn = slot_arrays(theta, table, slot)
            W_xT, W_hT = slot_transposes(thetaT, table, slot)
            A = np.empty((Hs.shape[2], W_h.shape[0]), theta.dtype)
            input_projection(inputs[layer], W_x, W_xT, b_h, A)  # W_x x_t + b_h, all steps at once
            if not np.isfinite(A).all():                   # as the kernels, which tanh would hide
                raise FloatingPointError("network: W_x x_t + b_h overflowed to inf or nan")
            step(W_h, W_hT, b_hn, A, offsets, order, running, direction == 1, state0[slot],
                 Hs[layer, direction], caches[layer, direction], state_last[slot])
    return inputs


def forward(cell, theta, thetaT, table, X, offsets, state0, loss, last_step, Hs, caches,
            state_last, P):
    """Forward pass: every layer's output and cache, the last states, and
    ŷ of every output row in P."""
    order, running = longest_first(offsets)
    _forward_layers(cell, theta, thetaT, table, X, offsets, order, running, state0, 0.0, 0, 0,
                    Hs, caches, state_last)
    W_y, b_y = output_arrays(theta, table)
    output_layer(Hs[-1], W_y, output_transpose(thetaT, table), b_y, offsets, last_step, P)
    probabilities(P, loss)


def loss_and_grad(cell, theta, table, X, Y, offsets, scale, step_weight, state0, loss,
                  last_step, dropout, seed, row0, Hs, caches, state_last, grad, dstate0, dX):
    """Forward pass, the weighted loss and backpropagation through time:
    fills the gradient of every parameter, dstate0 and dX; returns the loss."""
    order, running = longest_first(offsets)
    none = theta[:0]                                       # no transposed weights
    inputs = _forward_layers(cell, theta, none, table, X, offsets, order, running, state0,
                             dropout, seed, row0, Hs, caches, state_last)
    L, D, N, d = Hs.shape
    W_y, b_y = output_arrays(theta, table)
    Z = np.empty((len(scale) if last_step else N, len(b_y)), theta.dtype)
    output_layer(Hs[-1], W_y, output_transpose(none, table), b_y, offsets, last_step, Z)
    factors = np.empty(len(Z), theta.dtype)
    row_factors(scale, step_weight, offsets, last_step, factors)
    total = loss_and_delta(Z, Y, factors, loss)            # Z is ∂L/∂z from here on

    dW_y, db_y = output_arrays(grad, table)
    dH = np.empty((D, N, d), theta.dtype)                  # ∂L/∂(this layer's output)
    output_backward(Z, Hs[-1], W_y, offsets, last_step, dW_y, db_y, dH)
    backward = _cell_module(cell).backward_steps
    for layer in reversed(range(L)):
        below_needs_it = layer > 0 or len(dX) > 0        # ∂L/∂(this layer's input)
        if layer:
            d_below = np.zeros((D, N, d), theta.dtype)
        elif below_needs_it:
            dX[:] = 0.0
            d_below = dX[None]
        for direction in range(D):
            slot = layer * D + direction
            W_x, W_h, b_h, b_hn = slot_arrays(theta, table, slot)
            dW_x, dW_h, db_h, db_hn = slot_arrays(grad, table, slot)
            dA_x = np.empty((N, W_h.shape[0]), theta.dtype)
            dA_h = np.empty_like(dA_x) if len(b_hn) else dA_x
            backward(W_h, b_hn, offsets, order, running, direction == 1, state0[slot],
                     Hs[layer, direction], caches[layer, direction], dH[direction],
                     dA_x, dA_h, db_hn, dstate0[slot])
            weight_gradients(dA_x, dA_h, inputs[layer], Hs[layer, direction], state0[slot][0],
                             offsets, direction == 1, dW_x, dW_h, db_h)
            if below_needs_it:
                add_input_gradient(dA_x, W_x, d_below)
        if layer:
            dH = d_below                                   # through the layer below's output
            if dropout > 0.0:
                mask = np.empty_like(dH)
                dropout_mask(seed, dropout, layer - 1, L - 1, row0, mask)
                dH = dH * mask
    return total
