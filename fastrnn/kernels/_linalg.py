"""The matrix products the kernels are built from, as explicit loops.

Written so that LLVM vectorises them without reassociating any sum (no
fastmath): the innermost loop always runs over a contiguous output row,
``out[i] = out[i] + a0*b0[i] + a1*b1[i] + ...``, so each out[i] is its own
accumulator and every sum is taken in the order the source gives. Eight
terms per pass mean an output row is loaded and stored once per eight
products, and the eight rows of the right-hand factor stay in L1 while
every output row goes past them.
"""
from fastrnn._jit import kernel

# Rows of the right-hand factor used per pass over an output row.
BLOCK = 8


@kernel
def add_products(A, B, Out):
    """Out += A @ B, for A (R, K), B (K, M), Out (R, M)."""
    R, K = A.shape
    M = B.shape[1]
    K8 = K - K % BLOCK
    for k in range(0, K8, BLOCK):
        b0, b1, b2, b3 = B[k], B[k + 1], B[k + 2], B[k + 3]
        b4, b5, b6, b7 = B[k + 4], B[k + 5], B[k + 6], B[k + 7]
        for r in range(R):
            a = A[r]
            a0, a1, a2, a3 = a[k], a[k + 1], a[k + 2], a[k + 3]
            a4, a5, a6, a7 = a[k + 4], a[k + 5], a[k + 6], a[k + 7]
            out = Out[r]
            for i in range(M):
                out[i] = (out[i] + a0 * b0[i] + a1 * b1[i] + a2 * b2[i] + a3 * b3[i]
                          + a4 * b4[i] + a5 * b5[i] + a6 * b6[i] + a7 * b7[i])
    for k in range(K8, K):
        b0 = B[k]
        for r in range(R):
            a0 = A[r, k]
            out = Out[r]
            for i in range(M):
                out[i] = out[i] + a0 * b0[i]


@kernel
def add_products_t(A, B, Out):
    """Out += Aᵀ @ B, for A (N, R), B (N, M), Out (R, M): Σ_n a_n b_nᵀ,
    the weight gradients' sum over steps."""
    N, R = A.shape
    M = B.shape[1]
    N8 = N - N % BLOCK
    for n in range(0, N8, BLOCK):
        b0, b1, b2, b3 = B[n], B[n + 1], B[n + 2], B[n + 3]
        b4, b5, b6, b7 = B[n + 4], B[n + 5], B[n + 6], B[n + 7]
        for r in range(R):
            a0, a1, a2, a3 = A[n, r], A[n + 1, r], A[n + 2, r], A[n + 3, r]
            a4, a5, a6, a7 = A[n + 4, r], A[n + 5, r], A[n + 6, r], A[n + 7, r]
            out = Out[r]
            for i in range(M):
                out[i] = (out[i] + a0 * b0[i] + a1 * b1[i] + a2 * b2[i] + a3 * b3[i]
                          + a4 * b4[i] + a5 * b5[i] + a6 * b6[i] + a7 * b7[i])
    for n in range(N8, N):
        b0 = B[n]
        for r in range(R):
            a0 = A[n, r]
            out = Out[r]
            for i in range(M):
                out[i] = out[i] + a0 * b0[i]
