"""How many times faster the compiled kernels are than the NumPy reference,
and than PyTorch, as numbers with a history of their own.

Each ``track_speedup_*`` times the reference (``backend="numpy"``) and the
kernel (``backend="numba"``) on the same arrays in the same process,
alternating blocks of samples, and returns median(reference) /
median(kernel): above 1 the kernel is faster. Every case x cell x dtype
(float32: against the float32 reference) x threads ("1": every library on
one core; "default": each on its default threads, both cores here). A
ratio is less sensitive than either time to how fast or busy the machine
is, but on a shared machine it is still noisy. One class per operation, so
that each process warms up only what it times.

``SpeedupTorch`` does the same against PyTorch's forward and backward pass
of the same network in float32 (whatever fastrnn's dtype: what a PyTorch
user runs), when torch is importable.

NumPy is timed in this process: run asv with ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` unset (``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
asv run ...``), or the reference runs OpenBLAS's slower kernels and the
ratios flatter the kernels (docs/benchmarks.md).
"""
import numpy as np

import fastrnn

from . import (CASES, CELLS, DTYPES, THREADS, ThreadsMixin, case_data, estimator,
               import_torch, skip, speedup, torch_step, warm_up)
from .bench_rnn import TIMEOUT


class _Speedup(ThreadsMixin):
    """Set-up shared by the Speedup* classes: ``call(backend)`` for
    ``what`` on one case, warmed up for both backends."""
    params = [list(CASES), list(CELLS), list(DTYPES), list(THREADS)]
    param_names = ["case", "cell", "dtype", "threads"]
    timeout = TIMEOUT
    what = None

    def call(self, case, cell, dtype, backend):
        raise NotImplementedError

    def setup(self, case, cell, dtype, threads):
        self.net, self.X, self.y, _ = case_data(case, cell, dtype)
        self.setup_threads(threads)
        self.calls = {}
        for backend in ("numpy", "numba"):
            call = self.call(case, cell, dtype, backend)
            warm_up((self.what, case, cell, dtype, backend), call)
            self.calls[backend] = call

    def ratio(self):
        return speedup(self.calls["numpy"], self.calls["numba"])


class SpeedupForward(_Speedup):
    what = "forward"

    def call(self, case, cell, dtype, backend):
        return lambda: fastrnn.forward(self.net, self.X, backend=backend)

    def track_speedup_forward(self, case, cell, dtype, threads):
        return self.ratio()
    track_speedup_forward.unit = "x"              # asv labels the values: times faster


class SpeedupLossAndGrad(_Speedup):
    what = "loss_and_grad"

    def call(self, case, cell, dtype, backend):
        return lambda: fastrnn.loss_and_grad(self.net, self.X, self.y, backend=backend)

    def track_speedup_loss_and_grad(self, case, cell, dtype, threads):
        return self.ratio()
    track_speedup_loss_and_grad.unit = "x"


class SpeedupFit(_Speedup):
    """One epoch of FastRNN.fit from a fresh model, as in bench_rnn.Fit."""
    what = "fit"

    def call(self, case, cell, dtype, backend):
        return lambda: estimator(case, cell, backend, dtype=dtype).fit(self.X, self.y)

    def track_speedup_fit_epoch(self, case, cell, dtype, threads):
        return self.ratio()
    track_speedup_fit_epoch.unit = "x"


class SpeedupTwins(_Speedup):
    """The twins themselves: the network ``loss_and_grad`` of
    ``fastrnn.kernels.network`` against that of ``fastrnn.reference.network``
    (on commits before the network twins: ``rnn_loss_and_grad`` /
    ``lstm_loss_and_grad`` of the cell modules), on arrays validated once in
    ``setup``; the kernel on one thread (no chunks), NumPy on the threads of
    the ``threads`` parameter. What the compiled loops gain over NumPy,
    without the validation and dispatch that ``fastrnn.loss_and_grad`` adds
    to both (tens of microseconds: most of the toy's time)."""
    what = "twins"

    def call(self, case, cell, dtype, backend):
        try:
            from fastrnn.backends import network_module
        except ImportError:
            return self._cell_twins_call(cell, backend)
        return self._network_twins_call(network_module(backend), dtype)

    def setup(self, case, cell, dtype, threads):
        try:
            super().setup(case, cell, dtype, threads)
        except (TypeError, ValueError, AttributeError, ImportError) as exc:
            self.teardown_threads()
            skip(f"the twins of this commit take other arguments ({type(exc).__name__}: {exc})")

    def _network_twins_call(self, module, dtype):
        """fastrnn.functional.run_loss_and_grad without its validation and
        chunks: the arguments as it prepares them."""
        from fastrnn._cells import CELLS as FASTRNN_CELLS
        from fastrnn._validation import (check_head, check_inputs, check_params,
                                         check_sample_weight, check_states, check_targets,
                                         sequence_scale)
        net = check_params(self.net)
        head = check_head("cross_entropy", "every_step")
        float32 = dtype != "float64"
        seqs = check_inputs(self.X, net.n_inputs, **({"dtype": net.dtype} if float32 else {}))
        Y = check_targets(self.y, seqs, net.n_outputs, head,
                          **({"dtype": net.dtype} if float32 else {}))
        seq_weight, step_weight = check_sample_weight(None, seqs, head)
        state0 = check_states(None, net, seqs)
        a = net.architecture
        N = seqs.n_rows
        real = net.theta.dtype
        Hs = np.empty((a.n_layers, a.n_directions, N, a.n_hidden), real)
        caches = np.empty((a.n_layers, a.n_directions, N,
                           FASTRNN_CELLS[a.cell].cache_blocks * a.n_hidden), real)
        args = (FASTRNN_CELLS[a.cell].tag, net.theta, net.table, seqs.data, Y, seqs.offsets,
                sequence_scale(seq_weight), step_weight, state0, head.loss, head.last_step,
                0.0, np.uint64(0), 0, Hs, caches, np.empty_like(state0),
                np.empty_like(net.theta), np.empty_like(state0), np.empty((0, a.n_inputs), real))
        run = module.loss_and_grad
        return lambda: run(*args)

    def _cell_twins_call(self, cell, backend):
        """The per-cell twins of the commits before the network modules."""
        try:
            from fastrnn._validation import check_inputs, check_params, check_state, \
                check_targets
            from fastrnn.backends import cell_module
        except ImportError:
            skip("this commit of fastrnn has no twin modules to call directly")
        net = check_params(self.net)
        seqs = check_inputs(self.X, net.n_inputs)
        Y = check_targets(self.y, seqs, net.n_outputs)
        states = (check_state(None, seqs, net.n_hidden),) * (1 if cell == "rnn" else 2)
        N = len(seqs.data)
        outputs = tuple(np.empty((N, net.n_hidden)) for _ in states) + \
            (np.empty((N, net.n_outputs)),)
        grads = tuple(np.empty_like(a) for a in net.arrays)
        dstates = tuple(np.empty_like(s) for s in states)
        run = getattr(cell_module(backend, cell), f"{cell}_loss_and_grad")
        args = (*net.arrays, seqs.data, Y, seqs.offsets, *states, *outputs, *grads, *dstates)
        return lambda: run(*args)

    def track_speedup_twins_loss_and_grad(self, case, cell, dtype, threads):
        return self.ratio()
    track_speedup_twins_loss_and_grad.unit = "x"


class SpeedupTorch(ThreadsMixin):
    """``fastrnn.loss_and_grad`` (the kernels) against PyTorch's forward and
    backward pass of the same network (nn.RNN(tanh)/nn.LSTM/nn.GRU, then
    nn.Linear and the cross-entropy) on the same data, PyTorch in float32:
    median(PyTorch) / median(fastrnn), above 1 fastrnn is faster. The
    float32 rows are float32 kernels against PyTorch float32 on every case
    and cell; the float64 rows what float64 costs against it. Skipped
    without torch."""
    params = [list(CASES), list(CELLS), list(DTYPES), list(THREADS)]
    param_names = ["case", "cell", "dtype", "threads"]
    timeout = TIMEOUT

    def setup(self, case, cell, dtype, threads):
        torch = import_torch()
        net, X, y, spec = case_data(case, cell, dtype)
        self.setup_threads(threads)
        self.kernel = lambda: fastrnn.loss_and_grad(net, X, y)
        self.torch = torch_step(torch, cell, spec.k, spec.d, spec.k, X, y, "float32")
        warm_up(("loss_and_grad", case, cell, dtype, "numba"), self.kernel)
        self.torch()

    def track_speedup_vs_torch(self, case, cell, dtype, threads):
        return speedup(self.torch, self.kernel)
    track_speedup_vs_torch.unit = "x"
