"""The LSTM's recurrence, in plain NumPy, to be read beside the lecture
notes (σ the logistic sigmoid):

    f_t = σ(W_xh_f x_t + W_hh_f h_{t-1} + b_h_f)      forget gate
    i_t = σ(W_xh_i x_t + W_hh_i h_{t-1} + b_h_i)      input gate
    o_t = σ(W_xh_o x_t + W_hh_o h_{t-1} + b_h_o)      output gate
    g_t = tanh(W_xh_g x_t + W_hh_g h_{t-1} + b_h_g)   candidate cell
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

The four gates are stacked in W_x (4d, k), W_h (4d, d) and b_h (4d,) in
the order f, i, o, g. The state is (h, c): ``state0`` is (2, B, d). The
``cache`` (N, 5d) keeps every step's f, i, o, g and c_t. Arguments as in
``fastrnn.reference.rnn`` (read that module first); the kernels
(``fastrnn.kernels.lstm``) have the same functions.
"""
import numpy as np

from fastrnn.reference.sequences import previous_rows, step_rows


def sigmoid(x):
    """σ(x) = 1 / (1 + e^{-x}), written as ½(1 + tanh(x/2)): the same
    function, but nothing in it can overflow for large |x|."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def forward_steps(W_h, W_hT, b_hn, A, offsets, order, running, reverse, state0, H, cache,
                  state_last):
    """h_t and the cache (gates, c_t) for every row."""
    d = W_h.shape[1]
    h, c = state0[0].copy(), state0[1].copy()     # h_{t-1}, c_{t-1} of every sequence
    for t in range(len(running)):
        seqs = order[:running[t]]
        rows = step_rows(offsets, seqs, t, reverse)
        a = A[rows] + h[seqs] @ W_h.T            # pre-activations of f, i, o, g side by side
        f, i, o = sigmoid(a[:, :d]), sigmoid(a[:, d:2 * d]), sigmoid(a[:, 2 * d:3 * d])
        g = np.tanh(a[:, 3 * d:])
        c_t = f * c[seqs] + i * g
        H[rows] = o * np.tanh(c_t)
        cache[rows] = np.hstack([f, i, o, g, c_t])
        h[seqs], c[seqs] = H[rows], c_t
    state_last[0], state_last[1] = h, c


def backward_steps(W_h, b_hn, offsets, order, running, reverse, state0, H, cache, dH,
                   dA_x, dA_h, db_hn, dstate0):
    """Backpropagation through time: ∂L/∂a_t of the four gates for every
    row, and ∂L/∂h_0, ∂L/∂c_0."""
    d = W_h.shape[1]
    F, I, O, G, C = (cache[:, j * d:(j + 1) * d] for j in range(5))
    C_prev = previous_rows(C, state0[1], offsets, reverse)
    # dh_next: ∂L/∂h_t through step t+1 (W_hhᵀ da_{t+1}); dc_next: ∂L/∂c_t
    # through c_{t+1} = f_{t+1} ⊙ c_t + ..., that is dc_{t+1} ⊙ f_{t+1}.
    dh_next, dc_next = np.zeros_like(state0[0]), np.zeros_like(state0[1])
    for t in reversed(range(len(running))):
        seqs = order[:running[t]]
        rows = step_rows(offsets, seqs, t, reverse)
        f, i, o, g = F[rows], I[rows], O[rows], G[rows]
        tanh_c = np.tanh(C[rows])
        dh = dH[rows] + dh_next[seqs]
        # h_t = o_t ⊙ tanh(c_t);  c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        dc = dh * o * (1.0 - tanh_c ** 2) + dc_next[seqs]
        # through σ' = σ(1 - σ) and tanh' = 1 - tanh², stacked f, i, o, g
        dA_x[rows] = np.hstack([dc * C_prev[rows] * (f * (1.0 - f)),
                                dc * g * (i * (1.0 - i)),
                                dh * tanh_c * (o * (1.0 - o)),
                                dc * i * (1.0 - g ** 2)])
        dh_next[seqs] = dA_x[rows] @ W_h
        dc_next[seqs] = dc * f
    dstate0[0], dstate0[1] = dh_next, dc_next    # dh_0 = W_hhᵀ da_1, dc_0 = dc_1 ⊙ f_1
