"""The one place that sets how every kernel is compiled.

``cache=True`` so a second process starts fast; ``fastmath=False`` so the
kernels agree with the NumPy reference to float64 round-off on every machine;
``error_model="numpy"`` because inputs are validated in Python before any
kernel runs, so the division checks of the Python error model only cost time.
"""
import numba

KERNEL_OPTIONS = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)


def kernel(func):
    """Compile ``func`` as a fastrnn kernel (see module docstring)."""
    return numba.njit(**KERNEL_OPTIONS)(func)
