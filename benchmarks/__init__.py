"""airspeed velocity (asv) benchmarks of fastrnn, and the helpers they share.

How to run them, and how to build and publish their history: docs/benchmarks.md.

The data are the named cases of ``fastrnn.cli.cases`` (``fastrnn.cases`` on
older commits, a copy here for commits whose wheel lacks both; the same
cases ``fastrnn bench`` measures), seeded, so every run of every commit
times the same arrays. The helpers keep four promises:

* nothing is compiled inside a timing: ``setup`` calls :func:`warm_up`,
  which runs the benchmarked call once on the very arrays that are timed,
  once per process (asv calls ``setup`` again between samples; the second
  and later calls cost a dictionary look-up);
* a benchmark that cannot run on the commit being measured raises
  ``NotImplementedError`` in ``setup``, which asv records as skipped: an
  older commit without the GRU, without stacked or bidirectional layers, without
  float32, ``fit_many`` or a carried state in ``predict_proba``; and
  anything that needs PyTorch or threadpoolctl where they are not installed;
* :func:`speedup` times two calls side by side in one process, in
  alternating blocks, and returns the ratio of their median times;
* the ``threads`` parameter: ``"1"`` runs everything on one core (NumPy's
  BLAS limited by threadpoolctl, PyTorch by ``torch.set_num_threads(1)``,
  fastrnn by ``FASTRNN_NUM_THREADS=1`` and ``fastrnn._parallel.
  threads_limited(1)``), ``"default"`` leaves every library its default
  threads (on these machines: both cores).

In-process timings of NumPy (the reference) depend on the environment
asv passes down: where ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are
set (the project's machines set them), OpenBLAS runs older kernels, up to
2.7x slower. Run asv with them unset for the machine's real BLAS:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE asv run ...``. The
subprocesses these benchmarks start to time BLAS themselves (the DGEMM
rate of ``bench_throughput.KernelRate``) unset both.

Names here must not start with ``time_``, ``track_``, ``peakmem_`` or
``mem_``: asv would take them for benchmarks.
"""
import collections
import contextlib
import functools
import gc
import math
import os
import statistics
import sys
import time

import numpy as np

# The names of fastrnn.cli.cases.CASES, smallest first (tests/test_benchmarks.py
# checks that they agree). Spelled out here so that asv can list the
# parameters of the suite even on a commit whose fastrnn has no cases module.
CASES = ("toy", "charlm", "batch", "wide", "long")
CELLS = ("rnn", "lstm", "gru")
BACKENDS = ("numba", "numpy")
DTYPES = ("float64", "float32")
THREADS = ("1", "default")
SEED = 0

# Training settings per case; the rest are FastRNN's defaults (one update
# per epoch over the whole batch). charlm trains as min-char-rnn:
# truncated BPTT over 25 steps with Adagrad. The optimizer is given for
# every case: the default changed (sgd, then adam) and a benchmark must
# time the same training on every commit.
FIT_OPTIONS = {"charlm": {"bptt": 25, "optimizer": "adagrad"}}
DEFAULT_OPTIMIZER = "sgd"

# speedup(): each sample lasts at least MIN_SAMPLE_SECONDS (small cases are
# called several times per sample). Samples come in blocks, one side then
# the other, ROUNDS times; a block takes at least MIN_REPEAT samples (of a
# call longer than LONG_CALL_SECONDS: MIN_REPEAT_LONG) and lasts at least
# BLOCK_SECONDS, after SETTLE_SECONDS of untimed calls.
MIN_SAMPLE_SECONDS = 0.002
MIN_REPEAT = 5
MIN_REPEAT_LONG = 2
LONG_CALL_SECONDS = 0.05
ROUNDS = 3
BLOCK_SECONDS = 0.2
SETTLE_SECONDS = 0.1

# Environment variables that make OpenBLAS slower on these machines: unset in
# the subprocesses that time BLAS (see the module docstring).
SLOW_BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def skip(reason):
    """asv's way of skipping a parameter combination: NotImplementedError in
    setup."""
    raise NotImplementedError(reason)


# ------------------------------------------------------------------ fastrnn
def cases_module():
    """fastrnn.cli.cases, or fastrnn.cases on commits before the CLI became a
    package, or (a few commits whose wheel left out ``fastrnn.cli``) this
    suite's copy of them, :class:`_BuiltinCases`."""
    try:
        from fastrnn.cli import cases
    except ImportError:
        try:
            from fastrnn import cases
        except ImportError:
            return _BuiltinCases
    return cases


class _BuiltinCases:
    """A copy of ``fastrnn.cli.cases`` (same sizes, same seeded draws), for
    the commits whose wheel has no cases module although fastrnn has one
    (a5c8781..d192fdd: the ``fastrnn.cli`` package missing from
    pyproject.toml's list)."""
    Case = collections.namedtuple("Case", "name k d T B inputs about")
    CASES = {case.name: case for case in (
        Case("toy", 4, 3, 3, 1, "onehot", "the assignment of the lecture notes"),
        Case("charlm", 65, 100, 25, 1, "ids", "min-char-rnn: 65 characters, 25-step chunks"),
        Case("batch", 64, 128, 50, 32, "dense", "a mini-batch of 32 sequences"),
        Case("wide", 64, 256, 50, 32, "dense", "the same with 256 hidden units"),
        Case("long", 8, 32, 1000, 4, "dense", "few units, long sequences"),
    )}

    @classmethod
    def make_case(cls, name, cell="rnn", seed=0, n_layers=1, bidirectional=False):
        import fastrnn
        case = cls.CASES[name]
        rng = np.random.default_rng(seed)
        deep = {"n_layers": n_layers, "bidirectional": bidirectional} \
            if n_layers != 1 or bidirectional else {}
        params = fastrnn.init_params(case.k, case.d, cell=cell, random_state=rng, **deep)
        if name == "toy":
            return params, np.eye(4)[[0, 1, 2]], np.array([1, 2, 3])
        shape = (case.T,) if case.B == 1 else (case.B, case.T)
        y = rng.integers(0, case.k, size=shape)
        if case.inputs == "ids":
            X = rng.integers(0, case.k, size=shape)
        elif case.inputs == "onehot":
            X = np.eye(case.k)[rng.integers(0, case.k, size=shape)]
        else:
            X = rng.standard_normal(shape + (case.k,))
        return params, X, y


@functools.lru_cache(maxsize=None)
def case_data(name, cell, dtype="float64", n_layers=1, bidirectional=False):
    """(params, X, y, case) of a named case: the arrays of
    ``make_case(name, cell, SEED)``, made once per process, in ``dtype``
    (float32: the float64 draws rounded, as ``init_params(dtype="float32")``
    makes them; float inputs in float32 too, as a float32 user passes them;
    token ids unchanged). The arrays are shared by every benchmark of the
    process: fastrnn never modifies its inputs."""
    cases = cases_module()
    if cell != "rnn":
        require_cell(cell)
    if dtype != "float64":
        require_float32()
    if n_layers != 1 or bidirectional:
        require_deep(cell)
        params, X, y = cases.make_case(name, cell=cell, seed=SEED, n_layers=n_layers,
                                       bidirectional=bidirectional)
    else:
        params, X, y = cases.make_case(name, cell=cell, seed=SEED)
    if dtype != "float64":
        params = {key: value.astype(dtype) for key, value in params.items()}
        if X.dtype.kind == "f":
            X = X.astype(dtype)
    return params, X, y, cases.CASES[name]


def _probe(what, call):
    try:
        return call()
    except (NotImplementedError, TypeError, ValueError, KeyError, ImportError) as exc:
        skip(f"{what} is not available in this commit of fastrnn "
             f"({type(exc).__name__}: {exc})")


@functools.lru_cache(maxsize=None)
def require_cell(cell):
    """Skip unless loss_and_grad of this commit runs ``cell`` (probed once
    per process, on a tiny network with the NumPy reference, so that the
    probe loads no compiled kernel; a missing kernel then raises
    NotImplementedError itself, in the warm-up)."""
    import fastrnn
    X, y = np.eye(4)[[0, 1, 2]], np.array([1, 2, 3])

    def probe():
        params = fastrnn.init_params(4, 3, cell=cell, random_state=SEED)
        fastrnn.loss_and_grad(params, X, y, backend="numpy")
    _probe(f"cell={cell!r}", probe)
    return True


@functools.lru_cache(maxsize=None)
def require_float32():
    """Skip unless float32 parameters compute in float32 (older commits
    convert them to float64)."""
    import fastrnn

    def probe():
        params = fastrnn.init_params(4, 3, random_state=SEED, dtype="float32")
        probs, _ = fastrnn.forward(params, np.array([0, 1, 2]), backend="numpy")
        if probs.dtype != np.float32:
            raise TypeError(f"float32 parameters gave {probs.dtype} outputs")
    _probe("float32", probe)
    return True


@functools.lru_cache(maxsize=None)
def require_deep(cell):
    """Skip unless this commit has stacked and bidirectional networks."""
    import fastrnn

    def probe():
        params = fastrnn.init_params(4, 3, cell=cell, random_state=SEED, n_layers=2,
                                     bidirectional=True)
        fastrnn.loss_and_grad(params, np.array([0, 1, 2]), np.array([1, 2, 3]),
                              backend="numpy")
    _probe("n_layers=2, bidirectional=True", probe)
    return True


def estimator(name, cell, backend, epochs=1, dtype="float64"):
    """An unfitted FastRNN for a named case: d hidden units of the case,
    k = m = the case's k (so the sizes never depend on which ids happen to
    occur in the data), fixed random_state and optimizer."""
    import fastrnn
    case = case_data(name, cell, dtype)[3]
    options = {"optimizer": DEFAULT_OPTIMIZER, **FIT_OPTIONS.get(name, {})}
    if dtype != "float64":
        options["dtype"] = dtype
    return fastrnn.FastRNN(n_hidden=case.d, cell=cell, backend=backend, epochs=epochs,
                           random_state=SEED, n_inputs=case.k, n_outputs=case.k, **options)


# ------------------------------------------------------------------ threads
def blas_info():
    """threadpoolctl's description of the BLAS libraries loaded (kernel,
    threads), or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{key: info.get(key) for key in ("internal_api", "architecture", "num_threads",
                                             "version")}
            for info in threadpool_info() if info.get("user_api") == "blas"]


@contextlib.contextmanager
def _environ(name, value):
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def _torch_threads(n):
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def limit_threads(threads):
    """Enter the thread setting ``threads`` ("1" or "default", see the
    module docstring); returns an ExitStack to close in ``teardown``.
    Import PyTorch before calling this, so that its threads are limited too.
    Skips the combination where one thread cannot be guaranteed (no
    threadpoolctl to limit NumPy's BLAS)."""
    stack = contextlib.ExitStack()
    if threads == "default":
        return stack
    if threads != "1":
        raise ValueError(f"threads: expected '1' or 'default', got {threads!r}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        skip("threads='1' needs threadpoolctl to limit NumPy's BLAS (pip install threadpoolctl)")
    with stack:                                   # closed again only if something fails
        stack.enter_context(threadpool_limits(limits=1))
        stack.enter_context(_torch_threads(1))
        stack.enter_context(_environ("FASTRNN_NUM_THREADS", "1"))
        try:
            from fastrnn._parallel import threads_limited
        except ImportError:                       # older commits: the variable alone
            pass
        else:
            stack.enter_context(threads_limited(1))
        return stack.pop_all()


class ThreadsMixin:
    """setup_threads(threads) in ``setup``; teardown undoes it."""
    _thread_limits = None

    def setup_threads(self, threads):
        self.teardown_threads()
        self._thread_limits = limit_threads(threads)

    def teardown_threads(self):
        if self._thread_limits is not None:
            self._thread_limits.close()
            self._thread_limits = None

    def teardown(self, *params):
        self.teardown_threads()


# -------------------------------------------------------------------- torch
def import_torch():
    """torch, or skip."""
    try:
        import torch
    except ImportError:
        skip("PyTorch is not installed (pip install torch)")
    except Exception as exc:                      # a broken installation
        skip(f"PyTorch could not be imported ({type(exc).__name__}: {exc})")
    return torch


def torch_step(torch, cell, k, d, m, X, y, dtype, n_layers=1, bidirectional=False):
    """PyTorch's forward + backward of the network fastrnn's
    ``loss_and_grad`` computes (nn.RNN(tanh)/nn.LSTM/nn.GRU, then nn.Linear
    and the summed cross-entropy over the batch size), on the same data
    (token ids as one-hot vectors), in ``dtype`` ("float32"/"float64").
    Built here, with PyTorch's own seeded initialisation, rather than
    through fastrnn's converters: its time must not depend on the fastrnn
    commit being measured (the weights' values do not change the time)."""
    torch.manual_seed(SEED)
    tdtype = getattr(torch, dtype)
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    rnn = module(k, d, num_layers=n_layers, bidirectional=bidirectional,
                 batch_first=True).to(tdtype)
    linear = torch.nn.Linear((2 if bidirectional else 1) * d, m).to(tdtype)
    X = np.asarray(X)
    if X.dtype.kind in "iu":
        X = np.eye(k)[X]
    if X.ndim == 2:
        X = X[None]
    inputs = torch.from_numpy(np.ascontiguousarray(X)).to(tdtype)
    targets = torch.from_numpy(np.asarray(y).reshape(-1)).long()
    batch = inputs.shape[0]
    parameters = list(rnn.parameters()) + list(linear.parameters())

    def step():
        for p in parameters:
            p.grad = None
        hidden, _ = rnn(inputs)
        logits = linear(hidden).reshape(-1, m)
        loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum") / batch
        loss.backward()
    return step


# ------------------------------------------------------------------- timing
_warm = set()


def warm_up(key, func):
    """Call ``func()`` once per process per ``key``: compiles (or loads from
    Numba's cache) every kernel the timed call will use, for exactly the
    types, dims and layouts it will see, outside of any timing."""
    if key not in _warm:
        func()
        _warm.add(key)


def _sample(func, calls):
    """Seconds per call of ``calls`` back-to-back calls, the garbage
    collector off as in timeit."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(calls):
            func()
        return (time.perf_counter() - start) / calls
    finally:
        if gc_was_enabled:
            gc.enable()


def _calls_per_sample(func):
    """(calls per sample, samples per block at least) for ``func``."""
    seconds = _sample(func, 1)
    calls = max(1, min(1000, math.ceil(MIN_SAMPLE_SECONDS / max(seconds, 1e-9))))
    return calls, min(MIN_REPEAT, MIN_REPEAT_LONG) if seconds > LONG_CALL_SECONDS \
        else MIN_REPEAT


def _block(func, sampling):
    """Samples of ``func`` for one block, after the settling calls."""
    calls, min_repeat = sampling
    start = time.perf_counter()
    while time.perf_counter() - start < SETTLE_SECONDS:
        func()
    times = []
    start = time.perf_counter()
    while len(times) < min_repeat or time.perf_counter() - start < BLOCK_SECONDS:
        times.append(_sample(func, calls))
    return times


def three_digits(value):
    return float(f"{value:.3g}")                  # 3 digits: more would be noise


def speedup(reference, kernel):
    """median time of ``reference()`` / median time of ``kernel()``, to
    three significant digits.

    Both must be warmed up. Blocks of samples alternate, reference then
    kernel, so that a slow spell of a shared machine hits both alike. Each
    block first runs its function untimed for a while: NumPy's BLAS threads
    keep spinning for tens of milliseconds after a call and slow down
    whatever runs next (measured on the wide case: a kernel call right after
    a reference call took 30 ms, after another kernel call 17 ms)."""
    ref_sampling, kernel_sampling = _calls_per_sample(reference), _calls_per_sample(kernel)
    ref_times, kernel_times = [], []
    for _ in range(ROUNDS):
        ref_times += _block(reference, ref_sampling)
        kernel_times += _block(kernel, kernel_sampling)
    return three_digits(statistics.median(ref_times) / statistics.median(kernel_times))


def median_seconds(func):
    """Median seconds of one call of ``func`` (warmed up), over ROUNDS
    blocks of samples as in :func:`speedup`."""
    sampling = _calls_per_sample(func)
    times = []
    for _ in range(ROUNDS):
        times += _block(func, sampling)
    return statistics.median(times)


def paired_ratio(first, second, rounds=None):
    """median time of ``first()`` / median time of ``second()`` for calls
    too long for :func:`speedup`'s blocks (a second or more each): single
    calls, alternating, ``rounds`` (default ROUNDS) of each; both warmed up."""
    first_times, second_times = [], []
    for _ in range(rounds or ROUNDS):
        first_times.append(_sample(first, 1))
        second_times.append(_sample(second, 1))
    return statistics.median(first_times) / statistics.median(second_times)
