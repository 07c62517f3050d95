"""Simple (Elman) RNN as Numba kernels: the twin of ``fastrnn.reference.rnn``
(same functions, same signatures, same data layout; read that module first).

The kernels follow the reference's structure: the input projection
W_X x_t + b_h and the output layer are computed for every step at once,
only the recurrence runs step by step, for all sequences still running at
that step together (sorted longest first, so they are a prefix). The
products are the explicit loops of ``fastrnn.kernels._linalg``; nothing is
allocated inside the time loop.
"""
import math

import numpy as np

from fastrnn._jit import kernel
from fastrnn.kernels._linalg import add_products, add_products_t
from fastrnn.kernels._math import exp_nonpositive, tanh


@kernel
def _longest_first(offsets):
    """Sequence indices sorted by decreasing length (ties: input order), and
    the number of sequences with more than t steps, for every t."""
    B = offsets.shape[0] - 1
    longest, shortest = 0, offsets[1] - offsets[0]
    for b in range(B):
        longest = max(longest, offsets[b + 1] - offsets[b])
        shortest = min(shortest, offsets[b + 1] - offsets[b])
    if shortest == longest:                  # the usual case: nothing to sort
        order = np.arange(B)
    else:
        order = np.argsort(offsets[:-1] - offsets[1:], kind="mergesort")
    running = np.zeros(longest, dtype=np.int64)
    for b in range(B):
        running[:offsets[b + 1] - offsets[b]] += 1
    return order, running


@kernel
def input_projection(X, W_x, b_h, A):
    """A[n] = W_X x_n + b_h for every row; a token id picks a column of W_X."""
    for n in range(A.shape[0]):
        A[n] = b_h
    if X.ndim == 1:
        # Read the column in place: a few strided loads per step cost less
        # than transposing all of W_X (k columns) on every call.
        for n in range(A.shape[0]):
            a = A[n]
            x = X[n]
            for i in range(a.shape[0]):
                a[i] = a[i] + W_x[i, x]
    else:
        add_products(X, np.ascontiguousarray(W_x.T), A)


@kernel
def softmax_rows(Z):
    """Each row of Z becomes softmax(row), stably (largest logit subtracted)."""
    for n in range(Z.shape[0]):
        z = Z[n]
        z_max = z.max()
        for c in range(z.shape[0]):
            z[c] = exp_nonpositive(z[c] - z_max)
        total = 0.0
        for c in range(z.shape[0]):
            total += z[c]
        for c in range(z.shape[0]):
            z[c] /= total


@kernel
def rnn_forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, H, P):
    """Forward pass: fill H with every h_t and P with every ŷ_t."""
    d = W_h.shape[0]
    order, running = _longest_first(offsets)
    input_projection(X, W_x, b_h, H)        # W_X x_t + b_h, every step at once
    W_hT = np.ascontiguousarray(W_h.T)
    h = np.empty((order.shape[0], d))       # h_{t-1} of the running sequences
    a = np.empty((order.shape[0], d))
    for s in range(order.shape[0]):
        h[s] = h0[order[s]]
    for t in range(running.shape[0]):
        n_run = running[t]
        for s in range(n_run):
            a[s] = H[offsets[order[s]] + t]
        add_products(h[:n_run], W_hT, a[:n_run])   # a_t = W_H h_{t-1} + W_X x_t + b_h
        for s in range(n_run):
            row = H[offsets[order[s]] + t]
            for i in range(d):
                row[i] = tanh(a[s, i])              # h_t = tanh(a_t)
            h[s] = row
    for n in range(P.shape[0]):
        P[n] = b_y
    add_products(H, np.ascontiguousarray(W_y.T), P)  # z_t = W_Y h_t + b_y, every step at once
    softmax_rows(P)                                  # ŷ_t = softmax(z_t)


@kernel
def cross_entropy(P, Y):
    """-Σ_t Σ_c y_{t,c} log ŷ_{t,c} summed over all rows (0 · log 0 = 0)."""
    loss = 0.0
    for n in range(P.shape[0]):
        if Y.ndim == 1:
            loss -= math.log(P[n, Y[n]])
        else:
            for c in range(P.shape[1]):
                if Y[n, c] > 0.0:
                    loss -= Y[n, c] * math.log(P[n, c])
    return loss


# Rows of dz_t held at a time: a multiple of 8, so that the blocks of
# add_products_t, and with them every sum, are those of the whole array.
_OUTPUT_ROWS = 256


@kernel
def output_backward(P, Y, H, W_y, B, dW_y, db_y, dH):
    """The output layer's share of BPTT, every step at once (both cells):
    dz_t = (ŷ_t - y_t) / B, dW_Y = Σ_t dz_t h_tᵀ, db_y = Σ_t dz_t, and
    dH[t] = W_Yᵀ dz_t. dz_t is made _OUTPUT_ROWS rows at a time, never for
    every step at once: that would be another (N, m) array at the peak."""
    N, m = P.shape
    dZ = np.empty((min(N, _OUTPUT_ROWS), m))
    dW_y[:] = 0.0
    db_y[:] = 0.0
    dH[:] = 0.0
    for first in range(0, N, _OUTPUT_ROWS):
        end = min(first + _OUTPUT_ROWS, N)
        dz = dZ[:end - first]
        dz[:] = P[first:end]
        if Y.ndim == 1:
            for n in range(first, end):
                dz[n - first, Y[n]] -= 1.0
        else:
            dz -= Y[first:end]
        dz *= 1.0 / B                           # dz_t = ŷ_t - y_t, with the 1/B of the mean
        add_products_t(dz, H[first:end], dW_y)  # Σ_t dz_t h_tᵀ
        for r in range(end - first):
            db_y += dz[r]                       # Σ_t dz_t
        add_products(dz, W_y, dH[first:end])    # W_Yᵀ dz_t


@kernel
def rnn_loss_and_grad(W_x, W_h, b_h, W_y, b_y, X, Y, offsets, h0, H, P,
                      dW_x, dW_h, db_h, dW_y, db_y, dh0):
    """Forward pass, loss (mean over the B sequences of each one's summed
    cross-entropy) and backpropagation through time. Fills H, P, every
    gradient and dh0 = ∂L/∂h0; returns the loss."""
    rnn_forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, H, P)
    N, d = H.shape
    B = offsets.shape[0] - 1
    loss = cross_entropy(P, Y) / B

    dA = np.empty((N, d))
    output_backward(P, Y, H, W_y, B, dW_y, db_y, dA)   # dA = W_Yᵀ dz_t, every step at once

    # Backward through time, the running sequences together; da holds
    # da_{t+1}, which is 0 until a sequence's last step (δ_{T+1} = 0).
    order, running = _longest_first(offsets)
    da = np.zeros((order.shape[0], d))
    dh = np.empty((order.shape[0], d))
    for t in range(running.shape[0] - 1, -1, -1):
        n_run = running[t]
        for s in range(n_run):
            dh[s] = dA[offsets[order[s]] + t]
        add_products(da[:n_run], W_h, dh[:n_run])    # dh_t = W_Yᵀ dz_t + W_Hᵀ da_{t+1}
        for s in range(n_run):
            n = offsets[order[s]] + t
            h, row = H[n], dA[n]
            for i in range(d):
                row[i] = dh[s, i] * (1.0 - h[i] * h[i])   # da_t = dh_t ⊙ (1 - h_t²)
            da[s] = row
    dh0[:] = 0.0
    for s in range(order.shape[0]):
        add_products(da[s:s + 1], W_h, dh0[order[s]:order[s] + 1])   # dh_0 = W_Hᵀ da_1

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
        for n in range(N):                      # da_t to column x_t of dW_X
            x, row = X[n], dA[n]
            for i in range(d):
                dW_x[i, x] = dW_x[i, x] + row[i]
    else:
        add_products_t(dA, X, dW_x)
    return loss
