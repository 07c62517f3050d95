"""How many times faster the compiled kernels are than the NumPy reference,
as numbers with a history of their own.

Each ``track_speedup_*`` times the reference (``backend="numpy"``) and the
kernel (``backend="numba"``) on the same arrays in the same process,
alternating samples, and returns median(reference) / median(kernel): above
1 the kernel is faster. A ratio is less sensitive than either time to how
fast or busy the machine is, but on a shared machine it is still noisy.
One class per operation, so that each process warms up only what it times.
"""
import numpy as np

import fastrnn

from . import CASES, CELLS, case_data, estimator, speedup, warm_up
from .bench_rnn import TIMEOUT


class _Speedup:
    """Set-up shared by the Speedup* classes: ``call(backend)`` for
    ``what`` on one case, warmed up for both backends."""
    params = [list(CASES), list(CELLS)]
    param_names = ["case", "cell"]
    timeout = TIMEOUT
    what = None

    def call(self, case, cell, backend):
        raise NotImplementedError

    def setup(self, case, cell):
        self.net, self.X, self.y, _ = case_data(case, cell)
        self.calls = {}
        for backend in ("numpy", "numba"):
            call = self.call(case, cell, backend)
            warm_up((self.what, case, cell, backend), call)
            self.calls[backend] = call

    def ratio(self):
        return speedup(self.calls["numpy"], self.calls["numba"])


class SpeedupForward(_Speedup):
    what = "forward"

    def call(self, case, cell, backend):
        return lambda: fastrnn.forward(self.net, self.X, backend=backend)

    def track_speedup_forward(self, case, cell):
        return self.ratio()
    track_speedup_forward.unit = "x"              # asv labels the values: times faster


class SpeedupLossAndGrad(_Speedup):
    what = "loss_and_grad"

    def call(self, case, cell, backend):
        return lambda: fastrnn.loss_and_grad(self.net, self.X, self.y, backend=backend)

    def track_speedup_loss_and_grad(self, case, cell):
        return self.ratio()
    track_speedup_loss_and_grad.unit = "x"


class SpeedupFit(_Speedup):
    """One epoch of FastRNN.fit from a fresh model, as in bench_rnn.Fit."""
    what = "fit"

    def call(self, case, cell, backend):
        return lambda: estimator(case, cell, backend).fit(self.X, self.y)

    def track_speedup_fit_epoch(self, case, cell):
        return self.ratio()
    track_speedup_fit_epoch.unit = "x"


class SpeedupTwins(_Speedup):
    """The twins themselves: ``rnn_loss_and_grad``/``lstm_loss_and_grad`` of
    ``fastrnn.kernels`` against ``fastrnn.reference``, on arrays validated
    once in ``setup``, one thread. What the compiled loops gain over NumPy,
    without the validation and dispatch that ``fastrnn.loss_and_grad`` adds
    to both (tens of microseconds: most of the toy's time)."""
    what = "twins"

    def call(self, case, cell, backend):
        try:
            from fastrnn._validation import check_inputs, check_params, check_state, \
                check_targets
            from fastrnn.backends import cell_module
        except ImportError:
            from . import skip
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

    def track_speedup_twins_loss_and_grad(self, case, cell):
        return self.ratio()
    track_speedup_twins_loss_and_grad.unit = "x"
