"""The matrix products the kernels are built from, as explicit loops.

Written so that LLVM vectorises them without reassociating any sum (no
fastmath): the innermost loop runs over contiguous output rows,
``out[i] = out[i] + a0*b0[i] + ... + a7*b7[i]``, so each out[i] is its own
accumulator and every sum is taken in the order the source gives, the same
order for every row. Eight terms per pass mean an output row is loaded and
stored once per eight products; several output rows per pass share each
loaded b_k[i]: two in float64, four in float32. (Measured on this project's
machines: two rows about 1.5x the single-row, four-term form; four rows
1.4-1.6x two in float32, whose vectors hold twice the numbers, and 0.85-0.9x
in float64.) How many rows share a pass changes no sum: the results are the
same bit for bit.
"""
import numba
import numpy as np
from numba import types

from fastrnn._jit import kernel, load_first


@kernel(inline=True)
def _eight(a, k):
    """a[k], ..., a[k+7] as a tuple: the coefficients of one pass, loaded once."""
    return a[k], a[k + 1], a[k + 2], a[k + 3], a[k + 4], a[k + 5], a[k + 6], a[k + 7]


@kernel(inline=True)
def _plus_8_terms(o, a, x):
    """o + a_0 x_0 + ... + a_7 x_7, added in this order: the one sum every
    pass of every row takes, so that all paths give the same bits."""
    return (o + a[0] * x[0] + a[1] * x[1] + a[2] * x[2] + a[3] * x[3]
            + a[4] * x[4] + a[5] * x[5] + a[6] * x[6] + a[7] * x[7])


@kernel(inline=True)
def _add_8_terms(A, r, k, b0, b1, b2, b3, b4, b5, b6, b7, o0, o1):
    """o_j += Σ_i A[r+j, k+i] b_i, i = 0..7, in order, for j = 0, 1 (o_j: row
    r+j of the output)."""
    a, c = _eight(A[r], k), _eight(A[r + 1], k)
    for i in range(o0.shape[0]):
        x = (b0[i], b1[i], b2[i], b3[i], b4[i], b5[i], b6[i], b7[i])
        o0[i] = _plus_8_terms(o0[i], a, x)
        o1[i] = _plus_8_terms(o1[i], c, x)


@kernel(inline=True)
def _add_8_terms_4_rows(A, r, k, b0, b1, b2, b3, b4, b5, b6, b7, o0, o1, o2, o3):
    """The same for j = 0..3."""
    a, c, e, g = _eight(A[r], k), _eight(A[r + 1], k), _eight(A[r + 2], k), _eight(A[r + 3], k)
    for i in range(o0.shape[0]):
        x = (b0[i], b1[i], b2[i], b3[i], b4[i], b5[i], b6[i], b7[i])
        o0[i] = _plus_8_terms(o0[i], a, x)
        o1[i] = _plus_8_terms(o1[i], c, x)
        o2[i] = _plus_8_terms(o2[i], e, x)
        o3[i] = _plus_8_terms(o3[i], g, x)


@kernel
def add_products(A, B, Out):
    """Out += A @ B, for A (R, K), B (K, M), Out (R, M)."""
    R, K = A.shape
    if B.shape[0] != K or Out.shape[0] != R or Out.shape[1] != B.shape[1]:
        raise ValueError("add_products: expected A (R, K), B (K, M) and Out (R, M)")
    K8 = K - K % 8
    four = Out.itemsize == 4                     # float32: four rows a pass (see above)
    R4 = R - R % 4 if four else 0
    for k in range(0, K8, 8):
        b0, b1, b2, b3 = B[k], B[k + 1], B[k + 2], B[k + 3]
        b4, b5, b6, b7 = B[k + 4], B[k + 5], B[k + 6], B[k + 7]
        if four:
            # range(0, R - 3, 4), not range(0, R4, 4): with the latter, LLVM
            # left the inner loop scalar (measured 9x slower)
            for r in range(0, R - 3, 4):
                _add_8_terms_4_rows(A, r, k, b0, b1, b2, b3, b4, b5, b6, b7,
                                    Out[r], Out[r + 1], Out[r + 2], Out[r + 3])
        for r in range(R4, R - 1, 2):
            _add_8_terms(A, r, k, b0, b1, b2, b3, b4, b5, b6, b7, Out[r], Out[r + 1])
        if R % 2:
            a, o0 = _eight(A[R - 1], k), Out[R - 1]
            for i in range(o0.shape[0]):
                x = (b0[i], b1[i], b2[i], b3[i], b4[i], b5[i], b6[i], b7[i])
                o0[i] = _plus_8_terms(o0[i], a, x)
    for k in range(K8, K):
        b0 = B[k]
        for r in range(R):
            a0 = A[r, k]
            out = Out[r]
            for i in range(out.shape[0]):
                out[i] = out[i] + a0 * b0[i]


@kernel
def add_products_bt(A, B, Out):
    """Out += A @ Bᵀ, for A (R, K), B (M, K), Out (R, M), with B as it is
    stored: for a few rows of A, cheaper than transposing B (a copy of all of
    B) to call :func:`add_products`. Every sum is taken in the same order,
    Out first and then k = 0, 1, ..., so the results are the same bit for bit.
    Eight outputs at a time, each its own accumulator."""
    R, K = A.shape
    M = B.shape[0]
    if B.shape[1] != K or Out.shape[0] != R or Out.shape[1] != M:
        raise ValueError("add_products_bt: expected A (R, K), B (M, K) and Out (R, M)")
    M8 = M - M % 8
    for r in range(R):
        a, out = A[r], Out[r]
        for i in range(0, M8, 8):
            b0, b1, b2, b3 = B[i], B[i + 1], B[i + 2], B[i + 3]
            b4, b5, b6, b7 = B[i + 4], B[i + 5], B[i + 6], B[i + 7]
            s0, s1, s2, s3 = out[i], out[i + 1], out[i + 2], out[i + 3]
            s4, s5, s6, s7 = out[i + 4], out[i + 5], out[i + 6], out[i + 7]
            for k in range(K):
                x = a[k]
                s0 = s0 + x * b0[k]
                s1 = s1 + x * b1[k]
                s2 = s2 + x * b2[k]
                s3 = s3 + x * b3[k]
                s4 = s4 + x * b4[k]
                s5 = s5 + x * b5[k]
                s6 = s6 + x * b6[k]
                s7 = s7 + x * b7[k]
            out[i], out[i + 1], out[i + 2], out[i + 3] = s0, s1, s2, s3
            out[i + 4], out[i + 5], out[i + 6], out[i + 7] = s4, s5, s6, s7
        for i in range(M8, M):
            b0 = B[i]
            s0 = out[i]
            for k in range(K):
                s0 = s0 + a[k] * b0[k]
            out[i] = s0


# Below this many rows (steps of all sequences), a kernel multiplies by a
# weight matrix as it is stored (add_products_bt) instead of transposing it
# first: one step of streaming inference would otherwise copy every weight.
FEW_ROWS = 4


@kernel(inline=True)
def product_transpose(W, WT, n_rows):
    """What a kernel multiplies by Wᵀ with, for products of ``n_rows`` rows
    in all: ``WT`` when the caller gives it (W transposed, C-contiguous: a
    Stream keeps its weights so), else a transposed copy of W; or, for few
    rows, an empty (0, 0) array: then :func:`add_products_wt` reads W as it
    is stored. Every way gives the same bits."""
    if WT.shape[0] != 0:
        if WT.shape[0] != W.shape[1] or WT.shape[1] != W.shape[0]:
            raise ValueError("product_transpose: expected WT (cols, rows) of W (rows, cols), "
                             "or (0, 0)")
        return WT
    if n_rows < FEW_ROWS:
        return WT
    return np.ascontiguousarray(W.T)


@kernel(inline=True)
def add_products_wt(A, W, WT, Out):
    """Out += A @ Wᵀ: with WT from :func:`product_transpose` (add_products), or
    with W as it is stored when WT is empty (add_products_bt)."""
    if WT.shape[0] != 0:
        add_products(A, WT, Out)
    else:
        add_products_bt(A, W, Out)


@kernel
def add_products_t(A, B, Out):
    """Out += Aᵀ @ B, for A (N, R), B (N, M), Out (R, M): Σ_n a_n b_nᵀ, the
    weight gradients' sum over steps, taken eight steps at a time in order.
    Aᵀ is read in place, as a strided view (no copy: this runs inside loops
    over time)."""
    add_products(A.T, B, Out)


@kernel
def set_columns_t(A, B, Out, first, scratch):
    """Out[:, first:first + M] = Aᵀ @ B for A (N, R), B (N, M), with scratch
    (R, M): the products accumulate into contiguous rows only, and a block of
    Out's columns is not contiguous (one input slot's or one direction's
    columns of a weight gradient)."""
    scratch[:] = 0.0
    add_products_t(A, B, scratch)
    M = scratch.shape[1]
    for i in range(scratch.shape[0]):
        copy_into(Out[i, first:first + M], scratch[i])


# Array assignments (dst[:] = src) check that the shapes broadcast and
# format an error message if not; that error path is a large piece of code
# to compile into every kernel. These loops rely on the kernels' shape
# contracts instead.
@kernel(inline=True)
def copy_into(dst, src):
    """dst[i] = src[i] for 1-D arrays of dst's length."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@kernel(inline=True)
def add_into(dst, src):
    """dst[i] += src[i] for 1-D arrays of dst's length."""
    for i in range(dst.shape[0]):
        dst[i] += src[i]


@kernel(inline=True)
def multiply_into(dst, src):
    """dst[i] *= src[i] for 1-D arrays of dst's length."""
    for i in range(dst.shape[0]):
        dst[i] *= src[i]


def load_products(dtype, gradients):
    """Load the products' machine code before the kernels that call them
    (see ``fastrnn._jit.load_first``): in the types the kernels call them
    with, callees before their callers. ``gradients``: also those that only
    backpropagation uses."""
    load_first((dtype, gradients), lambda: product_overloads(dtype, gradients))


def product_overloads(dtype, gradients):
    """[(kernel, argument types)], callees first."""
    scalar = numba.from_dtype(np.dtype(dtype))
    C, F = types.Array(scalar, 2, "C"), types.Array(scalar, 2, "F")    # F: Aᵀ in add_products_t
    overloads = [(add_products, (C, C, C)), (add_products_bt, (C, C, C))]
    if gradients:
        overloads += [(add_products, (F, C, C)), (add_products_t, (C, C, C)),
                      (set_columns_t, (C, C, C, types.int64, C))]
    return overloads
