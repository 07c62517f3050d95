"""What a layer does around its cell's recurrence: the input projection
before it, and after backpropagation through time, the weight gradients
and the gradient sent down to the layer's input. Twin of
``fastrnn.kernels.layers``.

A layer's input ``X`` is the network's input at layer 0: int64 token ids
(N,) (the one-hot x_t of the notes, stored as the index of its 1), or
float vectors as one block (1, N, k). Above layer 0 it is the layer below's
output, one block per direction (D, N, d): x_t = [X[0, t]; X[1, t]], the
blocks side by side.
"""
import numpy as np

from fastrnn.reference.sequences import previous_rows


def input_projection(X, W_x, W_xT, b_h, A):
    """A[n] = W_x x_n + b_h for every row n; a token id picks a column of W_x.
    (W_xT, W_x transposed or empty, is for the kernels: see ``rnn``'s W_hT.)"""
    if X.ndim == 1:
        A[:] = W_x.T[X] + b_h
    else:
        A[:] = np.hstack(X) @ W_x.T + b_h


def add_input_gradient(dA, W_x, dX):
    """dX += ∂L/∂x_n = W_xᵀ da_n for every row, block by block (dX like X, float)."""
    width = dX.shape[2]
    for s in range(dX.shape[0]):
        dX[s] += dA @ W_x[:, s * width:(s + 1) * width]


def weight_gradients(dA_x, dA_h, X, H, h0, offsets, reverse, dW_x, dW_h, db_h):
    """dW_x = Σ_t da_t x_tᵀ, dW_h = Σ_t da_t h_{t-1}ᵀ, db_h = Σ_t da_t.

    ``dA_x`` is ∂L/∂(W_x x_t + b_h) and ``dA_h`` ∂L/∂(W_h h_{t-1}): the same
    array except in a GRU's n block, where W_h h_{t-1} is scaled by r_t."""
    H_prev = previous_rows(H, h0, offsets, reverse)     # h_{t-1}, h0 at each first step
    dW_h[:] = dA_h.T @ H_prev
    db_h[:] = dA_x.sum(axis=0)
    if X.ndim == 1:                              # x_t one-hot: da_t goes to column x_t
        dW_x[:] = 0.0
        np.add.at(dW_x.T, X, dA_x)
    else:
        dW_x[:] = dA_x.T @ np.hstack(X)
