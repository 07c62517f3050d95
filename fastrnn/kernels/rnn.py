"""Simple (Elman) RNN as Numba kernels: the twin of ``fastrnn.reference.rnn``
(same functions, same signatures, same data layout; read that module first).

Loop structure. Sequences are independent, so each is run to its end before
the next. Every matrix-vector product is written as a sum of scaled columns
(``out[i] += M[i, j] * v[j]`` with i innermost, over a transposed copy of M),
so the inner loop runs over contiguous memory and each out[i] is its own
accumulator: LLVM vectorises it without reassociating any sum, which keeps
results identical to the uncompiled Python execution of the same code.
"""
import math

import numpy as np

from fastrnn._jit import kernel


@kernel
def _add_input(X, n, W_xT, out):
    """out += W_X x_n; for a token id that is one row of W_Xᵀ."""
    d = out.shape[0]
    if X.ndim == 1:
        col = W_xT[X[n]]
        for i in range(d):
            out[i] += col[i]
    else:
        for j in range(X.shape[1]):
            x_j = X[n, j]
            if x_j != 0.0:                   # one-hot rows: skip the zeros
                row = W_xT[j]
                for i in range(d):
                    out[i] += row[i] * x_j


@kernel
def _add_matvec(M_T, v, out):
    """out += M v, given Mᵀ (C-contiguous), column by column."""
    for j in range(v.shape[0]):
        v_j = v[j]
        row = M_T[j]
        for i in range(out.shape[0]):
            out[i] += row[i] * v_j


@kernel
def _softmax_output(W_yT, b_y, h, p):
    """p = softmax(W_Y h + b_y), stably (subtract the largest logit)."""
    m = p.shape[0]
    for c in range(m):
        p[c] = b_y[c]
    _add_matvec(W_yT, h, p)
    z_max = p[0]
    for c in range(1, m):
        if p[c] > z_max:
            z_max = p[c]
    total = 0.0
    for c in range(m):
        p[c] = math.exp(p[c] - z_max)
        total += p[c]
    for c in range(m):
        p[c] /= total


@kernel
def rnn_forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, H, P):
    """Forward pass: fill H with every h_t and P with every ŷ_t."""
    d = W_h.shape[0]
    W_xT = np.ascontiguousarray(W_x.T)
    W_hT = np.ascontiguousarray(W_h.T)
    W_yT = np.ascontiguousarray(W_y.T)
    for b in range(offsets.shape[0] - 1):
        h_prev = h0[b]
        for n in range(offsets[b], offsets[b + 1]):
            h = H[n]
            for i in range(d):
                h[i] = b_h[i]
            _add_input(X, n, W_xT, h)        # W_X x_t + b_h
            _add_matvec(W_hT, h_prev, h)     # a_t = W_H h_{t-1} + W_X x_t + b_h
            for i in range(d):
                h[i] = math.tanh(h[i])       # h_t = tanh(a_t)
            _softmax_output(W_yT, b_y, h, P[n])
            h_prev = h


@kernel
def _cross_entropy_row(P, Y, n):
    """-Σ_c y_{n,c} log ŷ_{n,c} for one row (0 · log 0 counts as 0)."""
    if Y.ndim == 1:
        return -math.log(P[n, Y[n]])
    loss = 0.0
    for c in range(P.shape[1]):
        if Y[n, c] > 0.0:
            loss -= Y[n, c] * math.log(P[n, c])
    return loss


@kernel
def _output_grad_row(P, Y, n, scale, dz):
    """dz = (ŷ_n - y_n) · scale."""
    for c in range(dz.shape[0]):
        dz[c] = P[n, c]
    if Y.ndim == 1:
        dz[Y[n]] -= 1.0
    else:
        for c in range(dz.shape[0]):
            dz[c] -= Y[n, c]
    for c in range(dz.shape[0]):
        dz[c] *= scale


@kernel
def _add_outer(da, v, dW):
    """dW += da vᵀ."""
    for i in range(da.shape[0]):
        da_i = da[i]
        row = dW[i]
        for j in range(v.shape[0]):
            row[j] += da_i * v[j]


@kernel
def rnn_loss_and_grad(W_x, W_h, b_h, W_y, b_y, X, Y, offsets, h0, H, P,
                      dW_x, dW_h, db_h, dW_y, db_y, dh0):
    """Forward pass, loss (mean over the B sequences of each one's summed
    cross-entropy) and backpropagation through time. Fills H, P, every
    gradient and dh0 = ∂L/∂h0; returns the loss."""
    rnn_forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, H, P)
    d = W_h.shape[0]
    m = W_y.shape[0]
    B = offsets.shape[0] - 1
    scale = 1.0 / B

    dW_h[:] = 0.0
    db_h[:] = 0.0
    dW_y[:] = 0.0
    db_y[:] = 0.0
    # Token ids add da_t to one column of dW_X: collect them as rows of
    # dW_Xᵀ (contiguous) and transpose once at the end.
    if X.ndim == 1:
        dW_xT = np.zeros((W_x.shape[1], d))
    else:
        dW_xT = np.zeros((0, d))
        dW_x[:] = 0.0
    dz = np.empty(m)
    dh = np.empty(d)
    da = np.empty(d)

    loss = 0.0
    for b in range(B):
        first, last = offsets[b], offsets[b + 1] - 1
        da[:] = 0.0                          # δ_{T+1} = 0
        for n in range(last, first - 1, -1):
            loss += _cross_entropy_row(P, Y, n)
            _output_grad_row(P, Y, n, scale, dz)   # dz_t = ŷ_t - y_t
            h = H[n]
            _add_outer(dz, h, dW_y)                # dW_Y += dz_t h_tᵀ
            for c in range(m):
                db_y[c] += dz[c]                   # db_y += dz_t
            dh[:] = 0.0
            _add_matvec(W_y, dz, dh)               # W_Yᵀ dz_t
            _add_matvec(W_h, da, dh)               # + W_Hᵀ da_{t+1}
            for i in range(d):
                da[i] = dh[i] * (1.0 - h[i] * h[i])  # da_t = dh_t ⊙ (1 - h_t²)
            h_prev = h0[b] if n == first else H[n - 1]
            _add_outer(da, h_prev, dW_h)           # dW_H += da_t h_{t-1}ᵀ
            for i in range(d):
                db_h[i] += da[i]                   # db_h += da_t
            if X.ndim == 1:                        # dW_X += da_t x_tᵀ
                row = dW_xT[X[n]]
                for i in range(d):
                    row[i] += da[i]
            else:
                _add_outer(da, X[n], dW_x)
        dh0[b, :] = 0.0
        _add_matvec(W_h, da, dh0[b])               # dh_0 = W_Hᵀ da_1
    if X.ndim == 1:
        dW_x[:] = dW_xT.T
    return loss * scale
