"""What a layer does around its cell's recurrence, as kernels: the twin of
``fastrnn.reference.layers`` (read that module for the arguments)."""
import numpy as np

from fastrnn._jit import kernel
from fastrnn.kernels._linalg import (FEW_ROWS, add_into, add_products, add_products_bt,
                                     add_products_t, copy_into, product_transpose,
                                     set_columns_t)


@kernel
def input_projection(X, W_x, W_xT, b_h, A):
    """A[n] = W_x x_n + b_h for every row n; a token id picks a column of W_x.
    W_xT: W_x transposed, or empty (see ``_linalg.product_transpose``)."""
    N, rows = A.shape
    if W_x.shape[0] != rows or b_h.shape[0] != rows or (W_xT.shape[0] != 0 and (
            W_xT.shape[0] != W_x.shape[1] or W_xT.shape[1] != rows)):
        raise ValueError("input_projection: expected W_x (G·d, k), W_xT (k, G·d) or (0, 0), "
                         "b_h (G·d,), A (N, G·d)")
    for n in range(N):
        copy_into(A[n], b_h)
    if X.ndim == 1:
        if X.shape[0] != N:
            raise ValueError("input_projection: expected ids X (N,)")
        # Read the column in place: a few strided loads per step cost less
        # than transposing all of W_x (k columns) on every call. Given W_xT,
        # its row x is that column, contiguous.
        for n in range(N):
            a = A[n]
            x = X[n]
            if W_xT.shape[0] != 0:
                add_into(a, W_xT[x])
            else:
                for i in range(rows):
                    a[i] = a[i] + W_x[i, x]
    else:
        S, width = X.shape[0], X.shape[2]
        if X.shape[1] != N or W_x.shape[1] != S * width:
            raise ValueError("input_projection: expected X (S, N, w) and W_x (G·d, S·w)")
        # S > 1: blocks of W_xᵀ's rows, so the transpose is made even for few rows
        W_xT = product_transpose(W_x, W_xT, N if S == 1 else FEW_ROWS)
        if W_xT.shape[0] == 0:
            add_products_bt(X[0], W_x, A)
            return
        for s in range(S):
            add_products(X[s], W_xT[s * width:(s + 1) * width], A)


@kernel
def add_input_gradient(dA, W_x, dX):
    """dX += ∂L/∂x_n = W_xᵀ da_n for every row, block by block (dX (S, N, w))."""
    S, N, width = dX.shape
    if dA.shape[0] != N or W_x.shape[0] != dA.shape[1] or W_x.shape[1] != S * width:
        raise ValueError("add_input_gradient: expected dA (N, G·d), W_x (G·d, S·w), dX (S, N, w)")
    for s in range(S):
        add_products(dA, np.ascontiguousarray(W_x[:, s * width:(s + 1) * width]), dX[s])


@kernel
def weight_gradients(dA_x, dA_h, X, H, h0, offsets, reverse, dW_x, dW_h, db_h):
    """dW_x = Σ_t da_t x_tᵀ, dW_h = Σ_t da_t h_{t-1}ᵀ, db_h = Σ_t da_t."""
    N, rows = dA_x.shape
    d = H.shape[1]
    B = offsets.shape[0] - 1
    if (dA_h.shape[0] != N or dA_h.shape[1] != rows or H.shape[0] != N or h0.shape[0] != B
            or h0.shape[1] != d or dW_h.shape[0] != rows or dW_h.shape[1] != d
            or db_h.shape[0] != rows or dW_x.shape[0] != rows or offsets[B] != N):
        raise ValueError("weight_gradients: expected dA_x, dA_h (N, G·d), H (N, d), h0 (B, d), "
                         "dW_h (G·d, d), db_h (G·d,), dW_x (G·d, k)")
    dW_h[:] = 0.0
    for b in range(B):                       # h_{t-1}: h0 at the first step of the
        first, end = offsets[b], offsets[b + 1]   # direction of travel, then the row before
        if reverse:
            add_products_t(dA_h[end - 1:end], h0[b:b + 1], dW_h)
            add_products_t(dA_h[first:end - 1], H[first + 1:end], dW_h)
        else:
            add_products_t(dA_h[first:first + 1], h0[b:b + 1], dW_h)
            add_products_t(dA_h[first + 1:end], H[first:end - 1], dW_h)
    db_h[:] = 0.0
    for n in range(N):
        add_into(db_h, dA_x[n])
    dW_x[:] = 0.0
    if X.ndim == 1:                          # x_t one-hot: da_t goes to column x_t
        if X.shape[0] != N:
            raise ValueError("weight_gradients: expected ids X (N,)")
        for n in range(N):
            x, row = X[n], dA_x[n]
            for i in range(rows):
                dW_x[i, x] = dW_x[i, x] + row[i]
    else:
        S, width = X.shape[0], X.shape[2]
        if X.shape[1] != N or dW_x.shape[1] != S * width:
            raise ValueError("weight_gradients: expected X (S, N, w) and dW_x (G·d, S·w)")
        if S == 1:
            add_products_t(dA_x, X[0], dW_x)
        else:
            block = np.empty((rows, width), dtype=dW_x.dtype)
            for s in range(S):
                set_columns_t(dA_x, X[s], dW_x, s * width, block)
