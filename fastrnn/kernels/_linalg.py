"""The matrix products the kernels are built from, as explicit loops.

No fastmath, so no sum is reassociated: each number of Out is its own sum,
Out + a_0 b_0 + a_1 b_1 + ..., taken in the order of k, the same in every
row and in both ways of computing Out += A @ B below. Whichever runs, the
results are the same bit for bit.

float64, loops that LLVM's loop vectoriser handles: the innermost loop runs
over contiguous output rows, ``out[i] = out[i] + a0*b0[i] + ... + a7*b7[i]``,
so an output row is loaded and stored once per eight products, and two
output rows per pass share each loaded b_k[i] (measured: about 1.5x the
single-row, four-term form). float32 runs these loops too where the tiles
do not (below), with four rows a pass (measured: 1.4-1.6x two rows in
float32, whose vectors hold twice the numbers; 0.85-0.9x in float64).

float32, register tiles: a block of Out (four rows of 32) stays in vector
registers for 256 steps of k, written as tuples that LLVM's SLP vectoriser
packs (it is off in Numba; these kernels turn it on, ``fastrnn._jit``).
Measured on this project's machines (one core, float32): 1.1-2x the loops
on most products of the benchmark cases, as fast for one to three rows
(those rows run the loops), 0.85x for rows 4 KB apart (those products run
the loops, see ALIASING_STRIDE); a whole ``loss_and_grad`` 1.1-1.17x for
the ``batch`` LSTM, 1.15-1.22x for the ``batch`` GRU, 0.96-1.07x for
``wide`` and ``long``.

In float64, where a vector holds half as many numbers, the tiles measured
0.9-1.5x the loops and 1.0-1.15x whole training steps, but they made a new
process's first fit (compiling, empty cache) take 27 s instead of 18: the
products' code is linked into every kernel that calls them, and LLVM
optimises it again in each. The default precision keeps the loops;
float32's first fit takes 24 s instead of 19.5.
"""
import numba
import numpy as np
from numba import types

from fastrnn._jit import by_precision, kernel, load_first


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


@kernel(inline=True)
def _rows_by_loops(A, B, Out, first):
    """Out[first:] += A[first:] @ B as loops over output rows, eight terms a
    pass, two rows a pass (four in float32, module docstring)."""
    R, K = A.shape
    K8 = K - K % 8
    four = Out.itemsize == 4                     # float32: four rows a pass (see above)
    pairs = R - (R - first) % 4 if four else first
    for k in range(0, K8, 8):
        b0, b1, b2, b3 = B[k], B[k + 1], B[k + 2], B[k + 3]
        b4, b5, b6, b7 = B[k + 4], B[k + 5], B[k + 6], B[k + 7]
        if four:
            # range(first, R - 3, 4), not range(first, pairs, 4): with the
            # latter, LLVM left the inner loop scalar (measured 9x slower)
            for r in range(first, R - 3, 4):
                _add_8_terms_4_rows(A, r, k, b0, b1, b2, b3, b4, b5, b6, b7,
                                    Out[r], Out[r + 1], Out[r + 2], Out[r + 3])
        for r in range(pairs, R - 1, 2):
            _add_8_terms(A, r, k, b0, b1, b2, b3, b4, b5, b6, b7, Out[r], Out[r + 1])
        if (R - first) % 2:
            a, o0 = _eight(A[R - 1], k), Out[R - 1]
            for i in range(o0.shape[0]):
                x = (b0[i], b1[i], b2[i], b3[i], b4[i], b5[i], b6[i], b7[i])
                o0[i] = _plus_8_terms(o0[i], a, x)
    for k in range(K8, K):
        b0 = B[k]
        for r in range(first, R):
            a0 = A[r, k]
            out = Out[r]
            for i in range(out.shape[0]):
                out[i] = out[i] + a0 * b0[i]


@kernel
def _add_products_loops(A, B, Out):
    """Out += A @ B (shapes checked by :func:`add_products`) by loops."""
    _rows_by_loops(A, B, Out, 0)


# The register tiles. A tile keeps a block of Out (up to 4 rows of 32) in
# tuples of 16 or 8 numbers for all its steps of k, so each number of Out
# is loaded and stored once per K_BLOCK steps, and each b_k loaded once per
# tile's rows; with SLP on, a tuple is one or two vector registers. Every
# number of Out is still its own sum, taken as Out + a_0 b_0 + a_1 b_1 + ...
# in order: the same bits as the loops. The tuple helpers are not inlined by
# Numba (LLVM inlines them): Numba's inlining types a helper again at every
# call, which made the tiles compile in 5 s instead of 1.5.
@kernel
def _load16(o):
    """o[0], ..., o[15] as a tuple."""
    return (o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7],
            o[8], o[9], o[10], o[11], o[12], o[13], o[14], o[15])


@kernel
def _store16(o, c):
    """o[0], ..., o[15] = c."""
    o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7] = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    o[8], o[9], o[10], o[11] = c[8], c[9], c[10], c[11]
    o[12], o[13], o[14], o[15] = c[12], c[13], c[14], c[15]


@kernel
def _axpy16(c, a, b):
    """c + a b[0:16], each lane its own sum."""
    return (c[0] + a * b[0], c[1] + a * b[1], c[2] + a * b[2], c[3] + a * b[3],
            c[4] + a * b[4], c[5] + a * b[5], c[6] + a * b[6], c[7] + a * b[7],
            c[8] + a * b[8], c[9] + a * b[9], c[10] + a * b[10], c[11] + a * b[11],
            c[12] + a * b[12], c[13] + a * b[13], c[14] + a * b[14], c[15] + a * b[15])


@kernel
def _load8(o):
    """o[0], ..., o[7] as a tuple."""
    return (o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7])


@kernel
def _store8_from(o, c, first):
    """o[j] = c[j] for j = first, ..., 7: a tile at the right edge of Out
    overlaps the one before it, whose columns it must not store again."""
    for j in range(first, 8):
        o[j] = c[j]


@kernel
def _axpy8(c, a, b):
    """c + a b[0:8], each lane its own sum."""
    return (c[0] + a * b[0], c[1] + a * b[1], c[2] + a * b[2], c[3] + a * b[3],
            c[4] + a * b[4], c[5] + a * b[5], c[6] + a * b[6], c[7] + a * b[7])


@kernel(inline=True)
def _tile_4x32(A, B, Out, r, i, k0, k1):
    """Out[r:r+4, i:i+32] += A[r:r+4, k0:k1] @ B[k0:k1, i:i+32]."""
    o0, o1 = Out[r, i:i + 32], Out[r + 1, i:i + 32]
    o2, o3 = Out[r + 2, i:i + 32], Out[r + 3, i:i + 32]
    c00, c01, c10, c11 = _load16(o0[:16]), _load16(o0[16:]), _load16(o1[:16]), _load16(o1[16:])
    c20, c21, c30, c31 = _load16(o2[:16]), _load16(o2[16:]), _load16(o3[:16]), _load16(o3[16:])
    for k in range(k0, k1):
        b = B[k, i:i + 32]
        lo, hi = b[:16], b[16:]
        a = A[r, k]
        c00, c01 = _axpy16(c00, a, lo), _axpy16(c01, a, hi)
        a = A[r + 1, k]
        c10, c11 = _axpy16(c10, a, lo), _axpy16(c11, a, hi)
        a = A[r + 2, k]
        c20, c21 = _axpy16(c20, a, lo), _axpy16(c21, a, hi)
        a = A[r + 3, k]
        c30, c31 = _axpy16(c30, a, lo), _axpy16(c31, a, hi)
    _store16(o0[:16], c00); _store16(o0[16:], c01)
    _store16(o1[:16], c10); _store16(o1[16:], c11)
    _store16(o2[:16], c20); _store16(o2[16:], c21)
    _store16(o3[:16], c30); _store16(o3[16:], c31)


@kernel(inline=True)
def _tile_4x16(A, B, Out, r, i, k0, k1):
    """Out[r:r+4, i:i+16] += A[r:r+4, k0:k1] @ B[k0:k1, i:i+16]."""
    o0, o1 = Out[r, i:i + 16], Out[r + 1, i:i + 16]
    o2, o3 = Out[r + 2, i:i + 16], Out[r + 3, i:i + 16]
    c0, c1, c2, c3 = _load16(o0), _load16(o1), _load16(o2), _load16(o3)
    for k in range(k0, k1):
        b = B[k, i:i + 16]
        c0, c1 = _axpy16(c0, A[r, k], b), _axpy16(c1, A[r + 1, k], b)
        c2, c3 = _axpy16(c2, A[r + 2, k], b), _axpy16(c3, A[r + 3, k], b)
    _store16(o0, c0); _store16(o1, c1); _store16(o2, c2); _store16(o3, c3)


@kernel(inline=True)
def _tile_4x8(A, B, Out, r, i, k0, k1, first):
    """Out[r:r+4, i+first:i+8] += A[r:r+4, k0:k1] @ B[k0:k1, i+first:i+8]."""
    o0, o1 = Out[r, i:i + 8], Out[r + 1, i:i + 8]
    o2, o3 = Out[r + 2, i:i + 8], Out[r + 3, i:i + 8]
    c0, c1, c2, c3 = _load8(o0), _load8(o1), _load8(o2), _load8(o3)
    for k in range(k0, k1):
        b = B[k, i:i + 8]
        c0, c1 = _axpy8(c0, A[r, k], b), _axpy8(c1, A[r + 1, k], b)
        c2, c3 = _axpy8(c2, A[r + 2, k], b), _axpy8(c3, A[r + 3, k], b)
    _store8_from(o0, c0, first)
    _store8_from(o1, c1, first)
    _store8_from(o2, c2, first)
    _store8_from(o3, c3, first)


# Steps of k between two passes over the output tiles: a block of B's
# rows and A's columns that stays in the caches while every tile uses it.
K_BLOCK = 256
# A tile reads one short piece of each of K_BLOCK rows of B (and, for Aᵀ
# read in place, of A's columns). When those rows lie a multiple of 4 KB
# apart, all the pieces fall in the same set of the L1 cache and evict one
# another: measured in float32, 0.85x the loops at 32x256x1024 and
# Aᵀ 1024x1600x256, against 1.1x at 32x256x1056. The loops read whole
# rows, so for those strides the product runs as loops.
ALIASING_STRIDE = 4096


@kernel(slp=True)
def _add_products_tiles(A, B, Out):
    """Out += A @ B (shapes checked by :func:`add_products`) by register
    tiles of four rows: columns in panels of 32, then 16, then 8 (the last
    one overlapping its neighbour), or plain loops for fewer than 8 columns;
    the rows after the last multiple of four by the loops (one-row tiles
    measured 0.3-0.9x them: four rows of accumulators hide the latency of
    each addition, one row does not)."""
    R, K = A.shape
    M = B.shape[1]
    if B.strides[0] % ALIASING_STRIDE == 0 or A.strides[1] % ALIASING_STRIDE == 0:
        _rows_by_loops(A, B, Out, 0)
        return
    R4 = R - R % 4
    for k0 in range(0, K, K_BLOCK):
        k1 = min(k0 + K_BLOCK, K)
        i = 0
        while i + 32 <= M:
            for r in range(0, R4, 4):
                _tile_4x32(A, B, Out, r, i, k0, k1)
            i += 32
        if i + 16 <= M:
            for r in range(0, R4, 4):
                _tile_4x16(A, B, Out, r, i, k0, k1)
            i += 16
        while i < M and M >= 8:
            start = min(i, M - 8)
            for r in range(0, R4, 4):
                _tile_4x8(A, B, Out, r, start, k0, k1, i - start)
            i = start + 8
        if i < M:                                # fewer than 8 columns in all
            for r in range(R4):
                out = Out[r]
                for k in range(k0, k1):
                    a, b = A[r, k], B[k]
                    for j in range(i, M):
                        out[j] = out[j] + a * b[j]
    _rows_by_loops(A, B, Out, R4)


_products = by_precision(_add_products_loops, _add_products_tiles)


@kernel
def add_products(A, B, Out):
    """Out += A @ B, for A (R, K), B (K, M), Out (R, M)."""
    R, K = A.shape
    if B.shape[0] != K or Out.shape[0] != R or Out.shape[1] != B.shape[1]:
        raise ValueError("add_products: expected A (R, K), B (K, M) and Out (R, M)")
    _products(A, B, Out)


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
def copy_row(dst, i, src, j):
    """dst[i, :] = src[j, :] for 2-D arrays of dst's width. The cells' time
    loops index rows in place like this, never as views (``dst[i]``):
    Numba counts the references to each view with two atomic instructions,
    which took a sixth of a small model's training (d = 16, measured: a fit
    of 3.4 instead of 4.1 ms for the simple RNN, 10.2 instead of 12.1 for
    the LSTM once the views were gone)."""
    for p in range(dst.shape[1]):
        dst[i, p] = src[j, p]


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
    body = _add_products_tiles if scalar == types.float32 else _add_products_loops
    overloads = [(body, (C, C, C)), (add_products, (C, C, C)), (add_products_bt, (C, C, C))]
    if gradients:
        overloads += [(body, (F, C, C)), (add_products, (F, C, C)), (add_products_t, (C, C, C)),
                      (set_columns_t, (C, C, C, types.int64, C))]
    return overloads
