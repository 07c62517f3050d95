"""The toy of the lecture notes, exactly as written (SPEC.md, "The toy of the
assignment"): k = 4, d = 3, T = 3, tanh, softmax output,

    x_1..x_3 = one-hot 0, 1, 2        y_1..y_3 = one-hot 1, 2, 3.

Checked three independent ways: a hand-written NumPy loop over t (inside this
file, not fastrnn's reference), the two backends against each other, and each
backend against central finite differences.
"""
import numpy as np
import pytest

import fastrnn
from _metrics import normwise

K, D, T = 4, 3, 3
X_ONEHOT = np.eye(4)[[0, 1, 2]]            # (T, k) = (3, 4) float
Y_ONEHOT = np.eye(4)[[1, 2, 3]]            # (T, m) = (3, 4) float
X_IDS = np.array([0, 1, 2])                # the same inputs as token ids
Y_IDS = np.array([1, 2, 3])                # the same targets as class ids
KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
BACKENDS = ("numba", "numpy")

# Every spelling of the toy: all must give the same numbers.
TOY_FORMS = {
    "float-X/onehot-y": (X_ONEHOT, Y_ONEHOT),
    "float-X/ids-y": (X_ONEHOT, Y_IDS),
    "ids-X/onehot-y": (X_IDS, Y_ONEHOT),
    "ids-X/ids-y": (X_IDS, Y_IDS),
}


def _random_params(seed, scale=0.7):
    """Toy-sized parameters with non-zero biases (init_params has zero biases,
    which would leave the bias terms of the hand-written loop untested)."""
    rng = np.random.default_rng(seed)
    return {"W_x": rng.normal(0, scale, (D, K)), "W_h": rng.normal(0, scale, (D, D)),
            "b_h": rng.normal(0, scale, D), "W_y": rng.normal(0, scale, (K, D)),
            "b_y": rng.normal(0, scale, K)}


PARAM_SETS = {
    "init_params(4, 3, random_state=0)": lambda: fastrnn.init_params(4, 3, random_state=0),
    "random-biased-1": lambda: _random_params(1),
    "random-biased-2-large": lambda: _random_params(2, scale=1.5),
}


@pytest.fixture(params=list(PARAM_SETS), ids=list(PARAM_SETS))
def params(request):
    return PARAM_SETS[request.param]()


def _hand_loop(params, h0=None):
    """The notes' equations, one step at a time, written from SPEC.md only:
    a_t = W_H h_{t-1} + W_X x_t + b_h, h_t = tanh(a_t), z_t = W_Y h_t + b_y,
    ŷ_t = softmax(z_t), L = -Σ_t Σ_c y_tc log ŷ_tc."""
    W_x, W_h, b_h, W_y, b_y = (params[k] for k in KEYS)
    h = np.zeros(D) if h0 is None else h0
    hs, ps, loss = [], [], 0.0
    for t in range(T):
        x_t, y_t = X_ONEHOT[t], Y_ONEHOT[t]
        a = W_h @ h + W_x @ x_t + b_h
        h = np.tanh(a)
        z = W_y @ h + b_y
        e = np.exp(z - z.max())
        p = e / e.sum()
        loss -= float(np.sum(y_t * np.log(p)))
        hs.append(h)
        ps.append(p)
    return loss, np.array(hs), np.array(ps)


def test_toy_shapes_are_the_notes():
    assert X_ONEHOT.shape == (3, 4) and Y_ONEHOT.shape == (3, 4)
    assert X_ONEHOT.dtype == np.float64 and Y_ONEHOT.dtype == np.float64
    np.testing.assert_array_equal(X_ONEHOT.argmax(1), X_IDS)
    np.testing.assert_array_equal(Y_ONEHOT.argmax(1), Y_IDS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", list(TOY_FORMS))
def test_toy_loss_and_forward_match_hand_written_loop(params, backend, form):
    X, y = TOY_FORMS[form]
    loss_hand, H_hand, P_hand = _hand_loop(params)
    loss, grads = fastrnn.loss_and_grad(params, X, y, backend=backend)
    assert isinstance(loss, float)
    assert abs(loss - loss_hand) <= 1e-12 * abs(loss_hand)
    probs, h_last, hidden = fastrnn.forward(params, X, backend=backend, return_hidden=True)
    assert probs.shape == (T, K) and h_last.shape == (D,) and hidden.shape == (T, D)
    assert normwise(probs, P_hand) <= 1e-12
    assert normwise(hidden, H_hand) <= 1e-12
    assert normwise(h_last, H_hand[-1]) <= 1e-12
    assert set(grads) == set(KEYS)
    for key in KEYS:
        assert grads[key].shape == params[key].shape


@pytest.mark.parametrize("backend", BACKENDS)
def test_toy_with_given_h0_matches_hand_written_loop(params, backend):
    h0 = np.array([0.3, -0.5, 0.8])
    loss_hand, H_hand, P_hand = _hand_loop(params, h0)
    loss = fastrnn.loss_and_grad(params, X_IDS, Y_IDS, h0=h0, backend=backend)[0]
    assert abs(loss - loss_hand) <= 1e-12 * abs(loss_hand)
    probs, h_last = fastrnn.forward(params, X_ONEHOT, h0=h0, backend=backend)
    assert normwise(probs, P_hand) <= 1e-12
    assert normwise(h_last, H_hand[-1]) <= 1e-12


def test_toy_zero_model_loss_is_T_log_m():
    """With every parameter 0, ŷ_t is uniform: L = T log m = 3 log 4."""
    zeros = {k: np.zeros_like(v) for k, v in fastrnn.init_params(4, 3, random_state=0).items()}
    for backend in BACKENDS:
        loss = fastrnn.loss_and_grad(zeros, X_ONEHOT, Y_ONEHOT, backend=backend)[0]
        assert abs(loss - 3 * np.log(4)) <= 1e-14


def test_all_toy_forms_give_the_same_numbers(params):
    """ids and one-hot floats are the same toy: same loss, grads and dh0 (1e-12)."""
    for backend in BACKENDS:
        base_loss, base_grads, base_dh0 = fastrnn.loss_and_grad(
            params, X_ONEHOT, Y_ONEHOT, backend=backend, return_dh0=True)
        for form, (X, y) in TOY_FORMS.items():
            loss, grads, dh0 = fastrnn.loss_and_grad(params, X, y, backend=backend,
                                                     return_dh0=True)
            assert abs(loss - base_loss) <= 1e-12 * abs(base_loss), form
            for key in KEYS:
                assert normwise(grads[key], base_grads[key]) <= 1e-12, (form, key)
            assert normwise(dh0, base_dh0) <= 1e-12, form


@pytest.mark.parametrize("form", list(TOY_FORMS))
def test_toy_backends_agree(params, form):
    X, y = TOY_FORMS[form]
    h0 = np.array([0.1, 0.2, -0.3])
    ref = fastrnn.loss_and_grad(params, X, y, h0=h0, backend="numpy", return_dh0=True)
    ker = fastrnn.loss_and_grad(params, X, y, h0=h0, backend="numba", return_dh0=True)
    assert normwise(ker[0], ref[0]) <= 1e-12
    for key in KEYS:
        assert normwise(ker[1][key], ref[1][key]) <= 1e-12, key
    assert normwise(ker[2], ref[2]) <= 1e-12
    pr, hr, Hr = fastrnn.forward(params, X, h0=h0, backend="numpy", return_hidden=True)
    pk, hk, Hk = fastrnn.forward(params, X, h0=h0, backend="numba", return_hidden=True)
    assert normwise(pk, pr) <= 1e-12
    assert normwise(hk, hr) <= 1e-12
    assert normwise(Hk, Hr) <= 1e-12


# Finite differences. Error measure per coordinate, for analytic a and
# numerical n:
#     err = |a - n| / max(|a| + |n|, floor),   floor = 1e-2 * max(1, |L|),
# required err <= 1e-6. So every coordinate with |a| + |n| >= floor is held
# to a genuine relative error of 1e-6; smaller coordinates (including exact
# zeros such as the W_x column of the never-seen input 3) are held to an
# absolute error of 1e-8 * max(1, |L|). The floor is not arbitrary: a central
# difference of a float64 loss at eps = 1e-6 carries rounding noise of about
# ulp(L) / (2 eps) per ulp of error in L (measured ≈ 3e-10 * |L| for these
# losses), so a purely relative test of gradients near zero would be testing
# float64 round-off, not the gradient.
EPS = 1e-6


def _fd_check(params, X, y, h0, backend):
    def loss_at(p, h):
        return fastrnn.loss_and_grad(p, X, y, h0=h, backend=backend)[0]

    loss, grads, dh0 = fastrnn.loss_and_grad(params, X, y, h0=h0, backend=backend,
                                             return_dh0=True)
    floor = 1e-2 * max(1.0, abs(loss))
    analytic = dict(grads, h0=dh0)
    strict = 0
    for name, a in analytic.items():
        base = h0 if name == "h0" else params[name]
        n = np.empty_like(base)
        for idx in np.ndindex(base.shape):
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            hp, hm = h0.copy(), h0.copy()
            target_p, target_m = (hp, hm) if name == "h0" else (plus[name], minus[name])
            target_p[idx] += EPS
            target_m[idx] -= EPS
            n[idx] = (loss_at(plus, hp) - loss_at(minus, hm)) / (2 * EPS)
        err = np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)
        assert err.max() <= 1e-6, (name, a, n, err)
        strict += int((np.abs(a) + np.abs(n) >= floor).sum())
    # the relative part of the measure really was exercised
    assert strict >= 20


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", list(TOY_FORMS))
def test_toy_gradients_match_finite_differences(params, backend, form):
    X, y = TOY_FORMS[form]
    _fd_check(params, X, y, np.zeros(D), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_toy_gradients_match_finite_differences_given_h0(params, backend):
    _fd_check(params, X_ONEHOT, Y_ONEHOT, np.array([0.4, -0.2, 0.6]), backend)


def test_toy_unseen_input_column_has_zero_gradient(params):
    """Input 3 never occurs in the toy, so column 3 of dW_X is exactly 0."""
    for backend in BACKENDS:
        for X, y in TOY_FORMS.values():
            grads = fastrnn.loss_and_grad(params, X, y, backend=backend)[1]
            assert np.all(grads["W_x"][:, 3] == 0.0)
            assert np.any(grads["W_x"][:, :3] != 0.0)
