"""Bad input is refused before any kernel runs (the kernels check no bounds),
with a ValueError or TypeError whose message starts with the name of the
offending argument and never prints None for a size; good input in any
layout is accepted, never modified, and gives the same numbers, bit for bit,
as the canonical C-contiguous float64 layout. A Hypothesis fuzz of the
functional API holds it to: a ValueError or TypeError (a FloatingPointError
for an overflow inside the network), or a result.
"""
import re
import types
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrnn
from _registry import FORMS as REGISTRY_FORMS, HEADS, arch_id, make_problem
from fastrnn import _limits, functional

K, D, M, T, B = 3, 4, 5, 4, 2
KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
BACKENDS = ("numba", "numpy")

pytestmark = pytest.mark.kernels


def good_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"W_x": rng.normal(0, 0.8, (D, K)), "W_h": rng.normal(0, 0.8, (D, D)),
            "b_h": rng.normal(0, 0.8, D), "W_y": rng.normal(0, 0.8, (M, D)),
            "b_y": rng.normal(0, 0.8, M)}


def deep_params(cell="gru", layers=2, bidirectional=True, seed=0):
    return fastrnn.init_params(K, D, M, cell=cell, n_layers=layers,
                               bidirectional=bidirectional, random_state=seed)


def good_X():
    return np.random.default_rng(1).normal(0, 1, (T, K))


def good_y():
    return np.array([0, 4, 2, 1])


def with_param(key, value, params=None):
    p = dict(good_params() if params is None else params)
    p[key] = value
    return p


def without(params, *keys):
    return {key: value for key, value in params.items() if key not in keys}


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
GRU2 = deep_params()                      # 2 layers, bidirectional: 4 slots
LSTM2 = deep_params("lstm", 2, False)     # 2 layers, one direction: 2 slots
LSTM1 = deep_params("lstm", 1, False)
DEEP = dict(params=GRU2, X=X_BATCH, y=Y_BATCH)
LAST = dict(X=X_BATCH, y=np.array([1, 3]), output="last_step")
SQUARED = dict(X=X_BATCH, y=rng0.normal(0, 1, (B, T, M)), loss="squared_error")
# A network of 2**16 hidden units, as zero-memory broadcast views: over the
# parameter bound, refused before anything is allocated.
HUGE = 2**16
TOO_BIG = {"W_x": np.broadcast_to(0.0, (HUGE, K)), "W_h": np.broadcast_to(0.0, (HUGE, HUGE)),
           "b_h": np.broadcast_to(0.0, (HUGE,)), "W_y": np.broadcast_to(0.0, (M, HUGE)),
           "b_y": np.zeros(M)}

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
    ("X-3d-int", dict(X=np.eye(K, dtype=int)[Y_BATCH % K], y=Y_BATCH), ValueError, r"^X:"),
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
    ("y-ragged-list-for-array-X", dict(y=[np.zeros(()), [np.zeros((3, 3)), np.zeros((1, 3))]]),
     (ValueError, TypeError), r"^y:"),
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
    # uint64 ids at and beyond 2**63 (int64 would wrap them to negative ids)
    ("X-uint64-2**63", dict(X=np.array([0, 1, 2, 2**63], dtype=np.uint64)), ValueError, r"^X:"),
    ("X-uint64-batch-2**63", dict(X=np.array([[0, 1, 2, 1], [0, 2**63 + 5, 1, 1]],
                                             dtype=np.uint64), y=Y_BATCH), ValueError, r"^X:"),
    ("X-list-uint64-2**63", dict(X=[np.array([0, 1, 2], dtype=np.uint64),
                                    np.array([2**63], dtype=np.uint64)], y=Y_LIST),
     ValueError, r"^X\[1\]:"),
    ("y-uint64-2**63", dict(y=np.array([0, 1, 2, 2**63], dtype=np.uint64)), ValueError, r"^y:"),
    ("y-uint64-max", dict(y=np.array([0, 1, 2, 2**64 - 1], dtype=np.uint64)), ValueError, r"^y:"),
    ("y-list-uint64-2**63", dict(X=X_LIST, y=[Y_LIST[0], np.array([2**63], dtype=np.uint64)]),
     ValueError, r"^y\[1\]:"),
    # an integer (B, T) batch of ids inside a list: how to pass it
    ("X-list-int-2d", dict(X=[np.array([[0, 1, 2], [2, 1, 0]])], y=[np.zeros((2, 3), int)]),
     ValueError, r"^X\[0\]: .*as one \(B, T\) array, not inside a list"),
    # deep and bidirectional parameter dicts
    ("params-deep-missing-W_x_l1", dict(DEEP, params=without(GRU2, "W_x_l1")), ValueError,
     r"^params: .*missing \['W_x_l1'\]"),
    ("params-deep-missing-l1-reverse", dict(DEEP, params=without(
        GRU2, "W_x_l1_reverse", "W_h_l1_reverse", "b_h_l1_reverse", "b_hn_l1_reverse")),
     ValueError, r"^params: .*missing \['W_x_l1_reverse'"),
    ("params-deep-W_x_l1-shape", dict(DEEP, params=with_param("W_x_l1", np.zeros((3 * D, D)),
                                                              GRU2)),
     ValueError, r"^params\['W_x_l1'\]: expected shape \(12, 8\)"),
    ("params-deep-W_h_l1-shape", dict(DEEP, params=with_param("W_h_l1", np.zeros((3 * D, D + 1)),
                                                              GRU2)),
     ValueError, r"^params\['W_h_l1'\]"),
    ("params-deep-missing-reverse", dict(DEEP, params=without(GRU2, "W_h_reverse")), ValueError,
     r"^params: .*missing \['W_h_reverse'\]"),
    ("params-deep-W_y-one-direction", dict(DEEP, params=with_param("W_y", np.zeros((M, D)),
                                                                   GRU2)),
     ValueError, r"^params\['W_y'\]: expected shape \(5, 8\)"),
    ("params-deep-gap-l3", dict(DEEP, params=dict(GRU2, W_x_l3=np.zeros((3 * D, 2 * D)))),
     ValueError, r"^params: .*missing"),
    ("params-deep-nan-l1-reverse", dict(DEEP, params=with_param(
        "b_hn_l1_reverse", with_nan(np.zeros(D), 2), GRU2)), ValueError,
     r"^params\['b_hn_l1_reverse'\]: expected finite"),
    ("params-key-l0", dict(DEEP, params=dict(GRU2, W_x_l0=GRU2["W_x"])), ValueError,
     r"^params: .*unexpected \['W_x_l0'\]"),
    ("params-lstm-l1-4d-rows", dict(params=with_param("W_h_l1", np.zeros((3 * D, D)), LSTM2),
                                    X=X_BATCH, y=Y_BATCH), ValueError, r"^params\['W_h_l1'\]"),
    # the GRU's b_hn
    ("params-gru-missing-b_hn", dict(DEEP, params=without(GRU2, "b_hn")), ValueError,
     r"^params: .*missing \['b_hn'\]"),
    ("params-gru-b_hn-shape", dict(DEEP, params=with_param("b_hn", np.zeros(D + 1), GRU2)),
     ValueError, r"^params\['b_hn'\]: expected shape \(4,\)"),
    ("params-gru-b_hn-2d", dict(DEEP, params=with_param("b_hn", np.zeros((1, D)), GRU2)),
     ValueError, r"^params\['b_hn'\]"),
    ("params-gru-b_hn-inf", dict(DEEP, params=with_param("b_hn", with_nan(np.zeros(D), 0, np.inf),
                                                        GRU2)),
     ValueError, r"^params\['b_hn'\]"),
    ("params-rnn-with-b_hn", dict(params=dict(good_params(), b_hn=np.zeros(D))), ValueError,
     r"^params: .*unexpected \['b_hn'\]"),
    ("params-too-many-parameters", dict(params=TOO_BIG), ValueError, r"^params"),
    # h0 of deep models: (L·D, d) for one sequence, (L·D, B, d) for several
    ("h0-deep-1d", dict(params=GRU2, h0=np.zeros(D)), ValueError, r"^h0: expected shape \(4, 4\)"),
    ("h0-deep-batch-as-shallow", dict(DEEP, h0=np.zeros((B, D))), ValueError,
     r"^h0: expected shape \(4, 2, 4\)"),
    ("h0-deep-missing-B", dict(DEEP, h0=np.zeros((4, D))), ValueError, r"^h0:"),
    ("h0-deep-wrong-slots", dict(DEEP, h0=np.zeros((2, B, D))), ValueError, r"^h0:"),
    ("h0-deep-wrong-B", dict(DEEP, h0=np.zeros((4, B + 1, D))), ValueError, r"^h0:"),
    ("h0-deep-nan", dict(DEEP, h0=with_nan(np.zeros((4, B, D)), (3, 1, 0))), ValueError, r"^h0:"),
    ("h0-lstm-deep-plain", dict(params=LSTM2, X=X_BATCH, y=Y_BATCH, h0=np.zeros((2, B, D))),
     TypeError, r"^h0: .*tuple \(h0, c0\)"),
    ("c0-lstm-deep-shape", dict(params=LSTM2, X=X_BATCH, y=Y_BATCH,
                                h0=(np.zeros((2, B, D)), np.zeros((B, D)))),
     ValueError, r"^c0: expected shape \(2, 2, 4\)"),
    ("h0-lstm-deep-list", dict(params=LSTM2, X=X_BATCH, y=Y_BATCH,
                               h0=[np.zeros((2, B, D)), np.zeros((2, B, D))]),
     TypeError, r"^h0:"),
    # an LSTM's state: None or a tuple (h0, c0), either None
    ("h0-lstm-array", dict(params=LSTM1, h0=np.zeros(D)), TypeError,
     r"^h0: an LSTM's initial state is None or a tuple \(h0, c0\)"),
    ("h0-lstm-list", dict(params=LSTM1, h0=[np.zeros(D), np.zeros(D)]), TypeError,
     r"^h0: .*tuple \(h0, c0\)"),
    ("h0-lstm-1-tuple", dict(params=LSTM1, h0=(np.zeros(D),)), TypeError,
     r"^h0: .*tuple \(h0, c0\)"),
    ("h0-lstm-3-tuple", dict(params=LSTM1, h0=(np.zeros(D),) * 3), TypeError,
     r"^h0: .*tuple \(h0, c0\)"),
    ("h0-lstm-shape", dict(params=LSTM1, h0=(np.zeros(D + 1), np.zeros(D))), ValueError,
     r"^h0: expected shape \(4,\), got \(5,\)"),
    ("c0-lstm-shape", dict(params=LSTM1, h0=(np.zeros(D), np.zeros((1, D)))), ValueError,
     r"^c0: expected shape \(4,\), got \(1, 4\)"),
    ("c0-lstm-batch-shape", dict(params=LSTM1, X=X_BATCH, y=Y_BATCH, h0=(None, np.zeros(D))),
     ValueError, r"^c0: expected shape \(2, 4\), got \(4,\)"),
    ("c0-lstm-nan", dict(params=LSTM1, h0=(np.zeros(D), with_nan(np.zeros(D), 1))), ValueError,
     r"^c0: expected finite numbers"),
    ("c0-lstm-str", dict(params=LSTM1, h0=(None, "abc")), TypeError,
     r"^c0: expected an array of numbers"),
    ("h0-lstm-bool", dict(params=LSTM1, h0=(np.zeros(D, dtype=bool), None)), TypeError,
     r"^h0: expected float or integer numbers"),
    # the head
    ("loss-unknown", dict(loss="mse"), ValueError, r"^loss:"),
    ("loss-None", dict(loss=None), ValueError, r"^loss:"),
    ("loss-case", dict(loss="Cross_Entropy"), ValueError, r"^loss:"),
    ("output-unknown", dict(output="all"), ValueError, r"^output:"),
    ("output-bool", dict(output=True), ValueError, r"^output:"),
    # squared-error targets
    ("y-squared-nan", dict(SQUARED, y=with_nan(SQUARED["y"], (1, 2, 0))), ValueError, r"^y:"),
    ("y-squared-inf", dict(SQUARED, y=with_nan(SQUARED["y"], (0, 0, 4), -np.inf)), ValueError,
     r"^y:"),
    ("y-squared-wrong-m", dict(SQUARED, y=np.zeros((B, T, M + 1))), ValueError,
     r"^y: expected real target values of shape \(2, 4, 5\)"),
    ("y-squared-no-m", dict(SQUARED, y=np.zeros((B, T))), ValueError, r"^y:"),
    ("y-squared-complex", dict(SQUARED, y=np.zeros((B, T, M), complex)), TypeError, r"^y:"),
    # last-step targets: one per sequence
    ("y-last-too-long", dict(LAST, y=np.array([1, 3, 0])), ValueError,
     r"^y: expected integer class ids of shape \(2,\)"),
    ("y-last-every-step", dict(LAST, y=Y_BATCH), ValueError, r"^y:"),
    ("y-last-list-too-short", dict(LAST, X=X_LIST, y=[1]), ValueError, r"^y: X is a list of 2"),
    ("y-last-single-vector", dict(X=good_X(), y=np.array([1, 2]), output="last_step"),
     ValueError, r"^y:"),
    ("y-last-squared-wrong-m", dict(LAST, y=np.zeros((B, M + 1)), loss="squared_error"),
     ValueError, r"^y:"),
    # sample_weight
    ("sample_weight-wrong-length", dict(X=X_BATCH, y=Y_BATCH, sample_weight=np.ones(B + 1)),
     ValueError, r"^sample_weight:"),
    ("sample_weight-wrong-steps", dict(X=X_BATCH, y=Y_BATCH, sample_weight=np.ones((B, T + 1))),
     ValueError, r"^sample_weight:"),
    ("sample_weight-negative", dict(X=X_BATCH, y=Y_BATCH, sample_weight=np.array([1.0, -0.5])),
     ValueError, r"^sample_weight: expected weights >= 0"),
    ("sample_weight-negative-step", dict(X=X_BATCH, y=Y_BATCH,
                                         sample_weight=with_nan(np.ones((B, T)), (1, 2), -1.0)),
     ValueError, r"^sample_weight:"),
    ("sample_weight-nan", dict(X=X_BATCH, y=Y_BATCH, sample_weight=np.array([1.0, np.nan])),
     ValueError, r"^sample_weight: expected finite"),
    ("sample_weight-inf-step", dict(X=X_BATCH, y=Y_BATCH,
                                    sample_weight=with_nan(np.ones((B, T)), (0, 0), np.inf)),
     ValueError, r"^sample_weight:"),
    ("sample_weight-all-zero", dict(X=X_BATCH, y=Y_BATCH, sample_weight=np.zeros(B)),
     ValueError, r"^sample_weight: all weights are 0"),
    ("sample_weight-all-zero-steps", dict(X=X_BATCH, y=Y_BATCH, sample_weight=np.zeros((B, T))),
     ValueError, r"^sample_weight: all weights are 0"),
    ("sample_weight-single-zero", dict(sample_weight=0.0), ValueError, r"^sample_weight:"),
    ("sample_weight-steps-with-last-step", dict(LAST, sample_weight=np.ones((B, T))),
     ValueError, r"^sample_weight: expected one weight per sequence"),
    ("sample_weight-list-steps-wrong", dict(X=X_LIST, y=Y_LIST,
                                            sample_weight=[np.ones(3), np.ones(2)]),
     ValueError, r"^sample_weight\[1\]:"),
    ("sample_weight-str", dict(sample_weight="ones"), TypeError, r"^sample_weight:"),
    ("sample_weight-ragged-list", dict(X=X_BATCH, y=Y_BATCH,
                                       sample_weight=[np.ones(2), np.ones((2, 2))]),
     (ValueError, TypeError), r"^sample_weight:"),
    ("sample_weight-ragged-list-X-list", dict(X=X_LIST, y=Y_LIST,
                                              sample_weight=[np.ones(3), [1.0, [2.0]]]),
     TypeError, r"^sample_weight\[1\]:"),
    ("sample_weight-bool", dict(X=X_BATCH, y=Y_BATCH, sample_weight=np.ones(B, bool)), TypeError,
     r"^sample_weight:"),
    # return flags
    ("return_dX-ids", dict(X=np.array([0, 1, 2, 1]), return_dX=True), ValueError,
     r"^return_dX: X holds token ids"),
    ("return_dX-ids-list", dict(X=[np.array([0, 1, 2]), np.array([1])], y=Y_LIST,
                                return_dX=True), ValueError, r"^return_dX:"),
    ("return_dX-int", dict(return_dX=1), TypeError, r"^return_dX:"),
    ("return_dh0-str", dict(return_dh0="yes"), TypeError, r"^return_dh0:"),
]

# Arguments only loss_and_grad takes; a case of these (or of y) is not one of forward's.
LOSS_ONLY = ("y", "sample_weight", "return_dX", "return_dh0")
BAD_FORWARD = [case for case in BAD
               if not case[0].split("-")[0] in LOSS_ONLY]


def call_loss(overrides):
    kwargs = dict(params=good_params(), X=good_X(), y=good_y(), h0=None, backend="numba")
    kwargs.update(overrides)
    return fastrnn.loss_and_grad(**kwargs)


def call_forward(overrides):
    kwargs = dict(params=good_params(), X=good_X(), h0=None, backend="numba")
    kwargs.update({k: v for k, v in overrides.items() if k not in LOSS_ONLY})
    return fastrnn.forward(**kwargs)


def test_the_good_inputs_are_good():
    for overrides in (dict(), dict(X=X_BATCH, y=Y_BATCH), dict(X=X_LIST, y=Y_LIST),
                      dict(y=SOFT), dict(X=np.array([0, 1, 2, 1])), DEEP,
                      dict(DEEP, h0=np.zeros((4, B, D))), LAST, SQUARED,
                      dict(params=LSTM2, X=X_BATCH, y=Y_BATCH,
                           h0=(np.zeros((2, B, D)), None)),
                      dict(X=X_BATCH, y=Y_BATCH, sample_weight=np.ones((B, T))),
                      dict(X=[np.array([0, 1, 2], dtype=np.uint64), np.array([2**63 - 2**63])],
                           y=Y_LIST)):
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


def _holds_none(value):
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_holds_none(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_none(v) for v in value)
    if isinstance(value, np.ndarray) and value.dtype == object:
        return any(v is None for v in value.ravel())
    return False


NONE_AS_A_SIZE = re.compile(r"[(\[]\s*None\s*,|,\s*None\s*[,)\]]")


def test_no_error_message_prints_none_for_a_size():
    """Every message of the table, except where the caller passed None: a
    size the message does not know is a letter (k, m), never "None" in a
    shape or a list."""
    assert NONE_AS_A_SIZE.search("expected shape (None, 3)")
    assert NONE_AS_A_SIZE.search("expected shape (T, None)")
    assert NONE_AS_A_SIZE.search("expected [None, 3]")
    assert not NONE_AS_A_SIZE.search("None or a tuple (h0, c0) (either may be None), got None")
    checked = 0
    for case in BAD:
        name, overrides, exc, match = case
        if _holds_none(overrides):
            continue
        for call in (call_loss, call_forward) if case in BAD_FORWARD else (call_loss,):
            with pytest.raises(exc) as info:
                call(overrides)
            assert not NONE_AS_A_SIZE.search(str(info.value)), (name, str(info.value))
            checked += 1
    assert checked > 150


@pytest.mark.parametrize("X", [np.zeros((2, 3, 4)), np.zeros((3, 4)), [np.zeros((3, 4))],
                               np.zeros((2, 3, 3, 1)), np.zeros(3), np.zeros((2, 0, 3))],
                         ids=["batch", "single", "list", "4d", "1d-float", "empty"])
def test_wrong_input_width_names_the_expected_width(X):
    with pytest.raises(ValueError) as info:
        fastrnn.loss_and_grad(good_params(), X, np.zeros((2, 3), int))
    message = str(info.value)
    assert message.startswith("X") and "None" not in message and "3" in message, message


def test_error_messages_say_what_was_given():
    with pytest.raises(ValueError, match=r"^X: .*3 input features.*\(4, 5\)"):
        call_loss(dict(X=np.zeros((4, 5))))
    with pytest.raises(ValueError, match=r"^y: .*\[0, 4\].*found 7"):
        call_loss(dict(y=np.array([0, 7, 1, 1])))
    with pytest.raises(ValueError, match=r"^h0: .*\(4,\).*\(5,\)"):
        call_loss(dict(h0=np.zeros(5)))
    with pytest.raises(ValueError, match=r"^X: token ids must lie in \[0, 2\], found "
                                         r"9223372036854775808 at index \(3,\)"):
        call_loss(dict(X=np.array([0, 1, 2, 2**63], dtype=np.uint64)))


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
    (dict(n_inputs=4, n_hidden=3, cell="GRU"), ValueError, r"^cell:"),
    (dict(n_inputs=4, n_hidden=3, cell="RNN"), ValueError, r"^cell:"),
    (dict(n_inputs=4, n_hidden=3, cell="transformer"), ValueError, r"^cell:"),
    (dict(n_inputs=4, n_hidden=3, cell=None), ValueError, r"^cell:"),
    (dict(n_inputs=4, n_hidden=3, cell=1), ValueError, r"^cell:"),
    (dict(n_inputs=4, n_hidden=3, random_state="seed"), TypeError, r"^random_state:"),
    (dict(n_inputs=4, n_hidden=3, random_state=-1), TypeError, r"^random_state:"),
    (dict(n_inputs=4, n_hidden=3, random_state=1.5), TypeError, r"^random_state:"),
    (dict(n_inputs=4, n_hidden=3, random_state=True), TypeError, r"^random_state:"),
    # layers and directions
    (dict(n_inputs=4, n_hidden=3, n_layers=0), ValueError, r"^n_layers:"),
    (dict(n_inputs=4, n_hidden=3, n_layers=-2), ValueError, r"^n_layers:"),
    (dict(n_inputs=4, n_hidden=3, n_layers=2.0), TypeError, r"^n_layers:"),
    (dict(n_inputs=4, n_hidden=3, n_layers=True), TypeError, r"^n_layers:"),
    (dict(n_inputs=4, n_hidden=3, n_layers=None), TypeError, r"^n_layers:"),
    (dict(n_inputs=4, n_hidden=3, n_layers="2"), TypeError, r"^n_layers:"),
    (dict(n_inputs=4, n_hidden=3, n_layers=_limits.MAX_LAYERS + 1), ValueError, r"^n_layers:"),
    (dict(n_inputs=4, n_hidden=3, bidirectional=1), TypeError, r"^bidirectional:"),
    (dict(n_inputs=4, n_hidden=3, bidirectional="yes"), TypeError, r"^bidirectional:"),
    (dict(n_inputs=4, n_hidden=3, bidirectional=None), TypeError, r"^bidirectional:"),
    # absurd sizes: a clear ValueError naming the size, before any arithmetic on it
    (dict(n_inputs=4, n_hidden=2**70), ValueError, r"^n_hidden: .*at most"),
    (dict(n_inputs=4, n_hidden=np.uint64(2**63)), ValueError, r"^n_hidden: .*at most"),
    (dict(n_inputs=2**70, n_hidden=3), ValueError, r"^n_inputs: .*at most"),
    (dict(n_inputs=4, n_hidden=3, n_outputs=2**64), ValueError, r"^n_outputs: .*at most"),
    (dict(n_inputs=4, n_hidden=-2**70), ValueError, r"^n_hidden:"),
    (dict(n_inputs=4, n_hidden=3, n_layers=2**70), ValueError, r"^n_layers:"),
])
def test_init_params_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastrnn.init_params(**kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(n_inputs=2**24, n_hidden=2**10),                             # 2**34 parameters
    dict(n_inputs=4, n_hidden=2**16, n_layers=3),
    dict(n_inputs=4, n_hidden=2**14, cell="lstm", n_layers=_limits.MAX_LAYERS,
         bidirectional=True),
    dict(n_inputs=2**20, n_hidden=2**11, n_outputs=2**20, cell="gru"),
], ids=["wide-input", "deep", "deepest-lstm", "gru"])
def test_a_network_over_the_parameter_bound_is_refused_before_allocating(kwargs):
    """Sizes each within bounds whose network would need tens of GiB: a
    ValueError saying how many parameters, not a MemoryError (or swapping)."""
    with pytest.raises(ValueError, match=r"parameters .*bound"):
        fastrnn.init_params(**kwargs)


def test_init_params_accepts_every_cell_and_numpy_integers():
    for cell, G in (("rnn", 1), ("lstm", 4), ("gru", 3)):
        params = fastrnn.init_params(4, 3, cell=cell, n_layers=np.int8(2),
                                     bidirectional=np.bool_(True), random_state=0)
        assert params["W_h_l1_reverse"].shape == (G * 3, 3)
        assert ("b_hn" in params) == (cell == "gru")
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
    """Both twins' network functions replaced by ones that raise KernelCalled."""
    fake = types.SimpleNamespace(forward=_refuse, loss_and_grad=_refuse)
    monkeypatch.setattr(functional, "network_module", lambda backend: fake)


def test_no_kernel_runs_on_bad_input(no_kernels):
    # the replacement really is in the call path: good input reaches it
    for backend in BACKENDS:
        for good in (dict(), DEEP, LAST, SQUARED):
            with pytest.raises(KernelCalled):
                call_loss(dict(good, backend=backend))
            with pytest.raises(KernelCalled):
                call_forward(dict(good, backend=backend))
    # every bad input is refused before (messages: test_loss_and_grad_rejects)
    for backend in BACKENDS:
        for name, overrides, exc, match in BAD:
            overrides = dict(overrides)
            overrides.setdefault("backend", backend)
            with pytest.raises(exc):
                call_loss(overrides)
        for name, overrides, exc, match in BAD_FORWARD:
            overrides = dict(overrides)
            overrides.setdefault("backend", backend)
            with pytest.raises(exc):
                call_forward(overrides)


# ---------------------------------------------------------------------------
# Inputs are never modified, in any form, on either backend

def _snapshot(value):
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return (type(value), [_snapshot(v) for v in value])
    if value is None or isinstance(value, str):
        return value
    return (np.array(value, copy=True), np.asarray(value).dtype, np.asarray(value).shape)


def _same(a, b):
    if isinstance(a, dict):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], type):
        return a[0] is b[0] and len(a[1]) == len(b[1]) and all(_same(x, y)
                                                                for x, y in zip(a[1], b[1]))
    if a is None or isinstance(a, str):
        return a == b
    return a[1] == b[1] and a[2] == b[2] and np.array_equal(a[0], b[0], equal_nan=True)


def _read_only(value):
    if isinstance(value, dict):
        return {k: _read_only(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_read_only(v) for v in value)
    if value is None or np.ndim(value) == 0 and not isinstance(value, np.ndarray):
        return value
    array = np.array(value, copy=True)
    array.setflags(write=False)
    return array


def _arrays(value):
    if isinstance(value, dict):
        return [a for v in value.values() for a in _arrays(v)]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _arrays(v)]
    return [value] if isinstance(value, np.ndarray) else []


# A few architectures (every cell, deep and bidirectional) × every input form of
# the registry, each with a head and a kind of weights.
MODIFY_ARCHS = [("rnn", 1, False), ("lstm", 2, True), ("gru", 3, False), ("gru", 1, True)]
MODIFY_CASES = [(arch, form) for arch in MODIFY_ARCHS for form in REGISTRY_FORMS]


def _problem(arch, form, i):
    p = make_problem(arch, form, HEADS[i % 4], (None, "sequence", "step")[i % 3], seed=20)
    if isinstance(p.X, np.ndarray) and p.X.dtype.kind == "i" and p.X.ndim == 2 and \
            p.X.shape[1] == 3:
        p.X[0] = 0                            # no (B, T) ids that look one-hot
    return p


def _calls(params, X, y, kwargs, backend):
    dense = not (np.asarray(X[0] if isinstance(X, list) else X).dtype.kind in "iu")
    forward_kwargs = {k: v for k, v in kwargs.items() if k != "sample_weight"}
    return (fastrnn.loss_and_grad(params, X, y, backend=backend, return_dh0=True,
                                  return_dX=dense, **kwargs),
            fastrnn.forward(params, X, backend=backend, return_hidden=True, **forward_kwargs))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch,form", MODIFY_CASES,
                         ids=[f"{arch_id(a)}-{f}" for a, f in MODIFY_CASES])
def test_inputs_are_not_modified(arch, form, backend):
    p = _problem(arch, form, MODIFY_CASES.index((arch, form)))
    before = _snapshot((p.params, p.X, p.y, p.kwargs))
    out = _calls(p.params, p.X, p.y, p.kwargs, backend)
    assert _same(_snapshot((p.params, p.X, p.y, p.kwargs)), before)
    # the outputs are fresh arrays, never views of an input
    inputs = _arrays((p.params, p.X, p.y, p.kwargs))
    for output in _arrays(out):
        assert not any(np.shares_memory(output, given) for given in inputs)
    # writing into the outputs changes neither the inputs nor the next result
    saved = _map(np.copy, out)
    for output in _arrays(out):
        output[...] = 123.0
    assert _same(_snapshot((p.params, p.X, p.y, p.kwargs)), before)
    assert_identical(_calls(p.params, p.X, p.y, p.kwargs, backend), saved)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch,form", MODIFY_CASES,
                         ids=[f"{arch_id(a)}-{f}" for a, f in MODIFY_CASES])
def test_read_only_inputs_give_the_same_numbers(arch, form, backend):
    p = _problem(arch, form, MODIFY_CASES.index((arch, form)))
    expected = _calls(p.params, p.X, p.y, p.kwargs, backend)
    ro = [_read_only(v) for v in (p.params, p.X, p.y, p.kwargs)]
    assert all(not a.flags.writeable for a in _arrays(ro))
    assert_identical(_calls(*ro, backend), expected)


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
# Other layouts give the numbers of C-contiguous float64, bit for bit

def _map(function, value):
    if isinstance(value, dict):
        return {k: _map(function, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map(function, v) for v in value)
    if isinstance(value, np.ndarray) and value.ndim:
        return function(value)
    return value


def _strided(array):
    """The same values, as a non-contiguous view of a larger array."""
    if array.ndim == 0:
        return array
    big = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), array.dtype)
    big[..., ::2] = array
    view = big[..., ::2]
    assert not view.flags.c_contiguous or array.shape[-1] <= 1
    return view


def _big_endian(array):
    return array.astype(array.dtype.newbyteorder(">"))


def _float32(array):
    return array.astype(np.float32) if array.dtype.kind == "f" else array


def _int32(array):
    return array.astype(np.int32) if array.dtype.kind in "iu" else array


LAYOUTS = {
    "fortran": np.asfortranarray,
    "strided": _strided,
    "transposed-view": lambda a: np.ascontiguousarray(a.T).T,
    "big-endian": _big_endian,
    "int32-ids": _int32,
    "uint8-ids": lambda a: a.astype(np.uint8) if a.dtype.kind in "iu" else a,
    "read-only": _read_only,
}
LAYOUT_CASES = [(arch, form) for arch in MODIFY_ARCHS
                for form in ("batch_dense", "batch_ids", "list_ids", "h0", "single_dense")]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch,form", LAYOUT_CASES,
                         ids=[f"{arch_id(a)}-{f}" for a, f in LAYOUT_CASES])
def test_layouts_give_the_same_numbers(arch, form, backend):
    p = _problem(arch, form, LAYOUT_CASES.index((arch, form)) + 1)
    expected = _calls(p.params, p.X, p.y, p.kwargs, backend)
    for name, function in LAYOUTS.items():
        args = [_map(function, v) for v in (p.params, p.X, p.y, p.kwargs)]
        assert_identical(_calls(*args, backend), expected)
    # nested Python lists for everything but X (a list X is a list of sequences)
    listed = [_map(lambda a: a.tolist(), v) for v in (p.params, p.y, p.kwargs)]
    if not isinstance(p.y, list) and form != "single_dense":
        assert_identical(_calls(listed[0], p.X, listed[1], listed[2], backend), expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", MODIFY_ARCHS, ids=arch_id)
def test_float32_inputs_equal_their_float64_values(arch, backend):
    """float32 inputs, targets and states to float64 parameters are their
    float64 values (a network computes in its parameters' precision:
    tests/test_float32.py has float32 parameters)."""
    p = _problem(arch, "h0", 2)
    args32 = [p.params] + [_map(_float32, v) for v in (p.X, p.y, p.kwargs)]
    assert args32[1].dtype == np.float32
    args64 = [_map(lambda a: a.astype(np.float64) if a.dtype.kind == "f" else a, v)
              for v in args32]
    got = _calls(*args32, backend)
    assert_identical(got, _calls(*args64, backend))
    assert isinstance(got[0][0], float)
    assert all(a.dtype == np.float64 for a in _arrays(got))


@pytest.mark.parametrize("backend", BACKENDS)
def test_ids_and_labels_of_any_integer_dtype(backend):
    """Ids and class ids of any integer dtype (either byte order) are the same
    as int64; integer arrays are always ids (a 3-D one is refused: the table)."""
    params = good_params(9)
    rng = np.random.default_rng(10)
    ids = rng.integers(0, K, (B, T))
    y = rng.integers(0, M, (B, T))
    base = fastrnn.loss_and_grad(params, ids, y, backend=backend, return_dh0=True)
    for dtype in (np.int8, np.uint8, np.int16, np.int32, np.uint32, np.uint64, ">i8", ">u4"):
        assert_identical(fastrnn.loss_and_grad(params, ids.astype(dtype), y.astype(dtype),
                                               backend=backend, return_dh0=True), base)
        assert_identical(fastrnn.loss_and_grad(params, list(ids.astype(dtype)),
                                               list(y.astype(dtype)), backend=backend,
                                               return_dh0=True), base)


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


# ---------------------------------------------------------------------------
# Fuzz: garbage in, a ValueError or TypeError out (or a result)

DTYPES = [np.float16, np.float32, np.float64, np.longdouble, np.int8, np.int32, np.int64,
          np.uint8, np.uint64, ">f8", np.bool_, np.complex128, object, "U2", "datetime64[s]"]
EXTREMES = [0.0, -0.0, 1.0, -1.0, 2.0, 3.0, 7.0, 1e-320, 1e300, -1e300, 1.7e308, -1.7e308,
            np.nan, np.inf, -np.inf, 2**31, 2**63, -(2**63), 2**64 - 1]


@st.composite
def garbage_arrays(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
    values = draw(st.lists(st.sampled_from(EXTREMES + [0, 1, 2]), min_size=1, max_size=4))
    flat = np.resize(np.array(values, dtype=object), int(np.prod(shape)))
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return flat.astype(dtype).reshape(shape)
    except (ValueError, TypeError, OverflowError):
        return np.zeros(shape, dtype=dtype)


def values(small):
    """Anything a caller might pass: arrays of any dtype, shape and values,
    plausible arrays, lists of them, scalars, None, strings."""
    return st.one_of(garbage_arrays(), small,
                     st.lists(st.one_of(garbage_arrays(), small), min_size=0, max_size=3),
                     st.sampled_from([None, "abc", 3, 2.5, -1, True, {"a": 1}, ()]))


PLAUSIBLE_X = [good_X(), X_BATCH, X_LIST, np.array([0, 1, 2, 1]),
               np.array([[0, 1, 2, 1], [2, 2, 0, 0]]), good_X() * 1e300,
               np.sign(X_BATCH) * 1.7e308]


# Valid calls the fuzz starts from (each succeeds), then spoils a few arguments of.
VALID_CALLS = [
    dict(params=good_params(), X=good_X(), y=good_y()),
    dict(params=good_params(), X=X_LIST, y=Y_LIST, h0=np.zeros((2, D))),
    dict(params=GRU2, X=X_BATCH, y=Y_BATCH, sample_weight=np.ones((B, T))),
    dict(params=LSTM2, X=np.array([[0, 1, 2, 1], [2, 2, 0, 0]]), y=np.array([1, 3]),
         output="last_step"),
    dict(params=deep_params("rnn", 1, True), X=X_BATCH, y=SQUARED["y"], loss="squared_error"),
    dict(params=good_params(), X=PLAUSIBLE_X[-1], y=Y_BATCH),
]
SPOILABLE = ("params", "X", "y", "h0", "loss", "output", "sample_weight", "backend")
ARGUMENT = re.compile(r"^(params|X|y|h0|c0|loss|output|sample_weight|backend|return_dX|"
                      r"return_dh0|return_hidden)\b")


@st.composite
def calls(draw):
    kwargs = dict(draw(st.sampled_from(VALID_CALLS)))
    kwargs["params"] = dict(kwargs["params"])
    for name in draw(st.lists(st.sampled_from(SPOILABLE), max_size=3, unique=True)):
        if name == "params":
            key = draw(st.sampled_from(sorted(kwargs["params"]) + ["W_z", "W_x_l1"]))
            kwargs["params"][key] = draw(values(st.nothing()))
        elif name in ("loss", "output", "backend"):
            kwargs[name] = draw(st.sampled_from(["cross_entropy", "squared_error", "last_step",
                                                 "every_step", "numpy", "numba", None, 1]))
        else:
            kwargs[name] = draw(values(st.sampled_from(PLAUSIBLE_X + [good_y(), Y_BATCH,
                                                                      Y_LIST, SOFT]
                                                       + [np.zeros(D), np.ones(B)])))
    return draw(st.sampled_from(["forward", "loss_and_grad"])), kwargs


@settings(max_examples=300, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(calls())
def test_fuzz_the_functional_api(call):
    """Only a documented error, or a result: never an IndexError, a
    KeyError, a numpy warning, a crash in a kernel."""
    function, kwargs = call
    if function == "forward":
        kwargs = {k: v for k, v in kwargs.items() if k not in LOSS_ONLY}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*look one-hot", category=UserWarning)
        try:
            getattr(fastrnn, function)(**kwargs)
        except (ValueError, TypeError) as exc:
            assert ARGUMENT.match(str(exc)), f"{type(exc).__name__} naming no argument: {exc}"
        except FloatingPointError as exc:       # an overflow inside the network (docs)
            assert ARGUMENT.match(str(exc)) and "overflow" in str(exc), exc
