"""How many times faster the compiled kernels are than the NumPy reference,
as numbers with a history of their own.

Each ``track_speedup_*`` times the reference (``backend="numpy"``) and the
kernel (``backend="numba"``) on the same arrays in the same process,
alternating samples, and returns median(reference) / median(kernel): above
1 the kernel is faster. A ratio is less sensitive than either time to how
fast or busy the machine is, but on a shared machine it is still noisy.
One class per operation, so that each process warms up only what it times.
"""
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
