"""Choosing between the two twins of every kernel."""
from fastrnn.kernels import lstm as _numba_lstm
from fastrnn.kernels import rnn as _numba_rnn
from fastrnn.reference import lstm as _numpy_lstm
from fastrnn.reference import rnn as _numpy_rnn

BACKENDS = ("numba", "numpy")
_MODULES = {
    ("numba", "rnn"): _numba_rnn,
    ("numpy", "rnn"): _numpy_rnn,
    ("numba", "lstm"): _numba_lstm,
    ("numpy", "lstm"): _numpy_lstm,
}


def train_module(backend):
    """The module holding ``backend``'s training loop, ``train_epochs``."""
    from fastrnn.kernels import train as numba_train
    from fastrnn.reference import train as numpy_train
    return {"numba": numba_train, "numpy": numpy_train}[check_backend(backend)]


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
