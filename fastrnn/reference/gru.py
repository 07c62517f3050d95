"""The GRU's recurrence in plain NumPy, in PyTorch's convention
(σ the logistic sigmoid; PyTorch calls u_t z_t):

    r_t = σ(W_xr x_t + W_hr h_{t-1} + b_r)                 reset gate
    u_t = σ(W_xu x_t + W_hu h_{t-1} + b_u)                 update gate
    n_t = tanh(W_xn x_t + b_xn + r_t ⊙ (W_hn h_{t-1} + b_hn))   candidate
    h_t = (1 - u_t) ⊙ n_t + u_t ⊙ h_{t-1}

The gates are stacked in W_x (3d, k), W_h (3d, d) and b_h (3d,) in the
order r, u, n (b_h's n block is b_xn). ``b_hn`` (d,) sits inside r_t ⊙ (...)
and so cannot be folded into b_h. The ``cache`` (N, 4d) keeps every step's
r, u, n and W_hn h_{t-1} + b_hn. Arguments as in ``fastrnn.reference.rnn``
(read that module first); the kernels (``fastrnn.kernels.gru``) have the
same functions.

Because of r_t ⊙ (...), the gradient of W_h h_{t-1} (``dA_h``) differs from
that of the input projection (``dA_x``) in the n block: dA_h's is dA_x's
times r_t, and it is also the gradient of b_hn.
"""
import numpy as np

from fastrnn.reference.lstm import sigmoid
from fastrnn.reference.sequences import previous_rows, step_rows


def forward_steps(W_h, W_hT, b_hn, A, offsets, order, running, reverse, state0, H, cache,
                  state_last):
    """h_t and the cache (gates, W_hn h_{t-1} + b_hn) for every row."""
    d = W_h.shape[1]
    h = state0[0].copy()                          # h_{t-1} of every sequence
    for t in range(len(running)):
        seqs = order[:running[t]]
        rows = step_rows(offsets, seqs, t, reverse)
        a, hr = A[rows], h[seqs] @ W_h.T          # the input's and the state's parts, r, u, n
        r = sigmoid(a[:, :d] + hr[:, :d])
        u = sigmoid(a[:, d:2 * d] + hr[:, d:2 * d])
        hn = hr[:, 2 * d:] + b_hn
        n = np.tanh(a[:, 2 * d:] + r * hn)
        H[rows] = (1.0 - u) * n + u * h[seqs]
        cache[rows] = np.hstack([r, u, n, hn])
        h[seqs] = H[rows]
    state_last[0] = h


def backward_steps(W_h, b_hn, offsets, order, running, reverse, state0, H, cache, dH,
                   dA_x, dA_h, db_hn, dstate0):
    """Backpropagation through time: the gradients of the input projection
    (dA_x) and of W_h h_{t-1} (dA_h) for every row, ∂L/∂b_hn and ∂L/∂h_0."""
    d = W_h.shape[1]
    R, U, N_, HN = (cache[:, j * d:(j + 1) * d] for j in range(4))
    H_prev = previous_rows(H, state0[0], offsets, reverse)
    dh_next = np.zeros_like(state0[0])           # ∂L/∂h_t through step t+1
    for t in reversed(range(len(running))):
        seqs = order[:running[t]]
        rows = step_rows(offsets, seqs, t, reverse)
        r, u, n, hn = R[rows], U[rows], N_[rows], HN[rows]
        dh = dH[rows] + dh_next[seqs]
        # h_t = (1 - u_t) ⊙ n_t + u_t ⊙ h_{t-1}, then through tanh' and σ'
        dn = dh * (1.0 - u) * (1.0 - n ** 2)
        du = dh * (H_prev[rows] - n) * (u * (1.0 - u))
        dr = dn * hn * (r * (1.0 - r))
        dA_x[rows] = np.hstack([dr, du, dn])
        dA_h[rows] = np.hstack([dr, du, dn * r])
        dh_next[seqs] = dh * u + dA_h[rows] @ W_h
    db_hn[:] = dA_h[:, 2 * d:].sum(axis=0)
    dstate0[0] = dh_next
