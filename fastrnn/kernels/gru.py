"""The GRU's recurrence as kernels: the twin of ``fastrnn.reference.gru``
(same functions, same signatures; read that module first).

The structure is that of ``fastrnn.kernels.rnn``. W_h h_{t-1} of the three
gates is one matrix product per step, kept apart from the input projection
because its n block is scaled by r_t. Each row of ``cache`` receives the
step's r, u, n and W_hn h_{t-1} + b_hn.
"""
import numpy as np

from fastrnn._jit import kernel
from fastrnn.kernels._cellchecks import check_cell_arguments
from fastrnn.kernels._linalg import (add_into, add_products, add_products_wt, copy_into, copy_row,
                                     product_transpose)
from fastrnn.kernels._math import sigmoid, tanh
from fastrnn.kernels.sequences import step_row


@kernel
def forward_steps(W_h, W_hT, b_hn, A, offsets, order, running, reverse, state0, H, cache,
                  state_last):
    """h_t and the cache (gates, W_hn h_{t-1} + b_hn) for every row."""
    check_cell_arguments(W_h, b_hn, offsets, order, running, state0, H, cache, 3, 4, True)
    N, d = H.shape
    B = order.shape[0]
    if A.shape[0] != N or A.shape[1] != 3 * d or state0.shape[0] != 1 \
            or state_last.shape != state0.shape:
        raise ValueError("gru.forward_steps: expected A (N, 3d), state0 and state_last (1, B, d)")
    one = H.dtype.type(1.0)
    W_hT = product_transpose(W_h, W_hT, N)
    h = np.empty((B, d), dtype=H.dtype)          # h_{t-1} of the running sequences
    hr = np.empty((B, 3 * d), dtype=H.dtype)     # W_h h_{t-1} of r, u, n
    for s in range(B):
        copy_into(h[s], state0[0, order[s]])
    for t in range(running.shape[0]):
        n_run = running[t]
        hr[:n_run] = 0.0
        add_products_wt(h[:n_run], W_h, W_hT, hr[:n_run])
        for s in range(n_run):
            n = step_row(offsets, order[s], t, reverse)
            # One short loop per operation, so each vectorises (see lstm).
            for i in range(2 * d):                  # r_t, u_t
                cache[n, i] = sigmoid(A[n, i] + hr[s, i])
            for i in range(d):                      # W_hn h_{t-1} + b_hn
                cache[n, 3 * d + i] = hr[s, 2 * d + i] + b_hn[i]
            for i in range(d):                      # n_t
                cache[n, 2 * d + i] = tanh(A[n, 2 * d + i] + cache[n, i] * cache[n, 3 * d + i])
            for i in range(d):                      # h_t = (1 - u_t) n_t + u_t h_{t-1}
                u_t = cache[n, d + i]
                H[n, i] = (one - u_t) * cache[n, 2 * d + i] + u_t * h[s, i]
            copy_row(h, s, H, n)
    for s in range(B):
        copy_into(state_last[0, order[s]], h[s])


@kernel
def backward_steps(W_h, b_hn, offsets, order, running, reverse, state0, H, cache, dH,
                   dA_x, dA_h, db_hn, dstate0):
    """Backpropagation through time: the gradients of the input projection
    (dA_x) and of W_h h_{t-1} (dA_h) for every row, ∂L/∂b_hn and ∂L/∂h_0."""
    check_cell_arguments(W_h, b_hn, offsets, order, running, state0, H, cache, 3, 4, True)
    N, d = H.shape
    B = order.shape[0]
    if dH.shape != H.shape or dA_x.shape[0] != N or dA_x.shape[1] != 3 * d \
            or dA_h.shape != dA_x.shape or db_hn.shape[0] != d or dstate0.shape != state0.shape:
        raise ValueError("gru.backward_steps: expected dH (N, d), dA_x and dA_h (N, 3d), "
                         "db_hn (d,), dstate0 (1, B, d)")
    one = H.dtype.type(1.0)
    # ∂L/∂h_t through step t+1 has two parts: W_hᵀ da_{t+1} (da: dA_h of
    # step t+1) and the direct path dh_{t+1} ⊙ u_{t+1}. Both 0 after the last step.
    da = np.zeros((B, 3 * d), dtype=H.dtype)
    direct = np.zeros((B, d), dtype=H.dtype)
    dh = np.empty((B, d), dtype=H.dtype)
    for t in range(running.shape[0] - 1, -1, -1):
        n_run = running[t]
        for s in range(n_run):
            n = step_row(offsets, order[s], t, reverse)
            for i in range(d):
                dh[s, i] = dH[n, i] + direct[s, i]
        add_products(da[:n_run], W_h, dh[:n_run])
        for s in range(n_run):
            b = order[s]
            n = step_row(offsets, b, t, reverse)
            # h_t = (1 - u_t) ⊙ n_t + u_t ⊙ h_{t-1}, then through tanh' and σ'
            for i in range(d):                      # dn
                n_t = cache[n, 2 * d + i]
                dA_x[n, 2 * d + i] = dh[s, i] * (one - cache[n, d + i]) * (one - n_t * n_t)
            # du, with h_{t-1} from H or, at the first step, from h_0 (two loops:
            # choosing the array in the loop would make a view per row, see copy_row)
            if t == 0:
                for i in range(d):
                    u_t = cache[n, d + i]
                    dA_x[n, d + i] = dh[s, i] * (state0[0, b, i] - cache[n, 2 * d + i]) \
                        * (u_t * (one - u_t))
            else:
                p = n + 1 if reverse else n - 1
                for i in range(d):
                    u_t = cache[n, d + i]
                    dA_x[n, d + i] = dh[s, i] * (H[p, i] - cache[n, 2 * d + i]) \
                        * (u_t * (one - u_t))
            for i in range(d):                      # dr
                r_t = cache[n, i]
                dA_x[n, i] = dA_x[n, 2 * d + i] * cache[n, 3 * d + i] * (r_t * (one - r_t))
            for i in range(d):
                direct[s, i] = dh[s, i] * cache[n, d + i]
            for i in range(2 * d):
                da[s, i] = dA_x[n, i]
            for i in range(d):
                da[s, 2 * d + i] = dA_x[n, 2 * d + i] * cache[n, i]
            copy_row(dA_h, n, da, s)
    db_hn[:] = 0.0
    for n in range(N):
        add_into(db_hn, dA_h[n, 2 * d:])
    for s in range(B):
        copy_into(dstate0[0, order[s]], direct[s])        # dh_0 = dh_1 ⊙ u_1 + W_hᵀ da_1
        add_products(da[s:s + 1], W_h, dstate0[0, order[s]:order[s] + 1])
