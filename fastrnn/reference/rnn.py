"""Simple (Elman) RNN in plain NumPy, written to be read beside the lecture notes.

    a_t = W_H h_{t-1} + W_X x_t + b_h        h_t = tanh(a_t)
    z_t = W_Y h_t + b_y                      ŷ_t = softmax(z_t)
    L   = -(1/B) Σ_b Σ_t Σ_c y_{t,c} log ŷ_{t,c}

Data layout shared with the kernels (``fastrnn.kernels.rnn``), which have the
same functions with the same signatures:

* ``X``: the B sequences packed one after another along the first axis:
  float ``(N, k)`` input vectors, or int64 ``(N,)`` token ids (the one-hot
  x_t of the notes, stored as the index of its 1).
* ``offsets``: int64 ``(B + 1,)``; sequence b is rows ``offsets[b]:offsets[b+1]``.
* ``Y``: targets for every row, int64 ``(N,)`` class ids or float ``(N, m)``
  distributions.
* ``h0``: ``(B, d)`` initial hidden states.
* ``H`` ``(N, d)``, ``P`` ``(N, m)`` and the gradients are outputs the caller
  allocates; these functions fill them.

Only the recurrence is sequential, so the input projection W_X x_t and the
output layer are computed for all steps of all sequences at once, and the
recurrence for all sequences that are still running at step t at once.
"""
import numpy as np


def softmax(Z):
    """Row-wise softmax, stable: subtracting the row maximum changes nothing
    mathematically but keeps exp from overflowing."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def input_projection(X, W_x, b_h, A):
    """A[n] = W_X x_n + b_h for every row; a token id picks a column of W_X."""
    if X.ndim == 1:
        A[:] = W_x.T[X] + b_h
    else:
        A[:] = X @ W_x.T + b_h


def cross_entropy(P, Y):
    """-Σ_t Σ_c y_{t,c} log ŷ_{t,c} summed over all rows."""
    if Y.ndim == 1:
        return -np.log(P[np.arange(len(Y)), Y]).sum()
    # 0 · log 0 counts as 0: skip the classes with no target mass, where
    # ŷ may have underflowed to 0 and the product would be nan.
    has_mass = Y > 0
    return -(Y[has_mass] * np.log(P[has_mass])).sum()


def rnn_forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, H, P):
    """Forward pass: fill H with every h_t and P with every ŷ_t."""
    starts, lengths = offsets[:-1], np.diff(offsets)

    A = np.empty_like(H)
    input_projection(X, W_x, b_h, A)            # W_X x_t + b_h, every step at once
    h_prev = h0.copy()
    for t in range(lengths.max()):
        running = np.flatnonzero(lengths > t)   # sequences that have a step t
        rows = starts[running] + t
        a_t = h_prev[running] @ W_h.T + A[rows]  # a_t = W_H h_{t-1} + W_X x_t + b_h
        H[rows] = np.tanh(a_t)                  # h_t = tanh(a_t)
        h_prev[running] = H[rows]

    Z = H @ W_y.T + b_y                         # z_t = W_Y h_t + b_y, every step at once
    P[:] = softmax(Z)                           # ŷ_t = softmax(z_t)


def output_backward(P, Y, H, W_y, B, dW_y, db_y, dH):
    """The output layer's share of BPTT, every step at once (both cells):
    fills dW_y, db_y and dH with W_Yᵀ dz_t for every row."""
    dZ = P.copy()                               # dz_t = ŷ_t - y_t, with the 1/B of the mean
    if Y.ndim == 1:
        dZ[np.arange(len(Y)), Y] -= 1.0
    else:
        dZ -= Y
    dZ /= B
    dW_y[:] = dZ.T @ H                          # Σ_t dz_t h_tᵀ
    db_y[:] = dZ.sum(axis=0)                    # Σ_t dz_t
    dH[:] = dZ @ W_y                            # W_Yᵀ dz_t


def rnn_loss_and_grad(W_x, W_h, b_h, W_y, b_y, X, Y, offsets, h0, H, P,
                      dW_x, dW_h, db_h, dW_y, db_y, dh0):
    """Forward pass, loss (mean over the B sequences of each one's summed
    cross-entropy) and backpropagation through time. Fills H, P, every
    gradient and dh0 = ∂L/∂h0; returns the loss."""
    rnn_forward(W_x, W_h, b_h, W_y, b_y, X, offsets, h0, H, P)
    starts, lengths = offsets[:-1], np.diff(offsets)
    B = len(starts)
    loss = cross_entropy(P, Y) / B

    dH_out = np.empty_like(H)
    output_backward(P, Y, H, W_y, B, dW_y, db_y, dH_out)   # W_Yᵀ dz_t, every step at once

    # Backward through time: da_next holds da_{t+1} of every sequence, which
    # is 0 past a sequence's last step (δ_{T+1} = 0).
    dA = np.empty_like(H)
    da_next = np.zeros_like(h0)
    for t in reversed(range(lengths.max())):
        running = np.flatnonzero(lengths > t)
        rows = starts[running] + t
        dh_t = dH_out[rows] + da_next[running] @ W_h   # dh_t = W_Yᵀ dz_t + W_Hᵀ da_{t+1}
        da_t = dh_t * (1.0 - H[rows] ** 2)              # da_t = dh_t ⊙ (1 - h_t²)
        dA[rows] = da_t
        da_next[running] = da_t

    # h_{t-1} for every row: the row above, or h0 at a sequence's first step.
    H_prev = np.empty_like(H)
    H_prev[1:] = H[:-1]
    H_prev[starts] = h0
    dW_h[:] = dA.T @ H_prev                     # Σ_t da_t h_{t-1}ᵀ
    db_h[:] = dA.sum(axis=0)                    # Σ_t da_t
    if X.ndim == 1:                             # Σ_t da_t x_tᵀ: x_t one-hot adds
        dW_x[:] = 0.0                           # da_t to column x_t
        np.add.at(dW_x.T, X, dA)
    else:
        dW_x[:] = dA.T @ X
    dh0[:] = da_next @ W_h                      # dh_0 = W_Hᵀ da_1
    return loss
