"""Bad input is refused before any kernel runs (the kernels check no bounds),
with a ValueError or TypeError whose message starts with the name of the
offending argument; good input in any layout is accepted, never modified,
and gives the same numbers as the canonical C-contiguous float64 layout.
"""
import types

import numpy as np
import pytest

import fastrnn
from fastrnn import backends

K, D, M, T, B = 3, 4, 5, 4, 2
KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
BACKENDS = ("numba", "numpy")


def good_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"W_x": rng.normal(0, 0.8, (D, K)), "W_h": rng.normal(0, 0.8, (D, D)),
            "b_h": rng.normal(0, 0.8, D), "W_y": rng.normal(0, 0.8, (M, D)),
            "b_y": rng.normal(0, 0.8, M)}


def good_X():
    return np.random.default_rng(1).normal(0, 1, (T, K))


def good_y():
    return np.array([0, 4, 2, 1])


def with_param(key, value):
    p = good_params()
    p[key] = value
    return p


def with_nan(array, index, value=np.nan):
    array = np.array(array, dtype=float)
    array[index] = value
    return array


rng0 = np.random.default_rng(2)
X_BATCH = rng0.normal(0, 1, (B, T, K))
Y_BATCH = rng0.integers(0, M, (B, T))
X_LIST = [rng0.normal(0, 1, (3, K)), rng0.normal(0, 1, (1, K))]
Y_LIST = [np.array([0, 1, 2]), np.array([4])]
SOFT = np.full((T, M), 1.0 / M)

# (id, keyword overrides of loss_and_grad(params, X, y, h0, backend), exception, match)
# Messages must start with the argument's name.
BAD = [
    # X: not numbers
    ("X-None", dict(X=None), TypeError, r"^X:"),
    ("X-str", dict(X="abc"), TypeError, r"^X:"),
    ("X-bytes", dict(X=b"abc"), TypeError, r"^X:"),
    ("X-object", dict(X=np.array([[1.0, None, 2.0]] * T, dtype=object)), TypeError, r"^X:"),
    ("X-ragged-nested", dict(X=np.array([[1.0, 2.0, 3.0], [1.0]], dtype=object)), TypeError, r"^X:"),
    ("X-complex", dict(X=good_X().astype(complex)), TypeError, r"^X:"),
    ("X-bool", dict(X=good_X() > 0), TypeError, r"^X:"),
    ("X-str-array", dict(X=np.array([["a", "b", "c"]] * T)), TypeError, r"^X:"),
    ("X-dict", dict(X={"a": 1}), TypeError, r"^X:"),
    # X: wrong ndim / shape
    ("X-scalar-float", dict(X=1.5), ValueError, r"^X:"),
    ("X-scalar-int", dict(X=2), ValueError, r"^X:"),
    ("X-1d-float", dict(X=np.array([0.0, 1.0, 2.0, 1.0])), ValueError, r"^X:"),
    ("X-4d", dict(X=np.zeros((1, B, T, K))), ValueError, r"^X:"),
    ("X-3d-int-ids-ndim", dict(X=np.zeros((1, B, T, K), dtype=int)), ValueError, r"^X:"),
    ("X-wrong-k", dict(X=np.zeros((T, K + 1))), ValueError, r"^X:"),
    ("X-wrong-k-batch", dict(X=np.zeros((B, T, K - 1)), y=Y_BATCH), ValueError, r"^X:"),
    # X: values
    ("X-nan", dict(X=with_nan(good_X(), (1, 2))), ValueError, r"^X:"),
    ("X-inf", dict(X=with_nan(good_X(), (0, 0), np.inf)), ValueError, r"^X:"),
    ("X-neg-inf-batch", dict(X=with_nan(X_BATCH, (1, 3, 2), -np.inf), y=Y_BATCH),
     ValueError, r"^X:"),
    ("X-negative-id", dict(X=np.array([0, -1, 2, 1])), ValueError, r"^X:"),
    ("X-too-large-id", dict(X=np.array([0, 1, K, 1])), ValueError, r"^X:"),
    ("X-too-large-id-batch", dict(X=np.array([[0, 1, 2, 2], [0, 1, 2, K + 7]]), y=Y_BATCH),
     ValueError, r"^X:"),
    ("X-huge-uint-id", dict(X=np.array([0, 1, 2, 2**64 - 1], dtype=np.uint64)), ValueError, r"^X:"),
    # X: empty
    ("X-empty-2d", dict(X=np.empty((0, K)), y=np.empty(0, dtype=int)), ValueError, r"^X:"),
    ("X-empty-3d", dict(X=np.empty((B, 0, K)), y=np.empty((B, 0), dtype=int)), ValueError, r"^X:"),
    ("X-empty-batch", dict(X=np.empty((0, T, K)), y=np.empty((0, T), dtype=int)), ValueError, r"^X:"),
    ("X-empty-ids", dict(X=np.array([], dtype=int), y=np.array([], dtype=int)), ValueError, r"^X:"),
    ("X-empty-float-1d", dict(X=np.array([]), y=np.array([], dtype=int)), ValueError, r"^X:"),
    ("X-empty-list", dict(X=[], y=[]), ValueError, r"^X:"),
    ("X-empty-tuple", dict(X=(), y=()), ValueError, r"^X:"),
    # X: lists
    ("X-list-empty-seq", dict(X=[X_LIST[0], np.empty((0, K))], y=[Y_LIST[0], np.array([], int)]),
     ValueError, r"^X\[1\]:"),
    ("X-list-empty-ids", dict(X=[np.array([0, 1, 2]), np.array([], dtype=int)],
                              y=[Y_LIST[0], np.array([], int)]), ValueError, r"^X\[1\]:"),
    ("X-list-empty-pylist", dict(X=[X_LIST[0], []], y=Y_LIST), ValueError, r"^X\[1\]:"),
    ("X-list-None", dict(X=[X_LIST[0], None], y=Y_LIST), TypeError, r"^X\[1\]:"),
    ("X-list-str", dict(X=[X_LIST[0], "abc"], y=Y_LIST), TypeError, r"^X\[1\]:"),
    ("X-list-bool", dict(X=[X_LIST[0], X_LIST[1] > 0], y=Y_LIST), TypeError, r"^X\[1\]:"),
    ("X-list-complex", dict(X=[X_LIST[0].astype(complex), X_LIST[1]], y=Y_LIST),
     TypeError, r"^X\[0\]:"),
    ("X-list-wrong-k", dict(X=[X_LIST[0], np.zeros((1, K + 2))], y=Y_LIST), ValueError, r"^X\[1\]:"),
    ("X-list-3d", dict(X=[X_LIST[0], np.zeros((1, 1, K))], y=Y_LIST), ValueError, r"^X\[1\]:"),
    ("X-list-1d-float", dict(X=[X_LIST[0], np.array([0.5])], y=Y_LIST), ValueError, r"^X\[1\]:"),
    ("X-list-nan", dict(X=[X_LIST[0], with_nan(X_LIST[1], (0, 1))], y=Y_LIST), ValueError,
     r"^X\[1\]:"),
    ("X-list-negative-id", dict(X=[np.array([0, 1, 2]), np.array([-3])], y=Y_LIST), ValueError,
     r"^X\[1\]:"),
    ("X-list-too-large-id", dict(X=[np.array([0, 1, K]), np.array([1])], y=Y_LIST), ValueError,
     r"^X\[0\]:"),
    ("X-list-mixed", dict(X=[np.array([0, 1, 2]), X_LIST[1]], y=Y_LIST), ValueError, r"^X:"),
    # y: not numbers
    ("y-None", dict(y=None), TypeError, r"^y:"),
    ("y-str", dict(y="abcd"), TypeError, r"^y:"),
    ("y-object", dict(y=np.array([0, None, 1, 2], dtype=object)), TypeError, r"^y:"),
    ("y-complex", dict(y=SOFT.astype(complex)), TypeError, r"^y:"),
    ("y-bool", dict(y=np.eye(M, dtype=bool)[[0, 1, 2, 3]]), TypeError, r"^y:"),
    # y: shapes
    ("y-wrong-m-float", dict(y=np.full((T, M + 1), 1.0 / (M + 1))), ValueError, r"^y:"),
    ("y-wrong-m-fewer", dict(y=np.full((T, M - 1), 1.0 / (M - 1))), ValueError, r"^y:"),
    ("y-wrong-T-ids", dict(y=np.array([0, 1, 2])), ValueError, r"^y:"),
    ("y-wrong-T-float", dict(y=np.full((T + 1, M), 1.0 / M)), ValueError, r"^y:"),
    ("y-wrong-B", dict(X=X_BATCH, y=np.zeros((B + 1, T), dtype=int)), ValueError, r"^y:"),
    ("y-wrong-T-batch", dict(X=X_BATCH, y=np.zeros((B, T - 1), dtype=int)), ValueError, r"^y:"),
    ("y-single-for-batch", dict(X=X_BATCH, y=good_y()), ValueError, r"^y:"),
    ("y-int-one-hot", dict(y=np.eye(M, dtype=int)[good_y()]), ValueError, r"^y:"),
    ("y-float-ids", dict(y=good_y().astype(float)), ValueError, r"^y:"),
    ("y-scalar", dict(y=1), ValueError, r"^y:"),
    ("y-3d-for-single", dict(y=SOFT[None]), ValueError, r"^y:"),
    ("y-list-of-different-arrays", dict(y=[np.array([0, 1]), np.array([2, 3, 4])]),
     ValueError, r"^y:"),
    # y: values
    ("y-negative-label", dict(y=np.array([0, -1, 2, 1])), ValueError, r"^y:"),
    ("y-too-large-label", dict(y=np.array([0, 1, M, 1])), ValueError, r"^y:"),
    ("y-too-large-label-batch", dict(X=X_BATCH, y=with_nan(Y_BATCH, (1, 1), M).astype(int)),
     ValueError, r"^y:"),
    ("y-nan", dict(y=with_nan(SOFT, (2, 3))), ValueError, r"^y:"),
    ("y-inf", dict(y=with_nan(SOFT, (0, 0), np.inf)), ValueError, r"^y:"),
    ("y-not-summing-to-1", dict(y=np.full((T, M), 0.3)), ValueError, r"^y:"),
    ("y-zero-row", dict(y=with_nan(SOFT, (1, slice(None)), 0.0)), ValueError, r"^y:"),
    ("y-negative-entry", dict(y=np.tile([1.5, -0.5, 0, 0, 0], (T, 1))), ValueError, r"^y:"),
    # y with list X
    ("y-not-list-for-list-X", dict(X=X_LIST, y=np.array([0, 1, 2, 4])), ValueError, r"^y:"),
    ("y-None-for-list-X", dict(X=X_LIST, y=None), ValueError, r"^y:"),
    ("y-list-too-short", dict(X=X_LIST, y=Y_LIST[:1]), ValueError, r"^y:"),
    ("y-list-too-long", dict(X=X_LIST, y=Y_LIST + [np.array([1])]), ValueError, r"^y:"),
    ("y-list-wrong-length", dict(X=X_LIST, y=[Y_LIST[0], np.array([1, 2])]), ValueError,
     r"^y\[1\]:"),
    ("y-list-bad-label", dict(X=X_LIST, y=[Y_LIST[0], np.array([M])]), ValueError, r"^y\[1\]:"),
    ("y-list-None", dict(X=X_LIST, y=[Y_LIST[0], None]), TypeError, r"^y\[1\]:"),
    ("y-list-not-summing", dict(X=X_LIST, y=[Y_LIST[0], np.full((1, M), 0.5)]), ValueError,
     r"^y\[1\]:"),
    ("y-list-mixed", dict(X=X_LIST, y=[Y_LIST[0], np.eye(M)[[4]]]), ValueError, r"^y:"),
    # h0
    ("h0-str", dict(h0="zeros"), TypeError, r"^h0:"),
    ("h0-bool", dict(h0=np.zeros(D, dtype=bool)), TypeError, r"^h0:"),
    ("h0-complex", dict(h0=np.zeros(D, dtype=complex)), TypeError, r"^h0:"),
    ("h0-too-long", dict(h0=np.zeros(D + 1)), ValueError, r"^h0:"),
    ("h0-2d-for-single", dict(h0=np.zeros((1, D))), ValueError, r"^h0:"),
    ("h0-1d-for-batch", dict(X=X_BATCH, y=Y_BATCH, h0=np.zeros(D)), ValueError, r"^h0:"),
    ("h0-wrong-B", dict(X=X_BATCH, y=Y_BATCH, h0=np.zeros((B + 1, D))), ValueError, r"^h0:"),
    ("h0-1d-for-list", dict(X=X_LIST, y=Y_LIST, h0=np.zeros(D)), ValueError, r"^h0:"),
    ("h0-scalar", dict(h0=0.0), ValueError, r"^h0:"),
    ("h0-nan", dict(h0=with_nan(np.zeros(D), 2)), ValueError, r"^h0:"),
    ("h0-inf", dict(X=X_BATCH, y=Y_BATCH, h0=with_nan(np.zeros((B, D)), (1, 0), np.inf)),
     ValueError, r"^h0:"),
    # params
    ("params-None", dict(params=None), TypeError, r"^params"),
    ("params-list", dict(params=list(good_params().values())), TypeError, r"^params"),
    ("params-missing", dict(params={k: v for k, v in good_params().items() if k != "b_y"}),
     ValueError, r"^params"),
    ("params-extra", dict(params=dict(good_params(), W_z=np.zeros(3))), ValueError, r"^params"),
    ("params-empty", dict(params={}), ValueError, r"^params"),
    ("params-W_x-None", dict(params=with_param("W_x", None)), TypeError, r"^params\['W_x'\]"),
    ("params-W_h-str", dict(params=with_param("W_h", "eye")), TypeError, r"^params\['W_h'\]"),
    ("params-b_h-bool", dict(params=with_param("b_h", np.ones(D, bool))), TypeError,
     r"^params\['b_h'\]"),
    ("params-W_y-complex", dict(params=with_param("W_y", np.zeros((M, D), complex))), TypeError,
     r"^params\['W_y'\]"),
    ("params-W_x-1d", dict(params=with_param("W_x", np.zeros(D * K))), ValueError,
     r"^params\['W_x'\]"),
    ("params-b_h-2d", dict(params=with_param("b_h", np.zeros((D, 1)))), ValueError,
     r"^params\['b_h'\]"),
    ("params-W_h-not-square", dict(params=with_param("W_h", np.zeros((D, D + 1)))), ValueError,
     r"^params\['W_h'\]"),
    ("params-W_h-empty", dict(params=with_param("W_h", np.zeros((0, 0)))), ValueError,
     r"^params\['W_h'\]"),
    ("params-W_x-rows", dict(params=with_param("W_x", np.zeros((D + 1, K)))), ValueError,
     r"^params\['W_x'\]"),
    ("params-b_h-length", dict(params=with_param("b_h", np.zeros(D - 1))), ValueError,
     r"^params\['b_h'\]"),
    ("params-W_y-cols", dict(params=with_param("W_y", np.zeros((M, D + 1)))), ValueError,
     r"^params\['W_y'\]"),
    ("params-b_y-length", dict(params=with_param("b_y", np.zeros(M + 1))), ValueError,
     r"^params\['b_y'\]"),
    ("params-W_x-no-inputs", dict(params=with_param("W_x", np.zeros((D, 0)))), ValueError,
     r"^params\['W_x'\]"),
    ("params-W_y-no-outputs", dict(params=dict(good_params(), W_y=np.zeros((0, D)),
                                               b_y=np.zeros(0))),
     ValueError, r"^params\['(W_y|b_y)'\]"),
    ("params-W_x-nan", dict(params=with_param("W_x", with_nan(good_params()["W_x"], (0, 1)))),
     ValueError, r"^params\['W_x'\]"),
    ("params-W_h-inf", dict(params=with_param("W_h", with_nan(good_params()["W_h"], (2, 2),
                                                                np.inf))),
     ValueError, r"^params\['W_h'\]"),
    ("params-b_h-nan", dict(params=with_param("b_h", with_nan(np.zeros(D), 3))), ValueError,
     r"^params\['b_h'\]"),
    ("params-W_y-nan", dict(params=with_param("W_y", with_nan(np.zeros((M, D)), (4, 0)))),
     ValueError, r"^params\['W_y'\]"),
    ("params-b_y-inf", dict(params=with_param("b_y", with_nan(np.zeros(M), 0, -np.inf))),
     ValueError, r"^params\['b_y'\]"),
    # backend
    ("backend-unknown", dict(backend="torch"), ValueError, r"^backend:"),
    ("backend-case", dict(backend="NUMBA"), ValueError, r"^backend:"),
    ("backend-None", dict(backend=None), ValueError, r"^backend:"),
]

# The cases that do not depend on y also apply to forward (which ignores y).
BAD_FORWARD = [case for case in BAD if not case[0].startswith("y-")]


def call_loss(overrides):
    kwargs = dict(params=good_params(), X=good_X(), y=good_y(), h0=None, backend="numba")
    kwargs.update(overrides)
    return fastrnn.loss_and_grad(**kwargs)


def call_forward(overrides):
    kwargs = dict(params=good_params(), X=good_X(), h0=None, backend="numba")
    kwargs.update({k: v for k, v in overrides.items() if k != "y"})
    return fastrnn.forward(**kwargs)


def test_the_good_inputs_are_good():
    for overrides in (dict(), dict(X=X_BATCH, y=Y_BATCH), dict(X=X_LIST, y=Y_LIST),
                      dict(y=SOFT), dict(X=np.array([0, 1, 2, 1]))):
        loss, _ = call_loss(overrides)
        assert np.isfinite(loss)


@pytest.mark.parametrize("name,overrides,exc,match", BAD, ids=[c[0] for c in BAD])
def test_loss_and_grad_rejects(name, overrides, exc, match):
    with pytest.raises(exc, match=match):
        call_loss(overrides)


@pytest.mark.parametrize("name,overrides,exc,match", BAD_FORWARD, ids=[c[0] for c in BAD_FORWARD])
def test_forward_rejects(name, overrides, exc, match):
    with pytest.raises(exc, match=match):
        call_forward(overrides)


def test_error_messages_say_what_was_given():
    with pytest.raises(ValueError, match=r"^X: .*3 input features.*\(4, 5\)"):
        call_loss(dict(X=np.zeros((4, 5))))
    with pytest.raises(ValueError, match=r"^y: .*\[0, 4\].*found 7"):
        call_loss(dict(y=np.array([0, 7, 1, 1])))
    with pytest.raises(ValueError, match=r"^h0: .*\(4,\).*\(5,\)"):
        call_loss(dict(h0=np.zeros(5)))


# ---------------------------------------------------------------------------
# init_params

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(n_inputs=4, n_hidden=0), ValueError, r"^n_hidden:"),
    (dict(n_inputs=4, n_hidden=-3), ValueError, r"^n_hidden:"),
    (dict(n_inputs=4, n_hidden=3.0), TypeError, r"^n_hidden:"),
    (dict(n_inputs=4, n_hidden=2.5), TypeError, r"^n_hidden:"),
    (dict(n_inputs=4, n_hidden=True), TypeError, r"^n_hidden:"),
    (dict(n_inputs=4, n_hidden=np.bool_(True)), TypeError, r"^n_hidden:"),
    (dict(n_inputs=4, n_hidden="3"), TypeError, r"^n_hidden:"),
    (dict(n_inputs=4, n_hidden=None), TypeError, r"^n_hidden:"),
    (dict(n_inputs=0, n_hidden=3), ValueError, r"^n_inputs:"),
    (dict(n_inputs=-1, n_hidden=3), ValueError, r"^n_inputs:"),
    (dict(n_inputs=4.0, n_hidden=3), TypeError, r"^n_inputs:"),
    (dict(n_inputs=False, n_hidden=3), TypeError, r"^n_inputs:"),
    (dict(n_inputs=4, n_hidden=3, n_outputs=0), ValueError, r"^n_outputs:"),
    (dict(n_inputs=4, n_hidden=3, n_outputs=2.0), TypeError, r"^n_outputs:"),
    (dict(n_inputs=4, n_hidden=3, cell="gru"), ValueError, r"^cell:"),
    (dict(n_inputs=4, n_hidden=3, cell="RNN"), ValueError, r"^cell:"),
    (dict(n_inputs=4, n_hidden=3, cell=None), ValueError, r"^cell:"),
    (dict(n_inputs=4, n_hidden=3, random_state="seed"), TypeError, r"^random_state:"),
    (dict(n_inputs=4, n_hidden=3, random_state=-1), TypeError, r"^random_state:"),
    (dict(n_inputs=4, n_hidden=3, random_state=1.5), TypeError, r"^random_state:"),
    (dict(n_inputs=4, n_hidden=3, random_state=True), TypeError, r"^random_state:"),
])
def test_init_params_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastrnn.init_params(**kwargs)


def test_init_params_accepts_numpy_integers_and_generators():
    a = fastrnn.init_params(np.int64(4), np.int32(3), n_outputs=np.uint8(5), random_state=0)
    assert a["W_x"].shape == (3, 4) and a["W_y"].shape == (5, 3)
    b = fastrnn.init_params(4, 3, 5, random_state=np.random.default_rng(0))
    assert all(np.array_equal(a[k], b[k]) for k in KEYS)
    c = fastrnn.init_params(4, 3, 5, random_state=np.int64(0))
    assert all(np.array_equal(a[k], c[k]) for k in KEYS)


# ---------------------------------------------------------------------------
# No kernel runs on bad input

class KernelCalled(Exception):
    pass


def _refuse(*args, **kwargs):
    raise KernelCalled("a kernel was called")


@pytest.fixture
def no_kernels(monkeypatch):
    """Replace every backend module (numba and numpy, every cell) by one
    whose functions raise KernelCalled."""
    for key, module in list(backends._MODULES.items()):
        fake = types.SimpleNamespace(**{name: _refuse for name in dir(module)
                                        if not name.startswith("__")})
        monkeypatch.setitem(backends._MODULES, key, fake)


def test_no_kernel_runs_on_bad_input(no_kernels):
    # the replacement really is in the call path: good input reaches it
    for backend in BACKENDS:
        with pytest.raises(KernelCalled):
            call_loss(dict(backend=backend))
        with pytest.raises(KernelCalled):
            call_forward(dict(backend=backend))
    for backend in BACKENDS:
        for name, overrides, exc, match in BAD:
            overrides = dict(overrides)
            overrides.setdefault("backend", backend)
            with pytest.raises(exc, match=match):
                call_loss(overrides)
        for name, overrides, exc, match in BAD_FORWARD:
            overrides = dict(overrides)
            overrides.setdefault("backend", backend)
            with pytest.raises(exc, match=match):
                call_forward(overrides)


# ---------------------------------------------------------------------------
# Inputs are never modified

def _snapshot(value):
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_snapshot(v) for v in value]
    if value is None:
        return None
    return (np.array(value, copy=True), np.asarray(value).dtype, np.asarray(value).shape)


def _same(a, b):
    if isinstance(a, dict):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if a is None:
        return b is None
    return a[1] == b[1] and a[2] == b[2] and np.array_equal(a[0], b[0])


def _read_only(value):
    if isinstance(value, dict):
        return {k: _read_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_read_only(v) for v in value]
    array = np.array(value, copy=True)
    array.setflags(write=False)
    return array


FORMS = {
    "single-dense": (good_X(), good_y(), np.full(D, 0.1)),
    "single-ids-soft": (np.array([2, 0, 1, 1]), SOFT, np.full(D, -0.2)),
    "batch-dense": (X_BATCH, Y_BATCH, np.full((B, D), 0.3)),
    "batch-ids": (np.array([[0, 1, 2, 2], [2, 2, 1, 0]]), np.eye(M)[Y_BATCH], np.zeros((B, D))),
    "list-dense": (X_LIST, Y_LIST, np.full((2, D), 0.5)),
    "list-ids": ([np.array([0, 2, 1]), np.array([1])],
                 [np.eye(M)[[1, 2, 3]], np.array([[0, 0.5, 0, 0.5, 0]])],
                 np.full((2, D), -0.5)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", list(FORMS))
def test_writable_inputs_are_not_modified(form, backend):
    X, y, h0 = FORMS[form]
    params = good_params()
    before = _snapshot((params, X, y, h0))
    loss, grads, dh0 = fastrnn.loss_and_grad(params, X, y, h0=h0, backend=backend,
                                             return_dh0=True)
    fastrnn.forward(params, X, h0=h0, backend=backend, return_hidden=True)
    assert _same(_snapshot((params, X, y, h0)), before)
    # and the outputs are fresh arrays, not views of the inputs
    for key in KEYS:
        assert not np.shares_memory(grads[key], params[key])
    assert not np.shares_memory(dh0, h0)
    # writing into an output does not change the next result
    grads["W_x"][...] = 123.0
    again = fastrnn.loss_and_grad(params, X, y, h0=h0, backend=backend)
    assert again[0] == loss


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", list(FORMS))
def test_read_only_inputs_are_accepted(form, backend):
    X, y, h0 = FORMS[form]
    params = good_params()
    expected = fastrnn.loss_and_grad(params, X, y, h0=h0, backend=backend, return_dh0=True)
    expected_fwd = fastrnn.forward(params, X, h0=h0, backend=backend, return_hidden=True)
    ro_params, ro_X, ro_y, ro_h0 = (_read_only(v) for v in (params, X, y, h0))
    got = fastrnn.loss_and_grad(ro_params, ro_X, ro_y, h0=ro_h0, backend=backend,
                                return_dh0=True)
    got_fwd = fastrnn.forward(ro_params, ro_X, h0=ro_h0, backend=backend, return_hidden=True)
    assert_identical(got, expected)
    assert_identical(got_fwd, expected_fwd)


def assert_identical(a, b):
    """Bit-identical nested outputs: the same float64 values reach the same code."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            assert_identical(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_identical(x, y)
    else:
        assert np.shape(a) == np.shape(b)
        assert np.array_equal(a, b), (a, b)


# ---------------------------------------------------------------------------
# Other layouts give the numbers of C-contiguous float64

def _fortran(value):
    if isinstance(value, dict):
        return {k: _fortran(v) for k, v in value.items()}
    return np.asfortranarray(value)


def _strided(array):
    """The same values, as a non-contiguous view of a larger array."""
    array = np.asarray(array)
    big = np.zeros(array.shape[:-1] + (2 * array.shape[-1],) if array.ndim else (), array.dtype)
    big[..., ::2] = array
    view = big[..., ::2]
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    return view


@pytest.mark.parametrize("backend", BACKENDS)
def test_layouts_give_the_same_numbers(backend):
    params = good_params(5)
    rng = np.random.default_rng(6)
    X = rng.normal(0, 1, (B, T, K))
    y = rng.dirichlet(np.ones(M), (B, T))
    h0 = rng.normal(0, 0.5, (B, D))
    expected = fastrnn.loss_and_grad(params, X, y, h0=h0, backend=backend, return_dh0=True)
    expected_fwd = fastrnn.forward(params, X, h0=h0, backend=backend, return_hidden=True)
    variants = {
        "fortran": (_fortran(params), _fortran(X), _fortran(y), _fortran(h0)),
        "strided": ({k: _strided(v) for k, v in params.items()}, _strided(X), _strided(y),
                    _strided(h0)),
        "transposed-views": ({k: np.ascontiguousarray(v.T).T for k, v in params.items()},
                             np.ascontiguousarray(X.T).T, y, np.ascontiguousarray(h0.T).T),
        "read-only": (_read_only(params), _read_only(X), _read_only(y), _read_only(h0)),
        # nested Python lists (X stays an array: a list X is a list of sequences)
        "lists": ({k: v.tolist() for k, v in params.items()}, X, y.tolist(), h0.tolist()),
    }
    for name, (p, X_, y_, h_) in variants.items():
        got = fastrnn.loss_and_grad(p, X_, y_, h0=h_, backend=backend, return_dh0=True)
        assert_identical(got, expected)
        got_fwd = fastrnn.forward(p, X_, h0=h_, backend=backend, return_hidden=True)
        assert_identical(got_fwd, expected_fwd)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_inputs_equal_their_float64_values(backend):
    rng = np.random.default_rng(7)
    params32 = {k: v.astype(np.float32) for k, v in good_params(8).items()}
    X32 = rng.normal(0, 1, (B, T, K)).astype(np.float32)
    y32 = np.full((B, T, M), 0.2, dtype=np.float32)          # sums to 1 within float32
    h32 = rng.normal(0, 0.5, (B, D)).astype(np.float32)
    got = fastrnn.loss_and_grad(params32, X32, y32, h0=h32, backend=backend, return_dh0=True)
    expected = fastrnn.loss_and_grad({k: v.astype(np.float64) for k, v in params32.items()},
                                     X32.astype(np.float64), y32.astype(np.float64),
                                     h0=h32.astype(np.float64), backend=backend, return_dh0=True)
    assert_identical(got, expected)
    assert got[1]["W_x"].dtype == np.float64 and isinstance(got[0], float)
    got_fwd = fastrnn.forward(params32, X32, h0=h32, backend=backend)
    assert got_fwd[0].dtype == np.float64
    assert_identical(got_fwd, fastrnn.forward({k: v.astype(np.float64) for k, v in params32.items()},
                                              X32.astype(np.float64), h0=h32.astype(np.float64),
                                              backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_dense_inputs_and_other_int_dtypes(backend):
    """A 3-D integer array is dense (B, T, k) input: the same as its float
    values. Ids and labels of any integer dtype are the same as int64."""
    params = good_params(9)
    rng = np.random.default_rng(10)
    ids = rng.integers(0, K, (B, T))
    y = rng.integers(0, M, (B, T))
    onehot_int = np.eye(K, dtype=np.int32)[ids]                 # (B, T, k) int
    expected = fastrnn.loss_and_grad(params, onehot_int.astype(float), y, backend=backend,
                                     return_dh0=True)
    assert_identical(fastrnn.loss_and_grad(params, onehot_int, y, backend=backend,
                                           return_dh0=True), expected)
    dense_int = rng.integers(-2, 3, (B, T, K))
    assert_identical(fastrnn.loss_and_grad(params, dense_int, y, backend=backend),
                     fastrnn.loss_and_grad(params, dense_int.astype(float), y, backend=backend))
    base = fastrnn.loss_and_grad(params, ids, y, backend=backend)
    for dtype in (np.int8, np.uint8, np.int16, np.int32, np.uint32, np.uint64):
        assert_identical(fastrnn.loss_and_grad(params, ids.astype(dtype), y.astype(dtype),
                                               backend=backend), base)
    # a list of int (T, k) sequences is dense too
    assert_identical(fastrnn.loss_and_grad(params, list(onehot_int), list(y), backend=backend),
                     fastrnn.loss_and_grad(params, list(onehot_int.astype(float)), list(y),
                                           backend=backend))


# ---------------------------------------------------------------------------
# Integer one-hot rows: a warning

def test_integer_one_hot_rows_warn():
    params = good_params()
    X_int = np.eye(K, dtype=int)[[0, 1, 2, 1]]            # (T, k) = (4, 3), rows one-hot
    with pytest.warns(UserWarning, match=r"^X: .*look one-hot"):
        probs, _ = fastrnn.forward(params, X_int)
    # ... and, as documented, it was read as token ids: 4 sequences of 3 ids
    assert probs.shape == (4, K, M)
    with pytest.warns(UserWarning, match=r"^X: .*look one-hot"):
        fastrnn.loss_and_grad(params, X_int, np.zeros((4, K), dtype=int), backend="numpy")


def test_integer_ids_that_do_not_look_one_hot_do_not_warn():
    # pytest's filterwarnings=error would turn any warning into a failure
    params = good_params()
    fastrnn.forward(params, np.array([[0, 1, 2, 2], [1, 1, 0, 2]]))   # T != k
    fastrnn.forward(params, np.array([[0, 2, 2], [1, 1, 0]]))         # T == k, rows not one-hot
    fastrnn.forward(params, np.eye(K)[[0, 1, 2]])                     # float one-hot: dense
