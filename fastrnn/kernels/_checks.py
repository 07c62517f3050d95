"""Checks of validation and of the training loop that must be cheap: one
compiled pass over the data instead of a chain of NumPy temporaries (the
per-call cost of validating small arrays is what a user's loop pays)."""
import numpy as np

from fastrnn._jit import kernel, python_fallback


@python_fallback(lambda v: bool(np.isfinite(v).all()))
@kernel
def all_finite(v):
    """Whether no entry is inf or nan: x * 0 is nan exactly for those, and a
    nan anywhere makes the sum nan (a sum with no early exit, which LLVM
    vectorises, where a test per entry would not be)."""
    s0 = s1 = s2 = s3 = 0.0
    n4 = v.shape[0] - v.shape[0] % 4
    for p in range(0, n4, 4):
        s0 += v[p] * 0.0
        s1 += v[p + 1] * 0.0
        s2 += v[p + 2] * 0.0
        s3 += v[p + 3] * 0.0
    for p in range(n4, v.shape[0]):
        s0 += v[p] * 0.0
    return (s0 + s1) + (s2 + s3) == 0.0


@kernel
def first_bad_distribution(Y, tolerance):
    """The first row of Y (N, m) with a negative entry or a sum more than
    ``tolerance`` away from 1, or -1 when every row is a distribution."""
    for n in range(Y.shape[0]):
        total = 0.0
        for c in range(Y.shape[1]):
            if Y[n, c] < 0.0:
                return n
            total += Y[n, c]
        if abs(total - 1.0) > tolerance:
            return n
    return -1


@kernel
def ids_within(ids, bound):
    """Whether every id lies in [0, bound): one pass, for the validation of
    every call (NumPy's min and max are two passes and two calls)."""
    for n in range(ids.shape[0]):
        if ids[n] < 0 or ids[n] >= bound:
            return False
    return True
