"""Deeper networks: a 2-layer GRU and a 2-layer bidirectional LSTM, at the
charlm and batch cases (their data and sizes per layer: see
``bench_rnn``), in float64 and float32, on one core and on default threads.

* ``Deep.time_loss_and_grad``: ``fastrnn.loss_and_grad`` (the kernels);
* ``Deep.track_speedup_vs_reference``: median(reference) / median(kernel),
  the NumPy reference in the same precision, alternating blocks;
* ``DeepVsTorch.track_speedup_vs_torch``: median(PyTorch float32) /
  median(kernel), PyTorch's forward and backward pass of the same network
  in float32 whatever fastrnn's dtype (what a PyTorch user would run);
  skipped without torch.

Skipped on commits without stacked or bidirectional layers (or the GRU,
or float32). NumPy and PyTorch are timed in this process: run asv with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset (docs/benchmarks.md).
"""
import fastrnn

from . import (DTYPES, THREADS, ThreadsMixin, case_data, import_torch, speedup, torch_step,
               warm_up)
from .bench_rnn import TIMEOUT

DEEP_CASES = ("charlm", "batch")
# name: (cell, n_layers, bidirectional)
MODELS = {"gru-2": ("gru", 2, False), "lstm-2-bi": ("lstm", 2, True)}


class _Deep(ThreadsMixin):
    params = [list(DEEP_CASES), list(MODELS), list(DTYPES), list(THREADS)]
    param_names = ["case", "model", "dtype", "threads"]
    timeout = TIMEOUT

    def setup_kernel(self, case, model, dtype, threads):
        cell, layers, bidirectional = MODELS[model]
        self.net, self.X, self.y, self.spec = case_data(case, cell, dtype, layers, bidirectional)
        self.kernel = lambda: fastrnn.loss_and_grad(self.net, self.X, self.y, backend="numba")
        warm_up(("deep", case, model, dtype, "numba"), self.kernel)


class Deep(_Deep):
    def setup(self, case, model, dtype, threads):
        self.setup_kernel(case, model, dtype, threads)
        self.reference = lambda: fastrnn.loss_and_grad(self.net, self.X, self.y,
                                                       backend="numpy")
        warm_up(("deep", case, model, dtype, "numpy"), self.reference)
        self.setup_threads(threads)

    def time_loss_and_grad(self, case, model, dtype, threads):
        self.kernel()

    def track_speedup_vs_reference(self, case, model, dtype, threads):
        return speedup(self.reference, self.kernel)
    track_speedup_vs_reference.unit = "x"


class DeepVsTorch(_Deep):
    def setup(self, case, model, dtype, threads):
        torch = import_torch()
        self.setup_kernel(case, model, dtype, threads)
        cell, layers, bidirectional = MODELS[model]
        k, d = self.spec.k, self.spec.d
        self.torch = torch_step(torch, cell, k, d, k, self.X, self.y, "float32", layers,
                                bidirectional)
        self.setup_threads(threads)
        self.torch()

    def track_speedup_vs_torch(self, case, model, dtype, threads):
        return speedup(self.torch, self.kernel)
    track_speedup_vs_torch.unit = "x"
