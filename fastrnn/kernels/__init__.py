"""The fast twin: Numba kernels with the same names and signatures as the
NumPy reference in :mod:`fastrnn.reference`.

Kernels trust their inputs (Numba checks no bounds): everything that reaches
them has been validated and made C-contiguous float64 / int64 by
:mod:`fastrnn._validation`.
"""
