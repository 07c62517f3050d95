"""fastrnn: recurrent neural networks that are fast on the CPU, and
backpropagation through time you can read and trust.

Every computation exists twice, with the same signature: a readable NumPy
reference (``backend="numpy"``) and a compiled Numba kernel
(``backend="numba"``, the default), held to agree to float64 round-off.
"""
from fastrnn.functional import forward, loss_and_grad
from fastrnn.params import init_params

__version__ = "0.2.0"
__all__ = ["forward", "loss_and_grad", "init_params", "__version__"]
from fastrnn.estimator import FastRNN, FastRNNRegressor, NotFittedError  # noqa: E402
from fastrnn.vocab import CharVocab  # noqa: E402
