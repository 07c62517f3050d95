"""Properties that hold for every network, checked on both backends:
probabilities are distributions, the logit gradient of every step sums to 0,
a zero model predicts uniformly (loss T log m), outputs are shaped like the
inputs in every form, and results are deterministic.
"""
import numpy as np
import pytest

import fastrnn

BACKENDS = ("numba", "numpy")
KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")


def make_params(rng, k, d, m, scale=0.8):
    return {"W_x": rng.normal(0, scale, (d, k)), "W_h": rng.normal(0, scale, (d, d)),
            "b_h": rng.normal(0, scale, d), "W_y": rng.normal(0, scale, (m, d)),
            "b_y": rng.normal(0, scale, m)}


def zero_params(k, d, m):
    return {"W_x": np.zeros((d, k)), "W_h": np.zeros((d, d)), "b_h": np.zeros(d),
            "W_y": np.zeros((m, d)), "b_y": np.zeros(m)}


def all_forms(rng, k, m, B=3, T=4, lengths=(2, 5, 1)):
    """(name, X, y, B, step shape) for every accepted input form."""
    ids_b = rng.integers(0, k, (B, T))
    ids_b[0] = 0                              # never looks like one-hot int rows
    return [
        ("single-dense", rng.normal(0, 1, (T, k)), rng.integers(0, m, T)),
        ("single-ids", rng.integers(0, k, T), rng.dirichlet(np.ones(m), T)),
        ("batch-dense", rng.normal(0, 1, (B, T, k)), rng.dirichlet(np.ones(m), (B, T))),
        ("batch-ids", ids_b, rng.integers(0, m, (B, T))),
        ("list-dense", [rng.normal(0, 1, (L, k)) for L in lengths],
         [rng.integers(0, m, L) for L in lengths]),
        ("list-ids", [rng.integers(0, k, L) for L in lengths],
         [np.eye(m)[rng.integers(0, m, L)] for L in lengths]),
    ]


# ---------------------------------------------------------------------------
# Probabilities

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(4))
def test_probabilities_are_distributions(backend, seed):
    rng = np.random.default_rng(seed)
    k, d, m = 3, 4, 5
    params = make_params(rng, k, d, m)
    for name, X, _ in all_forms(rng, k, m):
        probs = fastrnn.forward(params, X, backend=backend)[0]
        for P in (probs if isinstance(probs, list) else [probs]):
            assert P.shape[-1] == m
            assert np.all(P > 0) and np.all(P <= 1), name
            np.testing.assert_allclose(P.sum(axis=-1), 1.0, rtol=0, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_is_stable_for_huge_logits(backend):
    """b_y of ±800 would overflow exp without subtracting the max logit."""
    rng = np.random.default_rng(9)
    params = make_params(rng, 2, 3, 3)
    params["b_y"] = np.array([800.0, -800.0, 799.0])
    probs = fastrnn.forward(params, rng.normal(0, 1, (4, 2)), backend=backend)[0]
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-14)
    # z_0 − z_2 = 1 + O(|W_y|), so ŷ_0 > ŷ_2 ≫ ŷ_1 (which underflows to 0)
    assert np.all(probs[:, 1] == 0.0)
    loss = fastrnn.loss_and_grad(params, rng.normal(0, 1, (4, 2)), np.zeros(4, int),
                                 backend=backend)[0]
    assert np.isfinite(loss)


# ---------------------------------------------------------------------------
# Logit gradients: Σ_c dz_{t,c} = Σ_c (ŷ_tc − y_tc) = 1 − 1 = 0 for every step,
# so Σ_c db_y[c] = 0 and Σ_c dW_y[c, j] = Σ_t (Σ_c dz_tc) h_tj = 0 for every j.

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(4))
def test_logit_gradients_sum_to_zero(backend, seed):
    rng = np.random.default_rng(100 + seed)
    k, d, m = 4, 3, 6
    params = make_params(rng, k, d, m, scale=1.2)
    for name, X, y in all_forms(rng, k, m):
        grads = fastrnn.loss_and_grad(params, X, y, backend=backend)[1]
        scale = np.abs(grads["b_y"]).sum()
        assert scale > 1e-3, name                      # not trivially zero
        assert abs(grads["b_y"].sum()) <= 1e-14 * max(1.0, scale) * m, name
        col = grads["W_y"].sum(axis=0)
        assert np.all(np.abs(col) <= 1e-14 * m * max(1.0, np.abs(grads["W_y"]).sum())), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_step_logit_gradient_is_probs_minus_target(backend):
    """With T = 1 and B = 1, db_y = ŷ_1 − y_1 exactly as forward reports ŷ_1
    (and it sums to 0)."""
    rng = np.random.default_rng(7)
    k, d, m = 3, 4, 5
    params = make_params(rng, k, d, m)
    X = rng.normal(0, 1, (1, k))
    for y in (np.array([2]), rng.dirichlet(np.ones(m), 1)):
        probs = fastrnn.forward(params, X, backend=backend)[0]
        target = np.eye(m)[y] if y.dtype.kind == "i" else y
        grads = fastrnn.loss_and_grad(params, X, y, backend=backend)[1]
        np.testing.assert_allclose(grads["b_y"], probs[0] - target[0], rtol=0, atol=1e-15)
        assert abs(grads["b_y"].sum()) <= 1e-15


# ---------------------------------------------------------------------------
# The zero model

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k,d,m", [(4, 3, 4), (1, 1, 2), (3, 5, 7), (2, 2, 1)])
def test_zero_model_loss_is_T_log_m(backend, k, d, m):
    rng = np.random.default_rng(k * 100 + d * 10 + m)
    params = zero_params(k, d, m)
    lengths = (2, 5, 1)
    for name, X, y in all_forms(rng, k, m, B=3, T=4, lengths=lengths):
        loss, grads = fastrnn.loss_and_grad(params, X, y, backend=backend)
        if name.startswith("list"):
            expected = np.mean([T * np.log(m) for T in lengths])      # mean of T_b log m
        else:
            expected = 4 * np.log(m)                                  # every sequence has T = 4
        assert abs(loss - expected) <= 1e-13 * max(1.0, expected), (name, loss, expected)
        probs = fastrnn.forward(params, X, backend=backend)[0]
        for P in (probs if isinstance(probs, list) else [probs]):
            np.testing.assert_array_equal(P, np.full(P.shape, 1.0 / m))
        # W_y = 0 stops every gradient at the output layer: only b_y moves
        for key in ("W_x", "W_h", "b_h", "W_y"):
            assert np.all(grads[key] == 0.0), (name, key)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_model_ragged_mean(backend):
    """A ragged list: the loss is the mean over sequences of T_b log m, not
    the mean over all steps."""
    m, lengths = 5, (1, 2, 9)
    X = [np.zeros(L, dtype=int) for L in lengths]
    y = [np.zeros(L, dtype=int) for L in lengths]
    loss = fastrnn.loss_and_grad(zero_params(2, 3, m), X, y, backend=backend)[0]
    assert abs(loss - 4 * np.log(m)) <= 1e-14 * 4 * np.log(m)          # (1 + 2 + 9) / 3 = 4
    assert abs(loss - np.log(m)) > 1                                   # not the per-step mean


# ---------------------------------------------------------------------------
# Shapes

@pytest.mark.parametrize("backend", BACKENDS)
def test_output_shapes_follow_input_shapes(backend):
    rng = np.random.default_rng(11)
    k, d, m, B, T, lengths = 3, 4, 5, 3, 4, (2, 5, 1)
    params = make_params(rng, k, d, m)
    for name, X, y in all_forms(rng, k, m, B=B, T=T, lengths=lengths):
        h0 = rng.normal(0, 0.5, (d,) if name.startswith("single") else (B, d))
        probs, h_last, hidden = fastrnn.forward(params, X, h0=h0, backend=backend,
                                                return_hidden=True)
        out2 = fastrnn.forward(params, X, h0=h0, backend=backend)
        assert len(out2) == 2
        loss, grads, dh0 = fastrnn.loss_and_grad(params, X, y, h0=h0, backend=backend,
                                                 return_dh0=True)
        assert len(fastrnn.loss_and_grad(params, X, y, backend=backend)) == 2
        assert isinstance(loss, float)
        assert set(grads) == set(KEYS)
        for key in KEYS:
            assert grads[key].shape == params[key].shape and grads[key].dtype == np.float64
        assert dh0.shape == h0.shape
        if name.startswith("single"):
            assert probs.shape == (T, m) and hidden.shape == (T, d) and h_last.shape == (d,)
        elif name.startswith("batch"):
            assert probs.shape == (B, T, m) and hidden.shape == (B, T, d)
            assert h_last.shape == (B, d)
        else:
            assert isinstance(probs, list) and isinstance(hidden, list)
            assert [p.shape for p in probs] == [(L, m) for L in lengths]
            assert [h.shape for h in hidden] == [(L, d) for L in lengths]
            assert h_last.shape == (B, d)
        # h_last is the last hidden state of each sequence
        hid = hidden if isinstance(hidden, list) else (
            [hidden] if name.startswith("single") else list(hidden))
        last = np.array([H[-1] for H in hid])
        np.testing.assert_array_equal(last.reshape(h_last.shape), h_last)
        for arr in (probs if isinstance(probs, list) else [probs]):
            assert arr.dtype == np.float64


# ---------------------------------------------------------------------------
# Determinism

def _bits(out):
    if isinstance(out, dict):
        return [_bits(out[k]) for k in sorted(out)]
    if isinstance(out, (list, tuple)):
        return [_bits(o) for o in out]
    return np.asarray(out).tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_are_deterministic(backend):
    rng = np.random.default_rng(12)
    k, d, m = 3, 4, 5
    params = make_params(rng, k, d, m, scale=1.5)
    for name, X, y in all_forms(rng, k, m):
        first = (fastrnn.forward(params, X, backend=backend, return_hidden=True),
                 fastrnn.loss_and_grad(params, X, y, backend=backend, return_dh0=True))
        second = (fastrnn.forward(params, X, backend=backend, return_hidden=True),
                  fastrnn.loss_and_grad(params, X, y, backend=backend, return_dh0=True))
        assert _bits(first) == _bits(second), name


def test_init_params_is_reproducible_and_as_documented():
    a = fastrnn.init_params(4, 3, random_state=0)
    b = fastrnn.init_params(4, 3, random_state=0)
    c = fastrnn.init_params(4, 3, random_state=1)
    assert list(a) == list(KEYS)
    assert all(np.array_equal(a[k], b[k]) for k in KEYS)
    assert not np.array_equal(a["W_x"], c["W_x"])
    shapes = {"W_x": (3, 4), "W_h": (3, 3), "b_h": (3,), "W_y": (4, 3), "b_y": (4,)}
    for key, shape in shapes.items():
        assert a[key].shape == shape and a[key].dtype == np.float64
        assert a[key].flags.c_contiguous
    bound = 1 / np.sqrt(3)
    for key in ("W_x", "W_h", "W_y"):
        assert np.all(np.abs(a[key]) <= bound)
    assert np.all(a["b_h"] == 0) and np.all(a["b_y"] == 0)
    assert fastrnn.init_params(4, 3, n_outputs=7)["W_y"].shape == (7, 3)
