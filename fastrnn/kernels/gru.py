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
from fastrnn.kernels._linalg import (add_into, add_products, add_products_wt, copy_into,
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
            a, kept, h_t, hr_s, h_s = A[n], cache[n], H[n], hr[s], h[s]
            # One short loop per operation, so each vectorises (see lstm).
            for i in range(2 * d):                  # r_t, u_t
                kept[i] = sigmoid(a[i] + hr_s[i])
            for i in range(d):                      # W_hn h_{t-1} + b_hn
                kept[3 * d + i] = hr_s[2 * d + i] + b_hn[i]
            for i in range(d):                      # n_t
                kept[2 * d + i] = tanh(a[2 * d + i] + kept[i] * kept[3 * d + i])
            for i in range(d):                      # h_t = (1 - u_t) n_t + u_t h_{t-1}
                h_t[i] = (one - kept[d + i]) * kept[2 * d + i] + kept[d + i] * h_s[i]
            copy_into(h[s], h_t)
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
            copy_into(dh[s], dH[step_row(offsets, order[s], t, reverse)])
            add_into(dh[s], direct[s])
        add_products(da[:n_run], W_h, dh[:n_run])
        for s in range(n_run):
            b = order[s]
            n = step_row(offsets, b, t, reverse)
            kept, dax = cache[n], dA_x[n]
            if t == 0:
                h_prev = state0[0, b]
            else:
                h_prev = H[n + 1 if reverse else n - 1]
            dh_s, da_s, direct_s = dh[s], da[s], direct[s]
            # h_t = (1 - u_t) ⊙ n_t + u_t ⊙ h_{t-1}, then through tanh' and σ'
            for i in range(d):                      # dn
                n_t = kept[2 * d + i]
                dax[2 * d + i] = dh_s[i] * (one - kept[d + i]) * (one - n_t * n_t)
            for i in range(d):                      # du
                u_t = kept[d + i]
                dax[d + i] = dh_s[i] * (h_prev[i] - kept[2 * d + i]) * (u_t * (one - u_t))
            for i in range(d):                      # dr
                r_t = kept[i]
                dax[i] = dax[2 * d + i] * kept[3 * d + i] * (r_t * (one - r_t))
            for i in range(d):
                direct_s[i] = dh_s[i] * kept[d + i]
            copy_into(da_s[:2 * d], dax[:2 * d])
            for i in range(d):
                da_s[2 * d + i] = dax[2 * d + i] * kept[i]
            copy_into(dA_h[n], da[s])
    db_hn[:] = 0.0
    for n in range(N):
        add_into(db_hn, dA_h[n, 2 * d:])
    for s in range(B):
        copy_into(dstate0[0, order[s]], direct[s])        # dh_0 = dh_1 ⊙ u_1 + W_hᵀ da_1
        add_products(da[s:s + 1], W_h, dstate0[0, order[s]:order[s] + 1])
