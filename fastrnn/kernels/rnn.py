"""The simple RNN's recurrence as kernels: the twin of
``fastrnn.reference.rnn`` (same functions, same signatures; read that
module first).

At each step the sequences still running are a prefix of ``order``; their
states sit in rows 0..n_run-1 of small work arrays, so W_H h_{t-1} is one
matrix product for all of them. Nothing is allocated inside the time loop,
and rows are indexed in place rather than taken as views (see
``fastrnn.kernels._linalg.copy_row``).
"""
import numpy as np

from fastrnn._jit import kernel
from fastrnn.kernels._cellchecks import check_cell_arguments
from fastrnn.kernels._linalg import (add_products, add_products_wt, copy_into, copy_row,
                                     product_transpose)
from fastrnn.kernels._math import tanh
from fastrnn.kernels.sequences import step_row


@kernel
def forward_steps(W_h, W_hT, b_hn, A, offsets, order, running, reverse, state0, H, cache,
                  state_last):
    """h_t for every row, the running sequences together at each step."""
    check_cell_arguments(W_h, b_hn, offsets, order, running, state0, H, cache, 1, 0, False)
    N, d = H.shape
    B = order.shape[0]
    if A.shape[0] != N or A.shape[1] != d or state0.shape[0] != 1 \
            or state_last.shape != state0.shape:
        raise ValueError("rnn.forward_steps: expected A (N, d), state0 and state_last (1, B, d)")
    W_hT = product_transpose(W_h, W_hT, N)
    h = np.empty((B, d), dtype=H.dtype)          # h_{t-1} of the running sequences
    a = np.empty((B, d), dtype=H.dtype)
    for s in range(B):
        copy_into(h[s], state0[0, order[s]])
    for t in range(running.shape[0]):
        n_run = running[t]
        for s in range(n_run):
            copy_row(a, s, A, step_row(offsets, order[s], t, reverse))
        add_products_wt(h[:n_run], W_h, W_hT, a[:n_run])  # a_t = W_H h_{t-1} + W_X x_t + b_h
        for s in range(n_run):
            n = step_row(offsets, order[s], t, reverse)
            for i in range(d):
                H[n, i] = tanh(a[s, i])             # h_t = tanh(a_t)
            copy_row(h, s, H, n)
    for s in range(B):
        copy_into(state_last[0, order[s]], h[s])


@kernel
def backward_steps(W_h, b_hn, offsets, order, running, reverse, state0, H, cache, dH,
                   dA_x, dA_h, db_hn, dstate0):
    """Backpropagation through time: ∂L/∂a_t for every row, and ∂L/∂h_0."""
    check_cell_arguments(W_h, b_hn, offsets, order, running, state0, H, cache, 1, 0, False)
    N, d = H.shape
    B = order.shape[0]
    if dH.shape != H.shape or dA_x.shape != H.shape or dstate0.shape != state0.shape:
        raise ValueError("rnn.backward_steps: expected dH, dA_x (N, d), dstate0 (1, B, d)")
    one = H.dtype.type(1.0)
    da = np.zeros((B, d), dtype=H.dtype)         # da_{t+1}: 0 after a sequence's last step
    dh = np.empty((B, d), dtype=H.dtype)
    for t in range(running.shape[0] - 1, -1, -1):
        n_run = running[t]
        for s in range(n_run):
            copy_row(dh, s, dH, step_row(offsets, order[s], t, reverse))
        add_products(da[:n_run], W_h, dh[:n_run])  # dh_t = (from above) + W_Hᵀ da_{t+1}
        for s in range(n_run):
            n = step_row(offsets, order[s], t, reverse)
            for i in range(d):
                dA_x[n, i] = dh[s, i] * (one - H[n, i] * H[n, i])   # da_t = dh_t ⊙ (1 - h_t²)
            copy_row(da, s, dA_x, n)
    dstate0[0] = 0.0
    for s in range(B):
        add_products(da[s:s + 1], W_h, dstate0[0, order[s]:order[s] + 1])   # dh_0 = W_Hᵀ da_1
