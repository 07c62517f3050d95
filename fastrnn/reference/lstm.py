"""LSTM in plain NumPy, written to be read beside the lecture notes.

    f_t = σ(W_xh_f x_t + W_hh_f h_{t-1} + b_h_f)      forget gate
    i_t = σ(W_xh_i x_t + W_hh_i h_{t-1} + b_h_i)      input gate
    o_t = σ(W_xh_o x_t + W_hh_o h_{t-1} + b_h_o)      output gate
    g_t = tanh(W_xh_g x_t + W_hh_g h_{t-1} + b_h_g)   candidate cell
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

followed by the output layer and loss of the simple RNN
(``fastrnn.reference.rnn``): ŷ_t = softmax(W_Y h_t + b_y),
L = -(1/B) Σ_b Σ_t Σ_c y_{t,c} log ŷ_{t,c}.

The four gates are stacked in ``W_x`` (4d, k), ``W_h`` (4d, d) and ``b_h``
(4d,) in the order f, i, o, g: rows 0:d are f, d:2d i, 2d:3d o, 3d:4d g.

Data layout as in ``fastrnn.reference.rnn`` (read that module first), plus
the cell state: ``c0`` (B, d) initial cell states and ``C`` (N, d), filled
with every c_t. The kernels (``fastrnn.kernels.lstm``) have the same
functions with the same signatures.
"""
import numpy as np

from fastrnn.reference.rnn import cross_entropy, input_projection, output_backward, softmax


def sigmoid(x):
    """σ(x) = 1 / (1 + e^{-x}), written as ½(1 + tanh(x/2)): the same
    function, but nothing in it can overflow for large |x|."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def lstm_forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, c0, H, C, P):
    """Forward pass: fill H with every h_t, C with every c_t and P with
    every ŷ_t."""
    d = W_h.shape[1]
    starts, lengths = offsets[:-1], np.diff(offsets)

    A = np.empty((len(H), 4 * d))
    input_projection(X, W_x, b_h, A)            # W_xh x_t + b_h of all four gates, every step
    h_prev, c_prev = h0.copy(), c0.copy()
    for t in range(lengths.max()):
        running = np.flatnonzero(lengths > t)   # sequences that have a step t
        rows = starts[running] + t
        a_t = h_prev[running] @ W_h.T + A[rows]  # pre-activations of f, i, o, g side by side
        f_t = sigmoid(a_t[:, :d])
        i_t = sigmoid(a_t[:, d:2 * d])
        o_t = sigmoid(a_t[:, 2 * d:3 * d])
        g_t = np.tanh(a_t[:, 3 * d:])
        c_t = f_t * c_prev[running] + i_t * g_t
        h_t = o_t * np.tanh(c_t)
        H[rows], C[rows] = h_t, c_t
        h_prev[running], c_prev[running] = h_t, c_t

    Z = H @ W_y.T + b_y                         # z_t = W_Y h_t + b_y, every step at once
    P[:] = softmax(Z)                           # ŷ_t = softmax(z_t)


def _previous(S, s0, starts):
    """s_{t-1} for every row: the row above, or s0 at a sequence's first step."""
    S_prev = np.empty_like(S)
    S_prev[1:] = S[:-1]
    S_prev[starts] = s0
    return S_prev


def lstm_loss_and_grad(W_x, W_h, b_h, W_y, b_y, X, Y, offsets, h0, c0, H, C, P,
                       dW_x, dW_h, db_h, dW_y, db_y, dh0, dc0):
    """Forward pass, loss (mean over the B sequences of each one's summed
    cross-entropy) and backpropagation through time. Fills H, C, P, every
    gradient, dh0 = ∂L/∂h0 and dc0 = ∂L/∂c0; returns the loss."""
    lstm_forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, c0, H, C, P)
    d = W_h.shape[1]
    starts, lengths = offsets[:-1], np.diff(offsets)
    B = len(starts)
    loss = cross_entropy(P, Y) / B

    # The output layer is the simple RNN's; dH_out = W_Yᵀ dz_t is the part of
    # dh_t that comes from ŷ_t.
    dH_out = np.empty_like(H)
    output_backward(P, Y, H, W_y, B, dW_y, db_y, dH_out)

    # Now that every h_{t-1} is known, the gates of every step at once.
    H_prev, C_prev = _previous(H, h0, starts), _previous(C, c0, starts)
    A = np.empty((len(H), 4 * d))
    input_projection(X, W_x, b_h, A)
    A += H_prev @ W_h.T
    F, I, O = sigmoid(A[:, :d]), sigmoid(A[:, d:2 * d]), sigmoid(A[:, 2 * d:3 * d])
    G = np.tanh(A[:, 3 * d:])
    tanh_C = np.tanh(C)

    # Backward through time. da_next holds da_{t+1} (the four gates'
    # pre-activation gradients) and dc_next the gradient reaching c_t through
    # c_{t+1} = f_{t+1} ⊙ c_t + ..., that is dc_{t+1} ⊙ f_{t+1}; both are 0
    # past a sequence's last step.
    dA = np.empty((len(H), 4 * d))
    da_next = np.zeros((B, 4 * d))
    dc_next = np.zeros_like(c0)
    for t in reversed(range(lengths.max())):
        running = np.flatnonzero(lengths > t)
        rows = starts[running] + t
        f_t, i_t, o_t, g_t = F[rows], I[rows], O[rows], G[rows]
        tanh_c = tanh_C[rows]
        dh_t = dH_out[rows] + da_next[running] @ W_h    # dh_t = W_Yᵀ dz_t + W_hhᵀ da_{t+1}
        # h_t = o_t ⊙ tanh(c_t);  c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        dc_t = dh_t * o_t * (1.0 - tanh_c ** 2) + dc_next[running]
        do_t = dh_t * tanh_c
        df_t = dc_t * C_prev[rows]
        di_t = dc_t * g_t
        dg_t = dc_t * i_t
        # through σ' = σ(1 - σ) and tanh' = 1 - tanh², stacked f, i, o, g
        da_t = np.hstack([df_t * (f_t * (1.0 - f_t)),
                          di_t * (i_t * (1.0 - i_t)),
                          do_t * (o_t * (1.0 - o_t)),
                          dg_t * (1.0 - g_t ** 2)])
        dA[rows] = da_t
        da_next[running] = da_t
        dc_next[running] = dc_t * f_t

    dW_h[:] = dA.T @ H_prev                     # Σ_t da_t h_{t-1}ᵀ
    db_h[:] = dA.sum(axis=0)                    # Σ_t da_t
    if X.ndim == 1:                             # Σ_t da_t x_tᵀ: x_t one-hot adds
        dW_x[:] = 0.0                           # da_t to column x_t
        np.add.at(dW_x.T, X, dA)
    else:
        dW_x[:] = dA.T @ X
    dh0[:] = da_next @ W_h                      # dh_0 = W_hhᵀ da_1
    dc0[:] = dc_next                            # dc_0 = dc_1 ⊙ f_1
    return loss
