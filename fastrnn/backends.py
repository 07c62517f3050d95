"""Choosing between the two twins of every kernel."""
from fastrnn.kernels import network as _numba_network
from fastrnn.kernels import train as _numba_train
from fastrnn.reference import network as _numpy_network
from fastrnn.reference import train as _numpy_train

BACKENDS = ("numba", "numpy")
_NETWORK = {"numba": _numba_network, "numpy": _numpy_network}
_TRAIN = {"numba": _numba_train, "numpy": _numpy_train}


def check_backend(backend):
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    return backend


def network_module(backend):
    """The module holding ``backend``'s ``forward`` and ``loss_and_grad``."""
    return _NETWORK[check_backend(backend)]


def train_module(backend):
    """The module holding ``backend``'s training loop, ``train_epochs``."""
    return _TRAIN[check_backend(backend)]
