"""airspeed velocity (asv) benchmarks of fastrnn, and the helpers they share.

The data are the named cases of ``fastrnn.cases`` (the same cases
``fastrnn bench`` measures), seeded, so every run of every commit times the
same arrays. The helpers keep three promises:

* nothing is compiled inside a timing: ``setup`` calls :func:`warm_up`,
  which runs the benchmarked call once on the very arrays that are timed,
  once per process (asv calls ``setup`` again between samples; the second
  and later calls cost a dictionary look-up);
* a benchmark that cannot run on the commit being measured (an older commit
  without ``fastrnn.cases`` or without the LSTM) raises
  ``NotImplementedError`` in ``setup``, which asv records as skipped;
* :func:`speedup` times the reference and the kernel side by side in one
  process, in alternating blocks, and returns the ratio of their median
  times.

Names here must not start with ``time_``, ``track_``, ``peakmem_`` or
``mem_``: asv would take them for benchmarks.
"""
import functools
import gc
import math
import statistics
import time

import numpy as np

# The names of fastrnn.cases.CASES (tests/test_benchmarks.py checks that they
# agree). Spelled out here so that asv can list the parameters of the suite
# even on a commit whose fastrnn has no cases module.
CASES = ("toy", "charlm", "batch", "wide", "long")
CELLS = ("rnn", "lstm")
BACKENDS = ("numba", "numpy")
SEED = 0

# Training settings per case; the rest are FastRNN's defaults (one update
# per epoch over the whole batch, plain SGD). charlm trains as min-char-rnn:
# truncated BPTT over 25 steps with Adagrad.
FIT_OPTIONS = {"charlm": {"bptt": 25, "optimizer": "adagrad"}}

# speedup(): each sample lasts at least MIN_SAMPLE_SECONDS (small cases are
# called several times per sample). Samples come in blocks, reference then
# kernel, ROUNDS times; a block takes at least MIN_REPEAT samples and lasts at
# least BLOCK_SECONDS, after SETTLE_SECONDS of untimed calls.
MIN_SAMPLE_SECONDS = 0.002
MIN_REPEAT = 5
ROUNDS = 3
BLOCK_SECONDS = 0.2
SETTLE_SECONDS = 0.1

def skip(reason):
    """asv's way of skipping a parameter combination: NotImplementedError in
    setup."""
    raise NotImplementedError(reason)


@functools.lru_cache(maxsize=None)
def case_data(name, cell):
    """(params, X, y, case) of a named case: the arrays of
    ``fastrnn.cases.make_case(name, cell, SEED)``, made once per process.
    The arrays are shared by every benchmark of the process: fastrnn never
    modifies its inputs."""
    try:
        from fastrnn.cases import CASES as FASTRNN_CASES, make_case
    except ImportError:
        skip("this commit of fastrnn has no fastrnn.cases")
    if cell != "rnn":
        require_cell(cell)
    params, X, y = make_case(name, cell=cell, seed=SEED)
    return params, X, y, FASTRNN_CASES[name]


@functools.lru_cache(maxsize=None)
def require_cell(cell):
    """Skip unless loss_and_grad of this commit runs ``cell`` (probed once
    per process, on a tiny network with the NumPy reference, so that the
    probe loads no compiled kernel; a missing kernel then raises
    NotImplementedError itself, in the warm-up)."""
    import fastrnn
    X, y = np.eye(4)[[0, 1, 2]], np.array([1, 2, 3])
    try:
        params = fastrnn.init_params(4, 3, cell=cell, random_state=SEED)
        fastrnn.loss_and_grad(params, X, y, backend="numpy")
    except (NotImplementedError, TypeError, ValueError) as exc:
        skip(f"cell={cell!r} is not available in this commit of fastrnn "
             f"({type(exc).__name__}: {exc})")
    return True


def estimator(name, cell, backend, epochs=1):
    """An unfitted FastRNN for a named case: d hidden units of the case,
    k = m = the case's k (so the sizes never depend on which ids happen to
    occur in the data), fixed random_state."""
    import fastrnn
    case = case_data(name, cell)[3]
    return fastrnn.FastRNN(n_hidden=case.d, cell=cell, backend=backend, epochs=epochs,
                           random_state=SEED, n_inputs=case.k, n_outputs=case.k,
                           **FIT_OPTIONS.get(name, {}))


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
    seconds = _sample(func, 1)
    return max(1, min(1000, math.ceil(MIN_SAMPLE_SECONDS / max(seconds, 1e-9))))


def _block(func, calls):
    """Samples of ``func`` for one block, after the settling calls."""
    start = time.perf_counter()
    while time.perf_counter() - start < SETTLE_SECONDS:
        func()
    times = []
    start = time.perf_counter()
    while len(times) < MIN_REPEAT or time.perf_counter() - start < BLOCK_SECONDS:
        times.append(_sample(func, calls))
    return times


def speedup(reference, kernel):
    """median time of ``reference()`` / median time of ``kernel()``, to
    three significant digits.

    Both must be warmed up. Blocks of samples alternate, reference then
    kernel, so that a slow spell of a shared machine hits both alike. Each
    block first runs its function untimed for a while: NumPy's BLAS threads
    keep spinning for tens of milliseconds after a call and slow down
    whatever runs next (measured on the wide case: a kernel call right after
    a reference call took 30 ms, after another kernel call 17 ms)."""
    ref_calls, kernel_calls = _calls_per_sample(reference), _calls_per_sample(kernel)
    ref_times, kernel_times = [], []
    for _ in range(ROUNDS):
        ref_times += _block(reference, ref_calls)
        kernel_times += _block(kernel, kernel_calls)
    ratio = statistics.median(ref_times) / statistics.median(kernel_times)
    return float(f"{ratio:.3g}")                # 3 digits: more would be noise
