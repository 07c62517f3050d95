"""The toy of the lecture notes, exactly as written (docs/math.md, section 2):
k = 4, d = 3, T = 3, tanh, softmax output,

    x_1..x_3 = one-hot 0, 1, 2        y_1..y_3 = one-hot 1, 2, 3.

Every expected value here is computed in this file by a hand-written NumPy
loop over t of the notes' equations (the forward pass, the loss, and every
gradient by backpropagation through time written out step by step), never by
fastrnn: both backends are held to it to 1e-12, and the hand-written
gradients are themselves checked against central differences of the
hand-written loss.
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

# Every spelling of the toy: all are the same network on the same data.
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


def _fixed_params():
    """Weights written out by hand, as a student would."""
    return {"W_x": np.array([[0.5, -0.3, 0.8, 0.1], [-0.6, 0.2, 0.4, -0.9], [0.3, 0.7, -0.5, 0.2]]),
            "W_h": np.array([[0.1, -0.4, 0.6], [0.7, 0.2, -0.3], [-0.5, 0.4, 0.1]]),
            "b_h": np.array([0.05, -0.1, 0.2]),
            "W_y": np.array([[0.3, -0.2, 0.5], [-0.4, 0.6, 0.1], [0.2, 0.3, -0.7],
                             [0.8, -0.5, 0.4]]),
            "b_y": np.array([0.1, -0.2, 0.05, 0.3])}


PARAM_SETS = {
    "fixed-by-hand": _fixed_params,
    "init_params(4, 3, random_state=0)": lambda: fastrnn.init_params(4, 3, random_state=0),
    "random-biased-1": lambda: _random_params(1),
    "random-biased-2-large": lambda: _random_params(2, scale=1.5),
}


@pytest.fixture(params=list(PARAM_SETS), ids=list(PARAM_SETS))
def params(request):
    return PARAM_SETS[request.param]()


# --------------------------------------------------- the notes, by hand
def hand_forward(params, h0=None):
    """The notes' equations, one step at a time:
    a_t = W_H h_{t-1} + W_X x_t + b_h, h_t = tanh(a_t), z_t = W_Y h_t + b_y,
    ŷ_t = softmax(z_t), L = -Σ_t Σ_c y_tc log ŷ_tc.
    Returns (L, [h_0..h_T], [ŷ_1..ŷ_T])."""
    W_x, W_h, b_h, W_y, b_y = (params[k] for k in KEYS)
    hs = [np.zeros(D) if h0 is None else np.asarray(h0, float)]
    ps, loss = [], 0.0
    for t in range(T):
        x_t, y_t = X_ONEHOT[t], Y_ONEHOT[t]
        a_t = W_h @ hs[-1] + W_x @ x_t + b_h
        h_t = np.tanh(a_t)
        z_t = W_y @ h_t + b_y
        e = np.exp(z_t - z_t.max())
        p_t = e / e.sum()
        loss -= float(np.sum(y_t * np.log(p_t)))
        hs.append(h_t)
        ps.append(p_t)
    return loss, np.array(hs), np.array(ps)


def hand_bptt(params, h0=None):
    """Backpropagation through time of the notes' toy, written out from
    docs/math.md section 2: for t = T..1, with da_{T+1} = 0,
        dz_t = ŷ_t − y_t,  dW_Y += dz_t h_tᵀ,  db_y += dz_t,
        dh_t = W_Yᵀ dz_t + W_Hᵀ da_{t+1},  da_t = dh_t ⊙ (1 − h_t²),
        dW_X += da_t x_tᵀ,  dW_H += da_t h_{t−1}ᵀ,  db_h += da_t;
    dh_0 = W_Hᵀ da_1. Returns (L, grads, dh0)."""
    loss, hs, ps = hand_forward(params, h0)
    W_h, W_y = params["W_h"], params["W_y"]
    grads = {key: np.zeros_like(params[key]) for key in KEYS}
    da_next = np.zeros(D)
    for t in reversed(range(T)):                 # 0-based t; h_t is hs[t + 1]
        h_t, h_prev = hs[t + 1], hs[t]
        dz = ps[t] - Y_ONEHOT[t]
        grads["W_y"] += np.outer(dz, h_t)
        grads["b_y"] += dz
        dh = W_y.T @ dz + W_h.T @ da_next
        da = dh * (1.0 - h_t ** 2)
        grads["W_x"] += np.outer(da, X_ONEHOT[t])
        grads["W_h"] += np.outer(da, h_prev)
        grads["b_h"] += da
        da_next = da
    dh0 = W_h.T @ da_next
    return loss, grads, dh0


def _fd(loss_of, array, eps=1e-6):
    """Central differences of loss_of() with respect to every entry of array
    (changed in place and restored)."""
    n = np.empty_like(array)
    for idx in np.ndindex(array.shape):
        saved = array[idx]
        array[idx] = saved + eps
        plus = loss_of()
        array[idx] = saved - eps
        minus = loss_of()
        array[idx] = saved
        n[idx] = (plus - minus) / (2 * eps)
    return n


def test_hand_bptt_is_the_derivative_of_the_hand_loss(params):
    """The oracle itself: the hand-written BPTT equals central differences of
    the hand-written loss (nothing of fastrnn involved), so the tests below
    compare fastrnn with a checked computation."""
    h0 = np.array([0.4, -0.2, 0.6])
    _, grads, dh0 = hand_bptt(params, h0)
    for key in KEYS:
        numeric = _fd(lambda: hand_forward(params, h0)[0], params[key])
        assert np.abs(numeric - grads[key]).max() <= 1e-7 * max(1.0, np.abs(grads[key]).max())
    numeric = _fd(lambda: hand_forward(params, h0)[0], h0)
    assert np.abs(numeric - dh0).max() <= 1e-7 * max(1.0, np.abs(dh0).max())


# ---------------------------------------------------------- the data
def test_the_demo_and_the_bench_case_run_the_notes_toy():
    """`fastrnn demo` and the bench case "toy" feed exactly the notes' inputs
    and targets (written out in this file)."""
    from fastrnn.cli import demo
    from fastrnn.cli.cases import make_case
    np.testing.assert_array_equal(demo.TOY_X, np.array([[1., 0, 0, 0], [0, 1, 0, 0],
                                                        [0, 0, 1, 0]]))
    np.testing.assert_array_equal(demo.TOY_Y, np.array([[0., 1, 0, 0], [0, 0, 1, 0],
                                                        [0, 0, 0, 1]]))
    _, X, y = make_case("toy")
    np.testing.assert_array_equal(np.asarray(X), np.array([[1., 0, 0, 0], [0, 1, 0, 0],
                                                           [0, 0, 1, 0]]))
    np.testing.assert_array_equal(np.asarray(y), [1, 2, 3])


# ------------------------------------------------- forward pass and loss
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", list(TOY_FORMS))
def test_toy_forward_and_loss_match_the_hand_loop(params, backend, form):
    X, y = TOY_FORMS[form]
    loss_hand, hs_hand, ps_hand = hand_forward(params)
    loss = fastrnn.loss_and_grad(params, X, y, backend=backend)[0]
    assert isinstance(loss, float)
    assert abs(loss - loss_hand) <= 1e-12 * abs(loss_hand)
    probs, h_last, hidden = fastrnn.forward(params, X, backend=backend, return_hidden=True)
    assert probs.shape == (T, K) and h_last.shape == (D,) and hidden.shape == (T, D)
    assert normwise(probs, ps_hand) <= 1e-12
    assert normwise(hidden, hs_hand[1:]) <= 1e-12
    assert normwise(h_last, hs_hand[-1]) <= 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_toy_forward_from_a_given_h0_matches_the_hand_loop(params, backend):
    h0 = np.array([0.3, -0.5, 0.8])
    loss_hand, hs_hand, ps_hand = hand_forward(params, h0)
    loss = fastrnn.loss_and_grad(params, X_IDS, Y_IDS, h0=h0, backend=backend)[0]
    assert abs(loss - loss_hand) <= 1e-12 * abs(loss_hand)
    probs, h_last = fastrnn.forward(params, X_ONEHOT, h0=h0, backend=backend)
    assert normwise(probs, ps_hand) <= 1e-12
    assert normwise(h_last, hs_hand[-1]) <= 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_toy_zero_model_loss_is_T_log_m(backend):
    """With every parameter 0, ŷ_t is uniform: L = T log m = 3 log 4, and
    every gradient but those of the output layer's bias is 0."""
    zeros = {k: np.zeros_like(v) for k, v in _fixed_params().items()}
    loss, grads = fastrnn.loss_and_grad(zeros, X_ONEHOT, Y_ONEHOT, backend=backend)
    assert abs(loss - 3 * np.log(4)) <= 1e-14
    # dz_t = 1/4 - y_t summed over t: [3/4, 3/4 - 1, 3/4 - 1, 3/4 - 1]
    np.testing.assert_allclose(grads["b_y"], [0.75, -0.25, -0.25, -0.25], rtol=0, atol=1e-15)
    for key in ("W_x", "W_h", "b_h", "W_y"):
        assert not grads[key].any(), key


# ------------------------------------------------------------ gradients
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", list(TOY_FORMS))
def test_toy_gradients_and_dh0_match_the_hand_bptt(params, backend, form):
    X, y = TOY_FORMS[form]
    loss_hand, grads_hand, dh0_hand = hand_bptt(params)
    loss, grads, dh0 = fastrnn.loss_and_grad(params, X, y, backend=backend, return_dh0=True)
    assert abs(loss - loss_hand) <= 1e-12 * abs(loss_hand)
    assert set(grads) == set(KEYS)
    for key in KEYS:
        assert grads[key].shape == params[key].shape, key
        assert normwise(grads[key], grads_hand[key]) <= 1e-12, key
    assert dh0.shape == (D,)
    assert normwise(dh0, dh0_hand) <= 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", list(TOY_FORMS))
def test_toy_gradients_from_a_given_h0_match_the_hand_bptt(params, backend, form):
    X, y = TOY_FORMS[form]
    h0 = np.array([0.1, 0.2, -0.3])
    loss_hand, grads_hand, dh0_hand = hand_bptt(params, h0)
    loss, grads, dh0 = fastrnn.loss_and_grad(params, X, y, h0=h0, backend=backend,
                                             return_dh0=True)
    assert abs(loss - loss_hand) <= 1e-12 * abs(loss_hand)
    for key in KEYS:
        assert normwise(grads[key], grads_hand[key]) <= 1e-12, key
    assert normwise(dh0, dh0_hand) <= 1e-12


# Finite differences of the hand-written loss against fastrnn's analytic
# gradients. Error measure per coordinate, for analytic a and numerical n:
#     err = |a - n| / max(|a| + |n|, floor),   floor = 1e-2 * max(1, |L|),
# required err <= 1e-6. So every coordinate with |a| + |n| >= floor is held
# to a genuine relative error of 1e-6; smaller coordinates (including exact
# zeros such as the W_x column of the never-seen input 3) are held to an
# absolute error of 1e-8 * max(1, |L|): a central difference of a float64
# loss at eps = 1e-6 carries rounding noise of about ulp(L) / (2 eps).
EPS = 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", ["float-X/onehot-y", "ids-X/ids-y"])
def test_toy_gradients_match_finite_differences_of_the_hand_loss(params, backend, form):
    X, y = TOY_FORMS[form]
    h0 = np.array([0.4, -0.2, 0.6])
    loss, grads, dh0 = fastrnn.loss_and_grad(params, X, y, h0=h0, backend=backend,
                                             return_dh0=True)
    floor = 1e-2 * max(1.0, abs(loss))
    strict = 0
    for name, a in dict(grads, h0=dh0).items():
        array = h0 if name == "h0" else params[name]
        n = _fd(lambda: hand_forward(params, h0)[0], array, EPS)
        err = np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)
        assert err.max() <= 1e-6, (name, a, n, err)
        strict += int((np.abs(a) + np.abs(n) >= floor).sum())
    assert strict >= 20                 # the relative part of the measure really was exercised


def test_toy_unseen_input_column_has_zero_gradient(params):
    """Input 3 never occurs in the toy, so column 3 of dW_X is exactly 0 (da_t
    x_tᵀ never touches it)."""
    for backend in BACKENDS:
        for X, y in TOY_FORMS.values():
            grads = fastrnn.loss_and_grad(params, X, y, backend=backend)[1]
            assert np.all(grads["W_x"][:, 3] == 0.0)
            assert np.any(grads["W_x"][:, :3] != 0.0)


# ---------------------------------------------- the demo's training
def test_the_demo_training_is_the_notes_gradient_descent_and_learns_1_2_3():
    """`fastrnn demo` trains FastRNN(n_hidden=3, optimizer='sgd',
    learning_rate=0.1, epochs=200, random_state=0) from
    init_params(4, 3, random_state=0): the notes' plain gradient descent,
    θ ← θ − 0.1 ∂L/∂θ once per epoch. The same 200 steps by hand (hand_bptt)
    give the parameters both backends end with, the losses and
    probabilities the demo prints, and a network that predicts [1 2 3]."""
    from fastrnn.cli.demo import run_training
    start = fastrnn.init_params(4, 3, random_state=0)
    theta = {key: value.copy() for key, value in start.items()}
    hand_losses = []
    for _ in range(200):
        loss, grads, _ = hand_bptt(theta)
        hand_losses.append(loss)
        for key in KEYS:
            theta[key] -= 0.1 * grads[key]
    final_loss, _, final_probs = hand_forward(theta)
    np.testing.assert_array_equal(final_probs.argmax(axis=1), [1, 2, 3])

    for backend in BACKENDS:
        model = fastrnn.FastRNN(n_hidden=3, optimizer="sgd", learning_rate=0.1, epochs=200,
                                random_state=0, backend=backend).fit(X_ONEHOT, Y_ONEHOT)
        for key in KEYS:
            assert normwise(model.params_[key], theta[key]) <= 1e-10, (backend, key)
        np.testing.assert_allclose(model.loss_curve_, hand_losses, rtol=1e-10)

    lines = []
    run_training(seed=0, repeat=1, out=lambda text="": lines.append(text))
    printed = "\n".join(lines)
    assert "FastRNN(n_hidden=3, optimizer='sgd', learning_rate=0.1, epochs=200, " \
           "random_state=0)" in printed
    rows = {int(line.split()[0]): line.split() for line in lines
            if line.strip() and line.split()[0].isdigit()}
    p_right = final_probs[np.arange(3), [1, 2, 3]]
    assert float(rows[0][1]) == pytest.approx(hand_forward(start)[0], abs=5e-5)
    assert float(rows[200][1]) == pytest.approx(final_loss, abs=5e-5)
    assert " ".join(rows[200][2:5]) == "[1 2 3]"
    np.testing.assert_allclose([float(v) for v in rows[200][5:8]], p_right, atol=5e-4)
    assert "Final predictions: [1 2 3]" in printed
    assert "the shifted sequence" in printed
