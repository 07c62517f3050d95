"""Throughput targets: the kernels' arithmetic rate against the machine's
DGEMM, batched text streams, many small models at once, streaming
inference.

* ``KernelRate``: float64 ``loss_and_grad`` at batch and wide on one core,
  in multiply-adds per second, and as a fraction of the machine's DGEMM
  rate, measured in the same run by a large NumPy matmul on one thread in a
  subprocess (with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset:
  where set they make OpenBLAS run older kernels, up to 2.7x slower).
* ``TextStreams``: characters per second of ``FastRNN.fit`` on a character
  text (d=100, bptt=25, Adagrad, entries clipped to ±5 as ``fastrnn
  train``) cut into 32 streams trained side by side, against the same text
  as one stream, and their ratio.
* ``FitMany``: 200 small models (d=16, T=50, 20 sequences each) fitted by
  ``fastrnn.fit_many(..., n_jobs=2)`` against one after another, and the
  throughput ratio.
* ``Streaming``: one ``predict_proba`` step with a carried state, LSTM,
  d=64, 64 classes, token ids or dense inputs (k=64); its time, and the
  99th percentile of single steps in microseconds.
"""
import contextlib
import functools
import io
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import fastrnn

from . import (CELLS, DTYPES, SEED, SLOW_BLAS_VARIABLES, ThreadsMixin, case_data,
               median_seconds, paired_ratio, skip, three_digits, warm_up)
from .bench_rnn import TIMEOUT


# ------------------------------------------------------------- kernel rate
def multiply_adds(cell, k, d, m, n_rows):
    """Multiply-adds of the matrix products of one float64
    ``loss_and_grad`` of one layer and one direction over ``n_rows`` steps
    (all sequences), dense inputs, G = 1 (rnn), 4 (lstm) or 3 (gru) blocks:

    forward: W_x x_t (G·d·k), W_h h_{t-1} (G·d·d), W_y h_t (m·d);
    backward: dW_y += dz_t h_t' (m·d), W_y' dz_t (m·d), W_h' da_t (G·d·d),
    dW_h += da_t h_{t-1}' (G·d·d), dW_x += da_t x_t' (G·d·k);

    in all 2·G·d·k + 3·G·d² + 3·m·d per step. The element-wise work (the
    nonlinearities, the gates' products, the softmax) is not counted."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    return n_rows * (2 * G * d * k + 3 * G * d * d + 3 * m * d)


# Size of the DGEMM: (n, n) @ (n, n), n³ multiply-adds, about 0.1 s on one
# core here; median of DGEMM_REPEAT after one untimed.
DGEMM_N = 1536
DGEMM_REPEAT = 7

_DGEMM_SCRIPT = """
import json, sys, time, statistics
import numpy as np
n, repeat = int(sys.argv[1]), int(sys.argv[2])
try:
    from threadpoolctl import threadpool_limits, threadpool_info
except ImportError:
    threadpool_limits, info = None, None
rng = np.random.default_rng(0)
a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
out = np.empty((n, n))
def run():
    np.matmul(a, b, out=out)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
if threadpool_limits is not None:
    with threadpool_limits(limits=1):
        seconds = run()
        info = [{k: i.get(k) for k in ("internal_api", "architecture", "num_threads", "version")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
else:
    seconds = run()
print(json.dumps({"seconds": seconds, "blas": info}))
"""


def subprocess_env(extra=None):
    """This process's environment for a child: without the variables that
    slow OpenBLAS down, with PYTHONPATH leading to the fastrnn measured here
    (asv drops PYTHONPATH), plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in SLOW_BLAS_VARIABLES}
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastrnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                  else []))
    env.update(extra or {})
    return env


@functools.lru_cache(maxsize=None)
def dgemm_rate(n=None, repeat=None):
    """(multiply-adds per second of one-thread DGEMM, threadpoolctl's BLAS
    description), measured in a subprocess."""
    n, repeat = n or DGEMM_N, repeat or DGEMM_REPEAT
    single = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _DGEMM_SCRIPT, str(n), str(repeat)],
                         env=subprocess_env(single), capture_output=True, text=True,
                         timeout=600, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return n ** 3 / result["seconds"], result["blas"]


class KernelRate(ThreadsMixin):
    """float64 ``loss_and_grad`` (the kernels) on one core at batch and
    wide: multiply-adds per second (see :func:`multiply_adds`) and that rate
    as a fraction of one core's DGEMM rate (a (1536, 1536) NumPy matmul on
    one thread, in a subprocess without OPENBLAS_CORETYPE and
    OPENBLAS_L2_SIZE, in the same run)."""
    params = [["batch", "wide"], list(CELLS)]
    param_names = ["case", "cell"]
    timeout = TIMEOUT

    def setup(self, case, cell):
        net, X, y, spec = case_data(case, cell)
        self.kernel = lambda: fastrnn.loss_and_grad(net, X, y)
        self.work = multiply_adds(cell, spec.k, spec.d, spec.k, spec.B * spec.T)
        warm_up(("loss_and_grad", case, cell, "float64", "numba"), self.kernel)
        self.setup_threads("1")

    def rate(self):
        return self.work / median_seconds(self.kernel)

    def track_multiply_adds_per_second(self, case, cell):
        return three_digits(self.rate() / 1e9)
    track_multiply_adds_per_second.unit = "GMAC/s"

    def track_fraction_of_dgemm(self, case, cell):
        return three_digits(self.rate() / dgemm_rate()[0])
    track_fraction_of_dgemm.unit = "x"

    def track_dgemm_multiply_adds_per_second(self, case, cell):
        return three_digits(dgemm_rate()[0] / 1e9)
    track_dgemm_multiply_adds_per_second.unit = "GMAC/s"


# ------------------------------------------------------------ text streams
def zen_text(n_chars):
    """The Zen of Python (the standard library's, the same on every commit),
    repeated to ``n_chars`` characters."""
    import codecs
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    zen = codecs.decode(this.s, "rot13")
    return (zen * (n_chars // len(zen) + 1))[:n_chars]


class TextStreams:
    """``FastRNN.fit`` on a character text (the Zen of Python repeated to
    TEXT_CHARS characters: 45 distinct), d=100, truncated BPTT over 25
    steps, Adagrad, entries clipped to ±5, one epoch, from a fresh model:
    32 contiguous streams trained side by side (``fastrnn train
    --streams 32``, batch_size=32) against the text as one sequence (the
    single-stream path). ``track_streams_speedup``: characters per second
    of the 32 streams over those of one stream (alternating fits)."""
    params = [["rnn", "lstm"]]
    param_names = ["cell"]
    timeout = TIMEOUT
    TEXT_CHARS = 64_001
    STREAMS = 32
    BPTT = 25

    def setup(self, cell):
        text = zen_text(self.TEXT_CHARS)
        vocab = fastrnn.CharVocab(text)
        ids = vocab.encode(text)
        X, y = ids[:-1], ids[1:]
        length = len(X) // self.STREAMS
        cut = length * self.STREAMS
        self.data = {1: (X, y), self.STREAMS: (X[:cut].reshape(self.STREAMS, length),
                                               y[:cut].reshape(self.STREAMS, length))}
        k = len(vocab)

        def fit(streams):
            X, y = self.data[streams]
            return fastrnn.FastRNN(n_hidden=100, cell=cell, optimizer="adagrad", bptt=self.BPTT,
                                   epochs=1, batch_size=streams if streams > 1 else None,
                                   shuffle=False, clip=5.0, clip_mode="value", random_state=SEED,
                                   n_inputs=k, n_outputs=k).fit(X, y)
        self.fits = {streams: functools.partial(fit, streams) for streams in self.data}
        for streams, call in self.fits.items():
            try:
                warm_up(("text", cell, streams, self.TEXT_CHARS), call)
            except TypeError as exc:
                skip(f"this commit's FastRNN does not train text streams ({exc})")

    def chars_per_second(self, streams):
        return self.data[streams][0].size / statistics.median(
            _once(self.fits[streams]) for _ in range(3))

    def track_streams_chars_per_second(self, cell):
        return three_digits(self.chars_per_second(self.STREAMS))
    track_streams_chars_per_second.unit = "chars/s"

    def track_single_stream_chars_per_second(self, cell):
        return three_digits(self.chars_per_second(1))
    track_single_stream_chars_per_second.unit = "chars/s"

    def track_streams_speedup(self, cell):
        chars = {streams: X.size for streams, (X, _) in self.data.items()}
        seconds_ratio = paired_ratio(self.fits[1], self.fits[self.STREAMS])
        return three_digits(seconds_ratio * chars[self.STREAMS] / chars[1])
    track_streams_speedup.unit = "x"


def _once(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


# -------------------------------------------------------------- many models
class FitMany:
    """200 small models, each a FastRNN (d=16, 10 epochs of Adam, one update
    an epoch) on its own 20 sequences of 50 token ids (k=m=8), seeded:
    ``fastrnn.fit_many(..., n_jobs=2)`` against fitting clones one after
    another. ``track_fit_many_speedup``: models per second of fit_many over
    those of the loop (alternating, ROUNDS of each)."""
    params = [["rnn", "lstm"]]
    param_names = ["cell"]
    timeout = TIMEOUT
    number = 1
    N_MODELS = 200
    N_SEQUENCES, T, D, K, EPOCHS = 20, 50, 16, 8, 10

    def setup(self, cell):
        if not hasattr(fastrnn, "fit_many"):
            skip("this commit of fastrnn has no fit_many")
        rng = np.random.default_rng(SEED)
        shape = (self.N_SEQUENCES, self.T)
        self.Xs = [rng.integers(0, self.K, shape) for _ in range(self.N_MODELS)]
        self.ys = [rng.integers(0, self.K, shape) for _ in range(self.N_MODELS)]
        self.model = fastrnn.FastRNN(n_hidden=self.D, cell=cell, optimizer="adam",
                                     epochs=self.EPOCHS, random_state=SEED, n_inputs=self.K,
                                     n_outputs=self.K)
        warm_up(("many", cell), lambda: fastrnn.fit_many(self.model, self.Xs[:2], self.ys[:2],
                                                         n_jobs=2))
        self.model.fit(self.Xs[0], self.ys[0])

    def many(self):
        fastrnn.fit_many(self.model, self.Xs, self.ys, n_jobs=2)

    def one_after_another(self):
        for X, y in zip(self.Xs, self.ys):
            type(self.model)(**self.model.get_params()).fit(X, y)

    def time_fit_many(self, cell):
        self.many()

    def time_one_after_another(self, cell):
        self.one_after_another()

    def track_fit_many_speedup(self, cell):
        return three_digits(paired_ratio(self.one_after_another, self.many))
    track_fit_many_speedup.unit = "x"


# ---------------------------------------------------------------- streaming
class Streaming:
    """One step of streaming inference: ``predict_proba(x, h0=state,
    return_state=True)`` on one input (a token id, or a dense vector of
    k=64), the state carried from the previous step, with a fitted LSTM
    classifier of d=64 and 64 classes. ``time_predict_step``: asv's timing of
    one step; ``track_p99_microseconds``: the 99th percentile of STEPS
    single steps, each timed alone, after WARM_STEPS untimed."""
    params = [["ids", "dense"], list(DTYPES)]
    param_names = ["inputs", "dtype"]
    timeout = TIMEOUT
    K = D = M = 64
    STEPS = 5000
    WARM_STEPS = 500

    def setup(self, inputs, dtype):
        rng = np.random.default_rng(SEED)
        y = np.arange(self.M).reshape(4, self.M // 4)      # every class appears
        if inputs == "ids":
            X = rng.integers(0, self.K, y.shape)
            self.steps = [np.array([i]) for i in rng.integers(0, self.K, 64)]
        else:
            X = rng.standard_normal(y.shape + (self.K,)).astype(dtype)
            self.steps = [row[None] for row in rng.standard_normal((64, self.K)).astype(dtype)]
        options = {"dtype": dtype} if dtype != "float64" else {}
        if dtype != "float64":
            from . import require_float32
            require_float32()
        self.model = fastrnn.FastRNN(n_hidden=self.D, cell="lstm", epochs=1, random_state=SEED,
                                     n_inputs=self.K if inputs == "ids" else None,
                                     n_outputs=self.M, **options).fit(X, y)
        try:
            _, self.state = self.model.predict_proba(self.steps[0], return_state=True)
        except TypeError as exc:
            skip(f"this commit's predict_proba carries no state ({exc})")
        self.i = 0
        for _ in range(2):
            self.step()

    def step(self):
        self.i = (self.i + 1) % len(self.steps)
        _, self.state = self.model.predict_proba(self.steps[self.i], h0=self.state,
                                                 return_state=True)

    def time_predict_step(self, inputs, dtype):
        self.step()

    def track_p99_microseconds(self, inputs, dtype):
        step, clock = self.step, time.perf_counter_ns
        for _ in range(self.WARM_STEPS):
            step()
        times = np.empty(self.STEPS)
        for i in range(self.STEPS):
            start = clock()
            step()
            times[i] = clock() - start
        return three_digits(np.percentile(times, 99) / 1000)
    track_p99_microseconds.unit = "us"


class StreamSteps(Streaming):
    """The same steps through ``model.stream(h0=state)`` (``fastrnn.Stream``),
    which validates the network and the state once and keeps them:
    ``stream.step(x)`` with x a token id or a vector (k,)."""

    def setup(self, inputs, dtype):
        super().setup(inputs, dtype)
        if not hasattr(self.model, "stream"):
            skip("this commit has no model.stream()")
        self.stream = self.model.stream(h0=self.state)
        self.inputs = [x[0] for x in self.steps]       # an id, or a vector (k,)
        self.step = self.stream_step                   # what the timings call
        for _ in range(2):
            self.step()

    def stream_step(self):
        self.i = (self.i + 1) % len(self.inputs)
        self.stream.step(self.inputs[self.i])
