"""Time and peak memory of the functional API and of training, for every
named case x cell x backend x dtype.

Every case's arrays are the seeded ones of ``make_case`` (``fastrnn.cli.cases``;
``fastrnn.cases`` on older commits), in float64 or float32 (the parameters
and float inputs rounded: see ``benchmarks.case_data``);
``setup`` runs each benchmarked call once on them (compiling or loading the
kernels), so no timing includes compilation. With the numba backend,
forward and loss_and_grad run the sequences of a large batch on all usable
cores (``FASTRNN_NUM_THREADS`` to change) while FastRNN.fit trains on one;
the numpy backend runs on NumPy's (BLAS's) own threads.

Sizes (fastrnn/cli/cases.py): toy k=4 d=3 T=3 B=1; charlm k=65 d=100 T=25 B=1
(token ids); batch k=64 d=128 T=50 B=32; wide k=64 d=256 T=50 B=32; long
k=8 d=32 T=1000 B=4. The slowest single calls are tens to a few hundred
milliseconds (numpy backend at wide and long, LSTM fit at wide).

In-process NumPy timings: run asv with ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` unset (docs/benchmarks.md).
"""
import gc

import numpy as np

import fastrnn

from . import BACKENDS, CASES, CELLS, DTYPES, SEED, case_data, estimator, warm_up

# Generous: on a fresh machine the first setup compiles the kernels into
# Numba's cache (up to ~30 s); later processes load them.
TIMEOUT = 300


class Forward:
    """fastrnn.forward on one case's batch."""
    params = [list(CASES), list(CELLS), list(BACKENDS), list(DTYPES)]
    param_names = ["case", "cell", "backend", "dtype"]
    timeout = TIMEOUT

    def setup(self, case, cell, backend, dtype):
        self.net, self.X, _, _ = case_data(case, cell, dtype)
        warm_up(("forward", case, cell, backend, dtype),
                lambda: fastrnn.forward(self.net, self.X, backend=backend))

    def time_forward(self, case, cell, backend, dtype):
        fastrnn.forward(self.net, self.X, backend=backend)


class LossAndGrad:
    """fastrnn.loss_and_grad (forward pass and BPTT) on one case's batch."""
    params = [list(CASES), list(CELLS), list(BACKENDS), list(DTYPES)]
    param_names = ["case", "cell", "backend", "dtype"]
    timeout = TIMEOUT

    def setup(self, case, cell, backend, dtype):
        self.net, self.X, self.y, _ = case_data(case, cell, dtype)
        warm_up(("loss_and_grad", case, cell, backend, dtype),
                lambda: fastrnn.loss_and_grad(self.net, self.X, self.y, backend=backend))

    def time_loss_and_grad(self, case, cell, backend, dtype):
        fastrnn.loss_and_grad(self.net, self.X, self.y, backend=backend)

    def peakmem_loss_and_grad(self, case, cell, backend, dtype):
        # The peak resident size of the whole process: the interpreter,
        # NumPy, Numba (and, for the numba backend, LLVM and the loaded
        # kernels: a baseline of 100-200 MB) plus what loss_and_grad
        # allocates.
        fastrnn.loss_and_grad(self.net, self.X, self.y, backend=backend)


class Fit:
    """One epoch of FastRNN.fit on one case's batch, from a fresh model: one
    update over the whole batch (charlm: truncated BPTT over 25 steps with
    Adagrad, one update per chunk; its 25 steps are one chunk)."""
    params = [list(CASES), list(CELLS), list(BACKENDS), list(DTYPES)]
    param_names = ["case", "cell", "backend", "dtype"]
    timeout = TIMEOUT
    number = 1             # each call builds and trains a new model

    def setup(self, case, cell, backend, dtype):
        _, self.X, self.y, _ = case_data(case, cell, dtype)
        warm_up(("fit", case, cell, backend, dtype),
                lambda: estimator(case, cell, backend, dtype=dtype).fit(self.X, self.y))

    def time_fit_epoch(self, case, cell, backend, dtype):
        estimator(case, cell, backend, dtype=dtype).fit(self.X, self.y)


class FitToy:
    """1000 epochs on the toy of the notes: the cost of the training loop
    itself (per-epoch and per-update overhead), not of the arithmetic."""
    params = [list(CELLS), list(BACKENDS), list(DTYPES)]
    param_names = ["cell", "backend", "dtype"]
    timeout = TIMEOUT
    number = 1

    def setup(self, cell, backend, dtype):
        _, self.X, self.y, _ = case_data("toy", cell, dtype)
        warm_up(("fit", "toy", cell, backend, dtype),
                lambda: estimator("toy", cell, backend, dtype=dtype).fit(self.X, self.y))

    def time_fit_1000_epochs(self, cell, backend, dtype):
        estimator("toy", cell, backend, epochs=1000, dtype=dtype).fit(self.X, self.y)


class PeakMemoryRatio:
    """Peak memory of one fastrnn.loss_and_grad call over what it must hold:
    its inputs (X, y, params), the activations BPTT keeps (h_t and ŷ_t of
    every step; for the LSTM also c_t and the four gates, for the GRU its
    three gates and W_hn h_{t-1} + b_hn) and the gradients. float64.

    Measured on one long sequence (N = 64,000 steps, k = 64, d = 128: about
    100 MB of activations for the simple RNN, so that the allocator's
    rounding does not matter), unchunked, as the growth of the process's
    peak resident size during the call (Linux: /proc/self/clear_refs resets
    the peak), plus the inputs, which were resident before."""
    params = [list(CELLS), ["dense", "ids"]]
    param_names = ["cell", "inputs"]
    timeout = TIMEOUT
    number = 1
    repeat = 1
    N, K, D = 64_000, 64, 128

    def setup(self, cell, inputs):
        try:
            _reset_peak_rss()
        except OSError:
            from . import skip
            skip("needs Linux's /proc/self/clear_refs to reset the peak resident size")
        if cell != "rnn":
            from . import require_cell
            require_cell(cell)
        rng = np.random.default_rng(SEED)
        self.net = fastrnn.init_params(self.K, self.D, cell=cell, random_state=SEED)
        shape = (1, self.N)
        self.X = rng.integers(0, self.K, shape) if inputs == "ids" else \
            rng.standard_normal(shape + (self.K,))
        self.y = rng.integers(0, self.K, shape)
        small = (slice(None), slice(0, 3))
        warm_up(("peak", cell, inputs), lambda: fastrnn.loss_and_grad(
            self.net, self.X[small], self.y[small]))

    def track_peak_memory_ratio(self, cell, inputs):
        gc.collect()
        before = _rss_kib("VmRSS:")
        _reset_peak_rss()
        _, grads = fastrnn.loss_and_grad(self.net, self.X, self.y)
        growth = (_rss_kib("VmHWM:") - before) * 1024
        held = self.X.nbytes + self.y.nbytes + sum(a.nbytes for a in self.net.values())
        per_step = self.D + self.K + CACHE_BLOCKS[cell] * self.D
        need = held + 8 * self.N * per_step + sum(g.nbytes for g in grads.values())
        return float(f"{(held + growth) / need:.3g}")
    track_peak_memory_ratio.unit = "x"


# d-wide blocks BPTT keeps per step besides h_t: the LSTM's four gates and
# c_t, the GRU's three gates and W_hn h_{t-1} + b_hn.
CACHE_BLOCKS = {"rnn": 0, "lstm": 5, "gru": 4}


def _rss_kib(field):
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _reset_peak_rss():
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")
