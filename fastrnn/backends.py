"""Choosing between the two twins of every kernel."""
from fastrnn.kernels import rnn as _numba_rnn
from fastrnn.reference import rnn as _numpy_rnn

BACKENDS = ("numba", "numpy")
_MODULES = {
    ("numba", "rnn"): _numba_rnn,
    ("numpy", "rnn"): _numpy_rnn,
}


def check_backend(backend):
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    return backend


def cell_module(backend, cell):
    """The module holding ``backend``'s functions for ``cell``."""
    check_backend(backend)
    try:
        return _MODULES[backend, cell]
    except KeyError:
        raise NotImplementedError(f"cell={cell!r} is not implemented yet") from None
