"""The asv benchmarks (``benchmarks/``) run: every benchmark class is found,
set up and each of its benchmark methods called once, for every cell and
backend, at the smallest case (toy), so that a broken benchmark fails here
and not only in an asv run. asv itself is not needed.
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:                # `pytest` as well as `python -m pytest`
    sys.path.insert(0, str(ROOT))

import benchmarks  # noqa: E402
from fastrnn.cases import CASES  # noqa: E402

BENCHMARK_PREFIXES = ("time_", "timeraw_", "peakmem_", "mem_", "track_")
SMALLEST = {"case": ["toy"]}                 # parameter values the test runs


def benchmark_classes():
    modules = [importlib.import_module(f"benchmarks.{info.name}")
               for info in pkgutil.iter_modules(benchmarks.__path__)]
    assert modules, "no benchmark modules in benchmarks/"
    return [cls for module in modules
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__ and benchmark_methods(cls)]


def benchmark_methods(cls):
    return [name for name in dir(cls) if name.startswith(BENCHMARK_PREFIXES)]


def runs():
    """(class, parameter tuple) for every class, toy only, all cells and
    backends."""
    for cls in benchmark_classes():
        names = getattr(cls, "param_names", [])
        values = [SMALLEST.get(name, list(v)) for name, v in zip(names, cls.params)]
        for combo in itertools.product(*values):
            yield pytest.param(cls, combo, id=f"{cls.__name__}-{'-'.join(combo)}")


def test_case_names_match_fastrnn():
    assert benchmarks.CASES == tuple(CASES)


def test_every_class_is_parameterised_readably():
    classes = benchmark_classes()
    names = {cls.__name__ for cls in classes}
    assert {"Forward", "LossAndGrad", "Fit", "FitToy", "SpeedupForward", "SpeedupLossAndGrad",
            "SpeedupFit", "SpeedupTwins"} <= names, names
    for cls in classes:
        assert len(cls.params) == len(cls.param_names), cls
        for values in cls.params:
            assert values and all(isinstance(v, str) for v in values), (cls, values)
        assert getattr(cls, "timeout", 0) > 0, cls


def test_asv_config():
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    assert conf["project"] == "fastrnn" and conf["repo"] == "."
    assert (ROOT / conf.get("benchmark_dir", "benchmarks")).is_dir()
    assert set(conf["matrix"]["req"]) >= {"numpy", "numba"}


@pytest.fixture
def quick_speedup(monkeypatch):
    monkeypatch.setattr(benchmarks, "MIN_REPEAT", 1)
    monkeypatch.setattr(benchmarks, "ROUNDS", 1)
    monkeypatch.setattr(benchmarks, "BLOCK_SECONDS", 0.0)
    monkeypatch.setattr(benchmarks, "SETTLE_SECONDS", 0.0)


@pytest.mark.parametrize("cls, combo", list(runs()))
def test_benchmark_runs(cls, combo, quick_speedup):
    bench = cls()
    bench.setup(*combo)
    bench.setup(*combo)                       # asv may call setup again
    for name in benchmark_methods(cls):
        result = getattr(bench, name)(*combo)
        if name.startswith("track_"):
            assert isinstance(result, float) and math.isfinite(result) and result > 0, \
                (name, combo, result)
            assert getattr(getattr(bench, name), "unit", None) == "x"
        else:
            assert result is None, (name, combo, result)
