"""The one place that sets how every kernel is compiled.

``cache=True`` so a second process starts fast; ``fastmath=False`` so the
kernels agree with the NumPy reference to float64 round-off on every machine;
``error_model="numpy"`` because inputs are validated in Python before any
kernel runs, so the division checks of the Python error model only cost time.
"""
import numba

KERNEL_OPTIONS = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)


def kernel(func=None, *, inline=False):
    """Compile ``func`` as a fastrnn kernel (see module docstring).

    ``@kernel(inline=True)`` inlines a small helper into its callers at
    Numba's level, so LLVM sees its loop together with where the arrays
    come from (measured: the blocked products vectorise better so)."""
    options = dict(KERNEL_OPTIONS, inline="always" if inline else "never")
    if func is None:
        return numba.njit(**options)
    return numba.njit(**options)(func)
