"""float32, end to end (docs/math.md, "float32"): a network whose parameters
are float32 computes in float32, in both twins, with the loss and the
gradient-norm sums accumulated in float64.

Bounds, on shapes with T ≤ 100, d ≤ 256 and weights at initialisation
scale: the float32 kernels vs the float32 reference ≤ 1e-4 normwise (loss,
outputs, every gradient); either float32 twin vs the float64 reference
≤ 1e-3. The float32 kernels must really compute in float32: their
generated code holds no double-precision arithmetic.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastrnn
from _metrics import normwise
from _registry import ARCHITECTURES, HEADS, arch_id, head_id, make_problem

pytestmark = pytest.mark.kernels

# (T, d) of the problems: the bounds' corners.
SIZES = {"small": (5, 4), "long": (100, 16), "wide": (20, 256)}


def _problem(arch, head, size, seed=0):
    """A problem of the registry, with parameters at initialisation scale
    (init_params) and T, d as given."""
    T, d = SIZES[size]
    cell, layers, bidirectional = arch
    rng = np.random.default_rng([seed, ARCHITECTURES.index(arch), HEADS.index(head)])
    params = fastrnn.init_params(3, d, 3, cell=cell, n_layers=layers,
                                 bidirectional=bidirectional, random_state=rng)
    X = rng.normal(0, 1, (2, T, 3))
    if head[0] == "cross_entropy":
        y = rng.integers(0, 3, 2 if head[1] == "last_step" else (2, T))
    else:
        y = rng.normal(0, 1, (2, 3) if head[1] == "last_step" else (2, T, 3))
    return params, X, y, {"loss": head[0], "output": head[1]}


def _results(params, X, y, kwargs, backend):
    loss, grads, dh0 = fastrnn.loss_and_grad(params, X, y, backend=backend, return_dh0=True,
                                             **kwargs)
    probs = fastrnn.forward(params, X, backend=backend, **kwargs)[0]
    return {"loss": loss, "probs": probs, "dh0": dh0, **grads}


def _worst(a, b):
    return max(normwise(np.asarray(a[key], float).ravel() if not isinstance(a[key], tuple)
                        else np.concatenate([np.ravel(v) for v in a[key]]),
                        np.asarray(b[key], float).ravel() if not isinstance(b[key], tuple)
                        else np.concatenate([np.ravel(v) for v in b[key]]))
               for key in b)


CASES = [(arch, head, "small") for arch in ARCHITECTURES for head in HEADS[:2]] + \
    [(arch, head, size) for arch in ARCHITECTURES if arch[1] == 1 and not arch[2]
     for head in HEADS for size in ("long", "wide")]


@pytest.mark.parametrize("arch, head, size", CASES,
                         ids=[f"{arch_id(a)}-{head_id(h)}-{s}" for a, h, s in CASES])
def test_float32_twins_within_the_bounds(arch, head, size):
    params, X, y, kwargs = _problem(arch, head, size)
    single = {key: value.astype(np.float32) for key, value in params.items()}
    kernel = _results(single, X, y, kwargs, "numba")
    reference = _results(single, X, y, kwargs, "numpy")
    exact = _results(params, X, y, kwargs, "numpy")
    for key in ("probs",) + tuple(params):
        assert np.asarray(kernel[key]).dtype == np.float32, key
        assert np.asarray(reference[key]).dtype == np.float32, key
    assert isinstance(kernel["loss"], float)
    assert _worst(kernel, reference) <= 1e-4
    assert _worst(kernel, exact) <= 1e-3
    assert _worst(reference, exact) <= 1e-3


def test_float32_is_not_float64():
    """The float32 results are float32 computations, not float64 ones
    rounded at the end: they differ from float64 by far more than rounding
    the float64 result would (a test that would pass if the kernels widened
    everything to float64 could not tell the two apart)."""
    params, X, y, kwargs = _problem(("lstm", 1, False), HEADS[0], "long")
    single = {key: value.astype(np.float32) for key, value in params.items()}
    kernel = _results(single, X, y, kwargs, "numba")
    exact = _results({k: v.astype(np.float32).astype(np.float64) for k, v in single.items()},
                     X.astype(np.float32).astype(np.float64), y, kwargs, "numpy")
    rounded = {key: np.asarray(value, np.float32) for key, value in exact.items()
               if key != "loss" and not isinstance(value, tuple)}
    differs = [normwise(kernel[key], rounded[key]) for key in rounded]
    assert max(differs) > 1e-7


def test_params_that_mix_float32_and_float64_are_refused():
    params = fastrnn.init_params(3, 4)
    params["W_h"] = params["W_h"].astype(np.float32)
    with pytest.raises(ValueError, match=r"^params: .*float32"):
        fastrnn.forward(params, np.zeros((2, 3)))


def test_init_params_dtype():
    params = fastrnn.init_params(3, 4, cell="gru", dtype="float32", random_state=0)
    assert all(value.dtype == np.float32 for value in params.values())
    exact = fastrnn.init_params(3, 4, cell="gru", random_state=0)
    assert all(np.array_equal(params[key], exact[key].astype(np.float32)) for key in params)
    with pytest.raises(ValueError, match=r"^dtype:"):
        fastrnn.init_params(3, 4, dtype="float16")


def test_inputs_beyond_float32_are_refused_with_the_range():
    params = fastrnn.init_params(3, 4, dtype="float32")
    X = np.zeros((2, 3))
    X[1, 2] = 1e39
    with pytest.raises(ValueError, match=r"^X: expected finite numbers .*\(float32 holds at most"):
        fastrnn.forward(params, X)


@pytest.mark.parametrize("cls, y", [(fastrnn.FastRNN, "classes"),
                                    (fastrnn.FastRNNRegressor, "values")])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_estimators_train_in_float32(cls, y, cell, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (6, 10, 3))
    target = rng.integers(0, 3, (6, 10)) if y == "classes" else rng.normal(0, 1, (6, 10))
    settings = dict(n_hidden=8, cell=cell, epochs=30, learning_rate=0.005, random_state=0)
    single = {b: cls(dtype="float32", backend=b, **settings).fit(X, target)
              for b in ("numba", "numpy")}
    double = cls(**settings).fit(X, target)
    for key, value in double.params_.items():
        assert single["numba"].params_[key].dtype == np.float32
        assert normwise(single["numba"].params_[key], single["numpy"].params_[key]) <= 1e-4
        assert normwise(single["numba"].params_[key], value) <= 1e-3
    out = single["numba"].predict(X)
    path = tmp_path / "m.npz"
    single["numba"].save(path)
    loaded = cls.load(path)
    assert loaded.params_["W_x"].dtype == np.float32
    np.testing.assert_array_equal(loaded.predict(X), out)
    with pytest.raises(ValueError, match=r"^dtype:"):
        cls(dtype="float32", warm_start=True, **settings).set_params(dtype="float64") \
            .fit(X, target).set_params(dtype="float32").fit(X, target)


def test_float32_kernels_do_no_double_arithmetic(tmp_path):
    """The generated code of the float32 kernels (the cells, the layers, the
    matrix products, the optimizer) holds no float64 multiply, add, subtract
    or divide and no widening: float32 stays float32 (Numba shows the code
    only for kernels it compiled in this process, so a fresh cache)."""
    script = textwrap.dedent("""
        import re, numpy as np, fastrnn
        from fastrnn.kernels import rnn, lstm, gru, layers, _linalg, optim
        rng = np.random.default_rng(0)
        X = rng.normal(size=(2, 5, 3))
        for cell in ("rnn", "lstm", "gru"):
            fastrnn.FastRNN(n_hidden=4, cell=cell, n_layers=2, dtype="float32", epochs=2,
                            optimizer="adam").fit(X, rng.integers(0, 3, (2, 5)))
        found = {}
        for mod, names in ((rnn, ("forward_steps", "backward_steps")),
                           (lstm, ("forward_steps", "backward_steps")),
                           (gru, ("forward_steps", "backward_steps")),
                           (layers, ("input_projection", "weight_gradients", "add_input_gradient")),
                           (_linalg, ("add_products", "_add_products_tiles")), (optim, ("optimizer_step",))):
            for name in names:
                # the optimizer's scalar set-up (bias corrections) may be float64;
                # its loops over the parameters may not
                vector = "<[0-9]+ x " if mod is optim else "(<[0-9]+ x )?"
                for sig, ir in getattr(mod, name).inspect_llvm().items():
                    if "float32" in str(sig):
                        found[mod.__name__ + "." + name] = len(re.findall(
                            r"f(mul|add|sub|div) " + vector + r"double|fpext " + vector, ir))
        print(found)
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    found = eval(out.stdout.strip().splitlines()[-1])
    assert len(found) == 12, sorted(found.items())
    assert all(count == 0 for count in found.values()), sorted(found.items())
