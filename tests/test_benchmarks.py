"""The asv benchmarks (``benchmarks/``) run: every benchmark class is found,
set up and each of its benchmark methods called once, for every parameter
combination at the smallest size, so that a broken benchmark fails here and
not only in an asv run. asv itself is not needed.

Smallest size: of a ``case`` parameter only the smallest case the class
lists (toy for most; charlm for the deep networks, batch for the kernel
rate); the unparameterised sizes are shrunk by :func:`tiny` (fewer models,
a shorter text, fewer steps, a smaller DGEMM, a shorter sequence for the
peak memory), and the first-run benchmark runs its tiny variant: its
subprocess with ``NUMBA_DISABLE_JIT=1`` (``bench_start.EXTRA_ENV``), so it
compiles nothing (a cold compilation takes 20-60 s; asv runs the real one).

On this commit no benchmark may skip, except those that need PyTorch when
it is not importable.
"""
import importlib
import inspect
import itertools
import json
import math
import pkgutil
import sys
from pathlib import Path

import pytest

from _optional import require

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:                # `pytest` as well as `python -m pytest`
    sys.path.insert(0, str(ROOT))

import benchmarks  # noqa: E402
from fastrnn.cli.cases import CASES  # noqa: E402

BENCHMARK_PREFIXES = ("time_", "timeraw_", "peakmem_", "mem_", "track_")


def benchmark_modules():
    return [importlib.import_module(f"benchmarks.{info.name}")
            for info in pkgutil.iter_modules(benchmarks.__path__)]


def benchmark_classes():
    modules = benchmark_modules()
    assert modules, "no benchmark modules in benchmarks/"
    return [cls for module in modules
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__ and benchmark_methods(cls)]


def benchmark_methods(cls):
    return [name for name in dir(cls) if name.startswith(BENCHMARK_PREFIXES)]


def smallest(values):
    """The smallest case of a class's ``case`` values."""
    return [min(values, key=benchmarks.CASES.index)]


def runs():
    """(class, parameter tuple) for every class: the smallest case, every
    other parameter's every value."""
    for cls in benchmark_classes():
        names = getattr(cls, "param_names", [])
        values = [smallest(v) if name == "case" else list(v)
                  for name, v in zip(names, getattr(cls, "params", []))]
        for combo in itertools.product(*values):
            yield pytest.param(cls, combo, id="-".join((cls.__name__,) + combo))


def test_case_names_match_fastrnn():
    assert benchmarks.CASES == tuple(CASES)


def test_builtin_cases_are_fastrnns():
    """The suite's copy of the cases (for commits whose wheel lacks them)
    makes the arrays fastrnn.cli.cases makes."""
    import numpy as np
    from fastrnn.cli.cases import make_case
    assert benchmarks._BuiltinCases.CASES == {name: tuple(case) for name, case in CASES.items()}
    for name in CASES:
        for cell, layers, bidirectional in (("rnn", 1, False), ("gru", 2, False),
                                            ("lstm", 2, True)):
            ours = benchmarks._BuiltinCases.make_case(name, cell, 0, layers, bidirectional)
            theirs = make_case(name, cell, 0, layers, bidirectional)
            assert ours[0].keys() == theirs[0].keys()
            for a, b in zip((*ours[0].values(), *ours[1:]), (*theirs[0].values(), *theirs[1:])):
                np.testing.assert_array_equal(a, b)


def test_estimators_of_every_case():
    """The estimators the fit benchmarks build, for every case (the runs
    below fit only the smallest)."""
    for name in CASES:
        for dtype in benchmarks.DTYPES:
            model = benchmarks.estimator(name, "lstm", "numba", dtype=dtype)
            options = {"optimizer": "sgd", **benchmarks.FIT_OPTIONS.get(name, {})}
            assert {key: model.get_params()[key] for key in options} == options
            assert model.get_params()["dtype"] == dtype


def test_every_class_is_parameterised_readably():
    classes = benchmark_classes()
    names = {cls.__name__ for cls in classes}
    assert {"Forward", "LossAndGrad", "Fit", "FitToy", "PeakMemoryRatio", "SpeedupForward",
            "SpeedupLossAndGrad", "SpeedupFit", "SpeedupTwins", "SpeedupTorch", "Deep",
            "DeepVsTorch", "KernelRate", "TextStreams", "FitMany", "Streaming",
            "StreamSteps", "FirstRun"} <= names, names
    for cls in classes:
        params = getattr(cls, "params", [])
        assert len(params) == len(getattr(cls, "param_names", [])), cls
        for values in params:
            assert values and all(isinstance(v, str) for v in values), (cls, values)
        assert getattr(cls, "timeout", 0) > 0, cls


def test_every_cell_and_dtype_is_benchmarked():
    from fastrnn._cells import CELL_NAMES
    assert set(benchmarks.CELLS) == set(CELL_NAMES)
    assert benchmarks.DTYPES == ("float64", "float32")


def test_asv_config():
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    assert conf["project"] == "fastrnn" and conf["repo"] == "."
    assert (ROOT / conf.get("benchmark_dir", "benchmarks")).is_dir()
    # What the suite imports in asv's own virtualenvs, and what builds the wheel.
    assert set(conf["matrix"]["req"]) >= {"numpy", "numba", "threadpoolctl", "build"}


@pytest.fixture
def tiny(monkeypatch):
    """The smallest sizes (see the module docstring)."""
    from benchmarks import bench_rnn, bench_start, bench_throughput
    monkeypatch.setattr(benchmarks, "MIN_REPEAT", 1)
    monkeypatch.setattr(benchmarks, "ROUNDS", 1)
    monkeypatch.setattr(benchmarks, "BLOCK_SECONDS", 0.0)
    monkeypatch.setattr(benchmarks, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(bench_rnn.PeakMemoryRatio, "N", 2_000)
    monkeypatch.setattr(bench_throughput, "DGEMM_N", 64)
    monkeypatch.setattr(bench_throughput, "DGEMM_REPEAT", 1)
    monkeypatch.setattr(bench_throughput.TextStreams, "TEXT_CHARS", 2 * 32 * 25 + 1)
    monkeypatch.setattr(bench_throughput.FitMany, "N_MODELS", 4)
    monkeypatch.setattr(bench_throughput.Streaming, "STEPS", 100)
    monkeypatch.setattr(bench_throughput.Streaming, "WARM_STEPS", 5)
    monkeypatch.setattr(bench_start, "EXTRA_ENV", {"NUMBA_DISABLE_JIT": "1"})
    bench_throughput.dgemm_rate.cache_clear()
    yield
    bench_throughput.dgemm_rate.cache_clear()


# A benchmark skips itself (NotImplementedError) where an optional package
# of the bench extra is missing: the test skips then too, or fails in CI.
OPTIONAL = {"PyTorch": "torch", "threadpoolctl": "threadpoolctl"}


def _skip_if_a_package_is_missing(reason):
    for word, module in OPTIONAL.items():
        if word in reason:
            require(module, reason)


@pytest.mark.parametrize("cls, combo", list(runs()))
def test_benchmark_runs(cls, combo, tiny):
    bench = cls()
    try:
        bench.setup(*combo)
    except NotImplementedError as exc:
        _skip_if_a_package_is_missing(str(exc))
        raise
    try:
        bench.setup(*combo)                   # asv may call setup again
        for name in benchmark_methods(cls):
            result = getattr(bench, name)(*combo)
            if name.startswith("track_"):
                assert isinstance(result, float) and math.isfinite(result) and result > 0, \
                    (name, combo, result)
                unit = getattr(getattr(bench, name), "unit", None)
                assert isinstance(unit, str) and unit, (name, unit)
            else:
                assert result is None, (name, combo, result)
    finally:
        if hasattr(bench, "teardown"):
            bench.teardown(*combo)


def test_one_thread_is_restored():
    """threads="1" limits NumPy, PyTorch and fastrnn, and teardown undoes it."""
    import os
    from fastrnn import _parallel
    pytest.importorskip("threadpoolctl")
    before = (_parallel.num_threads(), os.environ.get("FASTRNN_NUM_THREADS"),
              benchmarks.blas_info())
    limits = benchmarks.limit_threads("1")
    try:
        assert _parallel.num_threads() == 1
        assert all(info["num_threads"] == 1 for info in benchmarks.blas_info())
    finally:
        limits.close()
    assert (_parallel.num_threads(), os.environ.get("FASTRNN_NUM_THREADS"),
            benchmarks.blas_info()) == before


def test_multiply_add_count():
    """The kernel-rate count: the README's 143 million for the simple RNN
    at batch (k=m=64, d=128, 32 x 50 steps)."""
    from benchmarks.bench_throughput import multiply_adds
    assert multiply_adds("rnn", 64, 128, 64, 1600) == 1600 * (2 * 128 * 64 + 3 * 128 * 128
                                                                + 3 * 64 * 128)
    assert 143e6 < multiply_adds("rnn", 64, 128, 64, 1600) < 145e6
