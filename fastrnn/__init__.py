"""fastrnn: recurrent neural networks that are fast on the CPU, and
backpropagation through time you can read and trust.

Every computation exists twice, with the same signature: a readable NumPy
reference (``backend="numpy"``) and a compiled Numba kernel
(``backend="numba"``, the default), held to agree to float64 round-off.
"""
from fastrnn.estimator import FastRNN, NotFittedError
from fastrnn.functional import forward, loss_and_grad
from fastrnn.params import init_params
from fastrnn.vocab import CharVocab
from fastrnn._jit import expire_stale_cache as _expire_stale_cache
from fastrnn.kernels.rnn import rnn_forward as _any_kernel

_expire_stale_cache(_any_kernel)

__version__ = "0.1.0"
__all__ = ["FastRNN", "CharVocab", "NotFittedError", "forward", "loss_and_grad", "init_params",
           "__version__"]
