"""The LSTM's recurrence as kernels: the twin of ``fastrnn.reference.lstm``
(same functions, same signatures; read that module first).

The structure is that of ``fastrnn.kernels.rnn``: the running sequences'
states sit in the first rows of small work arrays, and W_hh h_{t-1} of the
four gates is one matrix product per step. Each row of ``cache`` receives
the step's f, i, o, g and c_t, which backpropagation reads back.
Recomputing the gates there instead would save no memory (the input
projection of every step needs an (N, 4d) buffer anyway) and would cost a
second 4d × d product per step (measured on an earlier version of these
kernels: 45% slower at d = 100).
"""
import numpy as np

from fastrnn._jit import kernel
from fastrnn.kernels._cellchecks import check_cell_arguments
from fastrnn.kernels._linalg import (add_products, add_products_wt, copy_into, copy_row,
                                     product_transpose)
from fastrnn.kernels._math import sigmoid, tanh
from fastrnn.kernels.sequences import step_row


@kernel
def forward_steps(W_h, W_hT, b_hn, A, offsets, order, running, reverse, state0, H, cache,
                  state_last):
    """h_t and the cache (gates, c_t) for every row."""
    check_cell_arguments(W_h, b_hn, offsets, order, running, state0, H, cache, 4, 5, False)
    N, d = H.shape
    B = order.shape[0]
    if A.shape[0] != N or A.shape[1] != 4 * d or state0.shape[0] != 2 \
            or state_last.shape != state0.shape:
        raise ValueError("lstm.forward_steps: expected A (N, 4d), state0 and state_last (2, B, d)")
    W_hT = product_transpose(W_h, W_hT, N)
    h = np.empty((B, d), dtype=H.dtype)          # h_{t-1} and c_{t-1} of the running sequences
    c = np.empty((B, d), dtype=H.dtype)
    a = np.empty((B, 4 * d), dtype=H.dtype)
    for s in range(B):
        copy_into(h[s], state0[0, order[s]])
        copy_into(c[s], state0[1, order[s]])
    for t in range(running.shape[0]):
        n_run = running[t]
        for s in range(n_run):
            copy_row(a, s, A, step_row(offsets, order[s], t, reverse))
        add_products_wt(h[:n_run], W_h, W_hT, a[:n_run])  # + W_hh h_{t-1}, the four gates'
        for s in range(n_run):
            n = step_row(offsets, order[s], t, reverse)
            # One short loop per operation, each over two or three arrays:
            # LLVM vectorises those (a single loop writing five arrays ran
            # scalar, measured 8x slower). The same operations in the same
            # order, so the same numbers.
            for i in range(3 * d):                  # f_t, i_t, o_t
                cache[n, i] = sigmoid(a[s, i])
            for i in range(3 * d, 4 * d):           # g_t
                cache[n, i] = tanh(a[s, i])
            for i in range(d):                      # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
                c[s, i] = cache[n, i] * c[s, i] + cache[n, d + i] * cache[n, 3 * d + i]
            for i in range(d):
                cache[n, 4 * d + i] = c[s, i]
            for i in range(d):                      # h_t = o_t ⊙ tanh(c_t)
                H[n, i] = cache[n, 2 * d + i] * tanh(c[s, i])
            copy_row(h, s, H, n)
    for s in range(B):
        copy_into(state_last[0, order[s]], h[s])
        copy_into(state_last[1, order[s]], c[s])


@kernel
def backward_steps(W_h, b_hn, offsets, order, running, reverse, state0, H, cache, dH,
                   dA_x, dA_h, db_hn, dstate0):
    """Backpropagation through time: ∂L/∂a_t of the four gates for every
    row, and ∂L/∂h_0, ∂L/∂c_0."""
    check_cell_arguments(W_h, b_hn, offsets, order, running, state0, H, cache, 4, 5, False)
    N, d = H.shape
    B = order.shape[0]
    if dH.shape != H.shape or dA_x.shape[0] != N or dA_x.shape[1] != 4 * d \
            or dstate0.shape != state0.shape:
        raise ValueError("lstm.backward_steps: expected dH (N, d), dA_x (N, 4d), "
                         "dstate0 (2, B, d)")
    one = H.dtype.type(1.0)
    # da: da_{t+1} of the four gates; dc: the gradient reaching c_t through
    # c_{t+1} = f_{t+1} ⊙ c_t + ..., dc_{t+1} ⊙ f_{t+1}. Both 0 after the last step.
    da = np.zeros((B, 4 * d), dtype=H.dtype)
    dc = np.zeros((B, d), dtype=H.dtype)
    dh = np.empty((B, d), dtype=H.dtype)
    for t in range(running.shape[0] - 1, -1, -1):
        n_run = running[t]
        for s in range(n_run):
            copy_row(dh, s, dH, step_row(offsets, order[s], t, reverse))
        add_products(da[:n_run], W_h, dh[:n_run])    # dh_t = (from above) + W_hhᵀ da_{t+1}
        for s in range(n_run):
            b = order[s]
            n = step_row(offsets, b, t, reverse)
            # As in the forward pass, one loop per few arrays so each vectorises.
            for i in range(d):
                o_t = cache[n, 2 * d + i]
                tanh_c = tanh(cache[n, 4 * d + i])
                # h_t = o_t ⊙ tanh(c_t), through σ' = σ(1 - σ) and tanh' = 1 - tanh²
                da[s, 2 * d + i] = (dh[s, i] * tanh_c) * (o_t * (one - o_t))
                # dh[s] becomes dc_t, the gradient reaching c_t
                dh[s, i] = dh[s, i] * o_t * (one - tanh_c * tanh_c) + dc[s, i]
            # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t, with c_{t-1} from the cache or, at
            # the first step, from c_0 (two loops, as in gru.backward_steps)
            if t == 0:
                for i in range(d):
                    f_t = cache[n, i]
                    da[s, i] = (dh[s, i] * state0[1, b, i]) * (f_t * (one - f_t))
            else:
                p = n + 1 if reverse else n - 1
                for i in range(d):
                    f_t = cache[n, i]
                    da[s, i] = (dh[s, i] * cache[p, 4 * d + i]) * (f_t * (one - f_t))
            for i in range(d):
                i_t = cache[n, d + i]
                g_t = cache[n, 3 * d + i]
                da[s, d + i] = (dh[s, i] * g_t) * (i_t * (one - i_t))
                da[s, 3 * d + i] = (dh[s, i] * i_t) * (one - g_t * g_t)
            for i in range(d):
                dc[s, i] = dh[s, i] * cache[n, i]
            copy_row(dA_x, n, da, s)
    dstate0[0] = 0.0
    for s in range(B):
        add_products(da[s:s + 1], W_h, dstate0[0, order[s]:order[s] + 1])   # dh_0 = W_hhᵀ da_1
        copy_into(dstate0[1, order[s]], dc[s])                                       # dc_0 = dc_1 ⊙ f_1
