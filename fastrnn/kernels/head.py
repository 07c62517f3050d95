"""The output layer and the loss as kernels: the twin of
``fastrnn.reference.head`` (read that module for the formulas)."""
import math

import numpy as np

from fastrnn._codes import CROSS_ENTROPY
from fastrnn._jit import kernel
from fastrnn.kernels._linalg import (FEW_ROWS, add_into, add_products, add_products_bt,
                                     add_products_t, copy_into, product_transpose,
                                     set_columns_t)
from fastrnn.kernels._math import exp_nonpositive


@kernel
def _check_head(H, offsets, last_step, n_rows, width):
    D, N, d = H.shape
    B = offsets.shape[0] - 1
    if offsets[B] != N or n_rows != (B if last_step else N) or width != D * d:
        raise ValueError("head: expected H (D, N, d), offsets (B + 1,) ending at N, and a row "
                         "per output: (B, m) at the last step, (N, m) at every step")


@kernel
def _last_features(H, offsets):
    """[h_fwd at the last row; h_rev at the first row] of every sequence (B, D·d)."""
    D, N, d = H.shape
    B = offsets.shape[0] - 1
    F = np.empty((B, D * d), dtype=H.dtype)
    for b in range(B):
        copy_into(F[b, :d], H[0, offsets[b + 1] - 1])
        if D == 2:
            copy_into(F[b, d:], H[1, offsets[b]])
    return F


@kernel
def output_layer(H, W_y, W_yT, b_y, offsets, last_step, Z):
    """z = W_Y h + b_y for every output row. W_yT: W_y transposed, or empty
    (see ``_linalg.product_transpose``)."""
    D, N, d = H.shape
    _check_head(H, offsets, last_step, Z.shape[0], W_y.shape[1])
    if W_y.shape[0] != Z.shape[1] or b_y.shape[0] != Z.shape[1]:
        raise ValueError("output_layer: expected W_y (m, D·d), b_y (m,), Z (rows, m)")
    for r in range(Z.shape[0]):
        copy_into(Z[r], b_y)
    # D = 2: column blocks of W_yᵀ, so the transpose is made even for few rows
    W_yT = product_transpose(W_y, W_yT, Z.shape[0] if D == 1 else FEW_ROWS)
    if W_yT.shape[0] == 0:
        add_products_bt(_last_features(H, offsets) if last_step else H[0], W_y, Z)
        return
    if last_step:
        add_products(_last_features(H, offsets), W_yT, Z)
    else:
        for j in range(D):
            add_products(H[j], W_yT[j * d:(j + 1) * d], Z)


@kernel
def row_factors(scale, step_weight, offsets, last_step, factors):
    """The weight of each output row's loss: scale[b] times step_weight[row]
    unless step_weight is empty."""
    B = offsets.shape[0] - 1
    if scale.shape[0] != B or factors.shape[0] != (B if last_step else offsets[B]) \
            or (step_weight.shape[0] != 0 and step_weight.shape[0] != offsets[B]):
        raise ValueError("row_factors: expected scale (B,), step_weight (N,) or (0,), "
                         "factors (rows,)")
    if last_step:
        copy_into(factors, scale)
        return
    for b in range(B):
        for n in range(offsets[b], offsets[b + 1]):
            factors[n] = scale[b]
            if step_weight.shape[0]:
                factors[n] *= step_weight[n]


@kernel(inline=True)
def _logsumexp(z, e):
    """log Σ_j e^{z_j}, stably; ``e``: scratch of z's length. The exponentials
    go to ``e`` first and are summed after: in one loop, the sum (taken in
    order, not reassociated) kept LLVM from vectorising them (measured:
    softmax of 800 rows of 45, 329 against 169 µs)."""
    z_max = z.max()
    for c in range(z.shape[0]):
        e[c] = exp_nonpositive(z[c] - z_max)
    total = 0.0
    for c in range(z.shape[0]):
        total += e[c]
    return z_max + math.log(total)


@kernel
def probabilities(Z, loss):
    """ŷ in place: softmax(z) of every row, or z itself."""
    if loss != CROSS_ENTROPY:
        return
    e = np.empty(Z.shape[1], dtype=Z.dtype)
    for r in range(Z.shape[0]):
        z = Z[r]
        lse = _logsumexp(z, e)
        for c in range(z.shape[0]):
            z[c] = exp_nonpositive(z[c] - lse)


@kernel
def loss_and_delta(Z, Y, factors, loss):
    """Σ_rows factor · ℓ(z, y); Z becomes ∂L/∂z = factor (ŷ - y)."""
    R, m = Z.shape
    if factors.shape[0] != R or Y.shape[0] != R or (Y.ndim == 2 and Y.shape[1] != m) \
            or (Y.ndim == 1 and loss != CROSS_ENTROPY):
        raise ValueError("loss_and_delta: expected Z (R, m), class ids Y (R,) for the "
                         "cross-entropy or Y (R, m), factors (R,)")
    total = 0.0                                  # float64 whatever the dtype
    e = np.empty(m, dtype=Z.dtype)
    for r in range(R):
        z = Z[r]
        if Y.ndim == 1:                          # class ids: the cross-entropy
            y = Y[r]
            if y < 0 or y >= m:
                raise ValueError("loss_and_delta: a class id out of range")
            lse = _logsumexp(z, e)
            row_loss = lse - z[y]
            for c in range(m):
                z[c] = exp_nonpositive(z[c] - lse)
            z[y] -= 1.0
        elif loss == CROSS_ENTROPY:              # target distributions
            lse = _logsumexp(z, e)
            mass = 0.0
            dot = 0.0
            for c in range(m):
                mass += Y[r, c]
                dot += Y[r, c] * z[c]
            row_loss = lse * mass - dot
            for c in range(m):
                z[c] = exp_nonpositive(z[c] - lse) * mass - Y[r, c]
        else:                                    # squared error
            row_loss = 0.0
            for c in range(m):
                z[c] -= Y[r, c]
                row_loss += z[c] * z[c]
            row_loss *= 0.5
        total += factors[r] * row_loss
        z *= factors[r]
    return total


@kernel
def output_backward(dZ, H, W_y, offsets, last_step, dW_y, db_y, dH):
    """dW_Y = Σ dz hᵀ, db_y = Σ dz; dH (D, N, d) is set to W_Yᵀ dz at the
    rows that have an output (0 at the others)."""
    D, N, d = H.shape
    R, m = dZ.shape
    _check_head(H, offsets, last_step, R, W_y.shape[1])
    if W_y.shape[0] != m or dW_y.shape[0] != m or dW_y.shape[1] != D * d \
            or db_y.shape[0] != m or dH.shape != H.shape:
        raise ValueError("output_backward: expected W_y and dW_y (m, D·d), db_y (m,), dH like H")
    db_y[:] = 0.0
    for r in range(R):
        add_into(db_y, dZ[r])
    dW_y[:] = 0.0
    dH[:] = 0.0
    if last_step:
        add_products_t(dZ, _last_features(H, offsets), dW_y)
        dF = np.zeros((R, D * d), dtype=dZ.dtype)
        add_products(dZ, W_y, dF)
        for b in range(R):
            copy_into(dH[0, offsets[b + 1] - 1], dF[b, :d])
            if D == 2:
                copy_into(dH[1, offsets[b]], dF[b, d:])
    else:
        block = np.empty((m, d), dtype=dW_y.dtype)
        for j in range(D):
            set_columns_t(dZ, H[j], dW_y, j * d, block)
            add_products(dZ, np.ascontiguousarray(W_y[:, j * d:(j + 1) * d]), dH[j])
