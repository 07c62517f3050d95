"""Analytic gradients of both backends against central finite differences
(SPEC.md: ε ≈ 1e-6, float64, relative error ≤ 1e-6 per coordinate), for every
coordinate of every parameter and of h0, on random small problems in every
input form: dense and id inputs, single sequences, batches, ragged lists,
class-id, one-hot and soft targets, zero and given h0.

Error measure per coordinate, analytic a, numerical n:

    err = |a − n| / max(|a| + |n|, floor),   floor = 1e-2 · max(1, |L|),

required err ≤ 1e-6. Every coordinate with |a| + |n| ≥ floor is held to a
genuine 1e-6 relative error; smaller ones (and exact zeros, e.g. the W_x
columns of ids that never occur) to an absolute 1e-8 · max(1, |L|). Why a
floor at all: a central difference of a float64 loss L at ε = 1e-6 carries
rounding noise of about ulp(L)/(2ε) per ulp of error in L, measured ≈ 3e-10·|L|
on these problems, so a purely relative test of a gradient near 0 would test
float64 round-off, not the gradient. The floor leaves a margin of ~30× over
that noise, and each test asserts that many coordinates were checked
relatively.
"""
import numpy as np
import pytest

import fastrnn

pytestmark = pytest.mark.kernels

KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
EPS = 1e-6


def make_params(rng, k, d, m, scale):
    return {"W_x": rng.normal(0, scale, (d, k)), "W_h": rng.normal(0, scale, (d, d)),
            "b_h": rng.normal(0, scale, d), "W_y": rng.normal(0, scale, (m, d)),
            "b_y": rng.normal(0, scale, m)}


def make_sequence(rng, T, k, m, ids_in, target):
    X = rng.integers(0, k, T) if ids_in else rng.normal(0, 1, (T, k))
    if target == "ids":
        y = rng.integers(0, m, T)
    elif target == "onehot":
        y = np.eye(m)[rng.integers(0, m, T)]
    else:
        y = rng.dirichlet(np.ones(m), size=T)
    return X, y


def make_problem(seed, form, ids_in, target, given_h0):
    rng = np.random.default_rng([seed, ("single", "batch", "list").index(form), ids_in,
                                 ("ids", "onehot", "soft").index(target), given_h0])
    k, d = (int(v) for v in rng.integers(1, 6, 2))
    m = int(rng.integers(2, 6))     # m = 1: loss and gradients are identically 0
    B = 1 if form == "single" else int(rng.integers(2, 4))
    params = make_params(rng, k, d, m, rng.uniform(0.3, 1.2))
    if form == "list":
        seqs = [make_sequence(rng, int(T), k, m, ids_in, target) for T in rng.integers(1, 6, B)]
        X, y = [s[0] for s in seqs], [s[1] for s in seqs]
    else:
        T = int(rng.integers(1, 6))
        seqs = [make_sequence(rng, T, k, m, ids_in, target) for _ in range(B)]
        X, y = np.stack([s[0] for s in seqs]), np.stack([s[1] for s in seqs])
        if form == "single":
            X, y = X[0], y[0]
        elif ids_in and X.shape[1] == k:
            X[0] = 0      # never a (B, T) id batch whose rows look one-hot (that warns)
    h_shape = (d,) if form == "single" else (B, d)
    h0 = rng.normal(0, 0.7, h_shape) if given_h0 else np.zeros(h_shape)
    return params, X, y, h0


def finite_differences(params, X, y, h0, backend):
    """Central differences of the loss for every coordinate of every
    parameter and of h0: a dict with the keys of params plus "h0"."""
    def loss_at(p, h):
        return fastrnn.loss_and_grad(p, X, y, h0=h, backend=backend)[0]

    numeric = {}
    for name in KEYS + ("h0",):
        base = h0 if name == "h0" else params[name]
        n = np.empty(base.shape)
        for idx in np.ndindex(base.shape):
            values = []
            for step in (EPS, -EPS):
                p = {key: value.copy() for key, value in params.items()}
                h = h0.copy()
                (h if name == "h0" else p[name])[idx] += step
                values.append(loss_at(p, h))
            n[idx] = (values[0] - values[1]) / (2 * EPS)
        numeric[name] = n
    return numeric


def check_against_finite_differences(params, X, y, h0, backend):
    loss, grads, dh0 = fastrnn.loss_and_grad(params, X, y, h0=h0, backend=backend,
                                             return_dh0=True)
    analytic = dict(grads, h0=dh0)
    numeric = finite_differences(params, X, y, h0, backend)
    floor = 1e-2 * max(1.0, abs(loss))
    strict = total = 0
    for name in KEYS + ("h0",):
        a, n = analytic[name], numeric[name]
        assert a.shape == n.shape, name
        err = np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)
        worst = np.unravel_index(np.argmax(err), err.shape)
        assert err.max() <= 1e-6, (f"{name}{worst}: analytic {a[worst]!r}, "
                                   f"numerical {n[worst]!r}, error {err[worst]:.2e}")
        strict += int((np.abs(a) + np.abs(n) >= floor).sum())
        total += a.size
    assert strict >= max(3, total // 5), (strict, total)


CASES = [(form, ids_in, target, given_h0)
         for form in ("single", "batch", "list")
         for ids_in in (False, True)
         for target in ("ids", "onehot", "soft")
         for given_h0 in (False, True)]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("form,ids_in,target,given_h0", CASES,
                         ids=[f"{f}-{'ids' if i else 'dense'}-y{t}-{'h0' if h else 'zeros'}"
                              for f, i, t, h in CASES])
def test_gradients_match_finite_differences(form, ids_in, target, given_h0, backend):
    for seed in range(2):
        params, X, y, h0 = make_problem(seed, form, ids_in, target, given_h0)
        check_against_finite_differences(params, X, y, h0, backend)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_gradients_through_a_long_sequence(backend):
    """T = 25: the gradient has to travel back through many tanh steps."""
    rng = np.random.default_rng(77)
    k, d, m, T = 3, 4, 3, 25
    params = make_params(rng, k, d, m, 0.6)
    X = rng.normal(0, 1, (T, k))
    y = rng.integers(0, m, T)
    check_against_finite_differences(params, X, y, rng.normal(0, 0.5, d), backend)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_finite_difference_check_can_fail(backend):
    """The checker itself rejects a wrong gradient: a gradient of a different
    problem (targets shifted by one class) must not pass."""
    params, X, y, h0 = make_problem(5, "batch", False, "ids", True)
    wrong_y = (y + 1) % params["W_y"].shape[0]
    loss, grads, dh0 = fastrnn.loss_and_grad(params, X, wrong_y, h0=h0, backend=backend,
                                             return_dh0=True)
    numeric = finite_differences(params, X, y, h0, backend)
    floor = 1e-2 * max(1.0, abs(loss))
    worst = max(np.max(np.abs(grads[key] - numeric[key]) /
                       np.maximum(np.abs(grads[key]) + np.abs(numeric[key]), floor))
                for key in KEYS)
    assert worst > 1e-3
