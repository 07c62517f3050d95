"""LSTM as Numba kernels: the twin of ``fastrnn.reference.lstm`` (same
functions, same signatures, same data layout; read that module first).

The structure is that of ``fastrnn.kernels.rnn``, whose kernels are reused:
the input projection W_xh x_t + b_h of the four gates (stacked f, i, o, g,
4d wide) and the output layer are computed for every step at once; only the
recurrence runs step by step, for all sequences still running at that step
together (longest first, so they are a prefix). The products are the
explicit loops of ``fastrnn.kernels._linalg``; nothing is allocated inside
the time loop.

The gate activations live in one (N, 4d) buffer ``G``: the input projection
is written there, the recurrence adds W_hh h_{t-1} and replaces each
pre-activation by its gate, and the backward pass, which needs every step's
gates, overwrites each row with da_t once it is done with it. Recomputing
the gates in the backward pass instead would save no memory (the input
projection of every step needs the (N, 4d) buffer anyway) and would cost a
second 4d × d product per step (measured on a per-step variant of these
kernels: ``lstm_loss_and_grad`` 45% slower at d = 100).
"""
import numpy as np

from fastrnn._jit import kernel
from fastrnn.kernels._linalg import add_products, add_products_t
from fastrnn.kernels._math import sigmoid, tanh
from fastrnn.kernels.rnn import (_longest_first, cross_entropy, input_projection,
                                 output_backward, softmax_rows)


@kernel
def _forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, c0, H, C, P, G):
    """lstm_forward, also filling G (N, 4d) with every step's gates f, i, o, g."""
    d = W_h.shape[1]
    order, running = _longest_first(offsets)
    input_projection(X, W_x, b_h, G)        # W_xh x_t + b_h, every step at once
    W_hT = np.ascontiguousarray(W_h.T)
    h = np.empty((order.shape[0], d))       # h_{t-1} and c_{t-1} of the running sequences
    c = np.empty((order.shape[0], d))
    a = np.empty((order.shape[0], 4 * d))
    for s in range(order.shape[0]):
        h[s] = h0[order[s]]
        c[s] = c0[order[s]]
    for t in range(running.shape[0]):
        n_run = running[t]
        for s in range(n_run):
            a[s] = G[offsets[order[s]] + t]
        add_products(h[:n_run], W_hT, a[:n_run])   # + W_hh h_{t-1}: the four pre-activations
        for s in range(n_run):
            n = offsets[order[s]] + t
            gate, h_t, c_t = G[n], H[n], C[n]
            for i in range(d):
                f_t = sigmoid(a[s, i])
                i_t = sigmoid(a[s, d + i])
                o_t = sigmoid(a[s, 2 * d + i])
                g_t = tanh(a[s, 3 * d + i])
                c_t[i] = f_t * c[s, i] + i_t * g_t  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
                h_t[i] = o_t * tanh(c_t[i])    # h_t = o_t ⊙ tanh(c_t)
                gate[i] = f_t
                gate[d + i] = i_t
                gate[2 * d + i] = o_t
                gate[3 * d + i] = g_t
            h[s] = h_t
            c[s] = c_t
    for n in range(P.shape[0]):
        P[n] = b_y
    add_products(H, np.ascontiguousarray(W_y.T), P)  # z_t = W_Y h_t + b_y, every step at once
    softmax_rows(P)                                  # ŷ_t = softmax(z_t)


@kernel
def lstm_forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, c0, H, C, P):
    """Forward pass: fill H with every h_t, C with every c_t and P with
    every ŷ_t."""
    G = np.empty((H.shape[0], 4 * W_h.shape[1]))
    _forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, c0, H, C, P, G)


@kernel
def lstm_loss_and_grad(W_x, W_h, b_h, W_y, b_y, X, Y, offsets, h0, c0, H, C, P,
                       dW_x, dW_h, db_h, dW_y, db_y, dh0, dc0):
    """Forward pass, loss (mean over the B sequences of each one's summed
    cross-entropy) and backpropagation through time. Fills H, C, P, every
    gradient, dh0 = ∂L/∂h0 and dc0 = ∂L/∂c0; returns the loss."""
    N, d = H.shape
    B = offsets.shape[0] - 1
    G = np.empty((N, 4 * d))                # every step's gates, then every step's da_t
    _forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, c0, H, C, P, G)
    loss = cross_entropy(P, Y) / B

    # The output layer is the simple RNN's; dH = W_Yᵀ dz_t is the part of
    # dh_t that comes from ŷ_t.
    dH = np.empty((N, d))
    output_backward(P, Y, H, W_y, B, dW_y, db_y, dH)

    # Backward through time, the running sequences together. da holds
    # da_{t+1} (the four pre-activations' gradients) and dc the gradient
    # reaching c_t through c_{t+1} = f_{t+1} ⊙ c_t + ..., dc_{t+1} ⊙ f_{t+1};
    # both are 0 until a sequence's last step (δ_{T+1} = 0).
    order, running = _longest_first(offsets)
    da = np.zeros((order.shape[0], 4 * d))
    dc = np.zeros((order.shape[0], d))
    dh = np.empty((order.shape[0], d))
    for t in range(running.shape[0] - 1, -1, -1):
        n_run = running[t]
        for s in range(n_run):
            dh[s] = dH[offsets[order[s]] + t]
        add_products(da[:n_run], W_h, dh[:n_run])    # dh_t = W_Yᵀ dz_t + W_hhᵀ da_{t+1}
        for s in range(n_run):
            b = order[s]
            n = offsets[b] + t
            gate = G[n]
            c_prev = c0[b] if t == 0 else C[n - 1]
            for i in range(d):
                f_t = gate[i]
                i_t = gate[d + i]
                o_t = gate[2 * d + i]
                g_t = gate[3 * d + i]
                tanh_c = tanh(C[n, i])
                # h_t = o_t ⊙ tanh(c_t);  c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
                dc_t = dh[s, i] * o_t * (1.0 - tanh_c * tanh_c) + dc[s, i]
                # through σ' = σ(1 - σ) and tanh' = 1 - tanh², stacked f, i, o, g
                da[s, i] = (dc_t * c_prev[i]) * (f_t * (1.0 - f_t))
                da[s, d + i] = (dc_t * g_t) * (i_t * (1.0 - i_t))
                da[s, 2 * d + i] = (dh[s, i] * tanh_c) * (o_t * (1.0 - o_t))
                da[s, 3 * d + i] = (dc_t * i_t) * (1.0 - g_t * g_t)
                dc[s, i] = dc_t * f_t
            gate[:] = da[s]                     # row n of G is da_t from now on
    dA = G
    dh0[:] = 0.0
    for s in range(order.shape[0]):
        add_products(da[s:s + 1], W_h, dh0[order[s]:order[s] + 1])   # dh_0 = W_hhᵀ da_1
        dc0[order[s]] = dc[s]                                        # dc_0 = dc_1 ⊙ f_1

    dW_h[:] = 0.0
    for b in range(B):                          # Σ_t da_t h_{t-1}ᵀ: h_0, then the
        first, end = offsets[b], offsets[b + 1]  # sequence's own rows shifted by one
        add_products_t(dA[first:first + 1], h0[b:b + 1], dW_h)
        add_products_t(dA[first + 1:end], H[first:end - 1], dW_h)
    db_h[:] = 0.0
    for n in range(N):
        db_h += dA[n]                           # Σ_t da_t
    dW_x[:] = 0.0
    if X.ndim == 1:                             # Σ_t da_t x_tᵀ: a one-hot x_t adds
        for n in range(N):                      # da_t to column x_t of dW_xh
            x, row = X[n], dA[n]
            for r in range(4 * d):
                dW_x[r, x] = dW_x[r, x] + row[r]
    else:
        add_products_t(dA, X, dW_x)
    return loss
