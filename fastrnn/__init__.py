"""fastrnn: recurrent neural networks that are fast on the CPU, and
backpropagation through time you can read and trust.

Every computation exists twice, with the same signature: a readable NumPy
reference (``backend="numpy"``) and a compiled Numba kernel
(``backend="numba"``, the default), held to agree to float64 round-off.
The equations, layouts and bounds are in docs/math.md.
"""
from fastrnn._gradcheck import gradcheck
from fastrnn._many import fit_many
from fastrnn._stream import Stream
from fastrnn.estimator import FastRNN, FastRNNRegressor, NotFittedError
from fastrnn.functional import forward, loss_and_grad
from fastrnn.params import init_params
from fastrnn.vocab import CharVocab

__version__ = "0.2.0"
__all__ = ["FastRNN", "FastRNNRegressor", "CharVocab", "NotFittedError", "Stream", "fit_many",
           "forward", "gradcheck", "init_params", "loss_and_grad", "__version__"]

from fastrnn._jit import expire_stale_cache as _expire_stale_cache  # noqa: E402
from fastrnn.kernels.network import loss_and_grad as _any_kernel  # noqa: E402

_expire_stale_cache(_any_kernel)
