"""Converting parameters to and from PyTorch (``fastrnn.convert``).

Without torch: round trips, the gate and bias layout, errors. With torch
(skipped where it is not installed): an ``nn.RNN``/``nn.LSTM`` + ``nn.Linear``
in float64 loaded through the converter computes the loss of fastrnn
(cross-entropy summed over steps, divided by B) and, converted back, every
gradient (parameters, h0, c0) of both fastrnn backends to ≤ 1e-12 normwise.
"""
import numpy as np
import pytest

import fastrnn
from fastrnn.convert import from_torch_state_dict, to_torch_state_dict

KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
RNN_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
TOL = 1e-12


def assert_normwise(actual, desired, what, tol=TOL):
    actual = np.asarray(actual, dtype=float)
    desired = np.asarray(desired, dtype=float)
    assert actual.shape == desired.shape, (what, actual.shape, desired.shape)
    diff = np.linalg.norm(actual - desired)
    scale = np.linalg.norm(desired)
    assert diff <= tol * scale, f"{what}: normwise difference {diff:.3e} vs norm {scale:.3e}"


def random_params(cell, k, d, m, seed):
    """init_params shapes, every entry random (biases too)."""
    rng = np.random.default_rng(seed)
    shapes = fastrnn.init_params(k, d, m, cell=cell, random_state=0)
    return {key: rng.normal(0, 0.6, value.shape) for key, value in shapes.items()}


# --- without torch ----------------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("k, d, m", [(1, 1, 1), (4, 3, 4), (5, 2, 7)])
def test_round_trip(cell, k, d, m):
    params = random_params(cell, k, d, m, seed=k + d + m)
    rnn_state, linear_state = to_torch_state_dict(params)
    G = 4 if cell == "lstm" else 1
    assert set(rnn_state) == set(RNN_KEYS) and set(linear_state) == {"weight", "bias"}
    assert rnn_state["weight_ih_l0"].shape == (G * d, k)
    assert rnn_state["weight_hh_l0"].shape == (G * d, d)
    np.testing.assert_array_equal(rnn_state["bias_hh_l0"], np.zeros(G * d))
    back = from_torch_state_dict(rnn_state, linear_state)
    assert list(back) == list(KEYS)
    for key in KEYS:
        np.testing.assert_array_equal(back[key], params[key], err_msg=key)
        assert back[key].dtype == np.float64 and back[key].flags.c_contiguous


def test_lstm_gate_blocks_and_biases():
    """fastrnn stacks f, i, o, g; PyTorch i, f, g, o; torch's two biases add."""
    d, k = 2, 3
    block = np.repeat(np.arange(4.0), d)                 # row r belongs to gate r // d
    params = {"W_x": np.repeat(block[:, None], k, axis=1), "W_h": np.repeat(block[:, None], d, 1),
              "b_h": block * 10, "W_y": np.ones((5, d)), "b_y": np.zeros(5)}
    rnn_state, _ = to_torch_state_dict(params)
    f, i, o, g = 0.0, 1.0, 2.0, 3.0
    torch_order = np.repeat([i, f, g, o], d)
    np.testing.assert_array_equal(rnn_state["weight_ih_l0"][:, 0], torch_order)
    np.testing.assert_array_equal(rnn_state["weight_hh_l0"][:, 0], torch_order)
    np.testing.assert_array_equal(rnn_state["bias_ih_l0"], torch_order * 10)

    rnn_state["bias_hh_l0"] = np.repeat([0.5, 0.25, 0.125, 1.0], d)   # i, f, g, o
    back = from_torch_state_dict(rnn_state, {"weight": np.ones((5, d)), "bias": np.zeros(5)})
    np.testing.assert_array_equal(back["b_h"], np.repeat([0.25, 10.5, 21.0, 30.125], d))


def test_outputs_are_new_arrays():
    params = random_params("rnn", 3, 2, 3, seed=0)
    rnn_state, linear_state = to_torch_state_dict(params)
    rnn_state["weight_ih_l0"][:] = 99.0
    linear_state["weight"][:] = 99.0
    assert not (params["W_x"] == 99.0).any() and not (params["W_y"] == 99.0).any()
    back = from_torch_state_dict(rnn_state, linear_state)
    back["W_h"][:] = 99.0
    assert not (rnn_state["weight_hh_l0"] == 99.0).any()


def test_missing_biases_are_zero():
    """``bias=False`` modules have no bias keys."""
    params = random_params("lstm", 3, 2, 4, seed=1)
    rnn_state, linear_state = to_torch_state_dict(params)
    back = from_torch_state_dict({key: rnn_state[key] for key in RNN_KEYS[:2]},
                                 {"weight": linear_state["weight"]})
    np.testing.assert_array_equal(back["b_h"], np.zeros(8))
    np.testing.assert_array_equal(back["b_y"], np.zeros(4))
    np.testing.assert_array_equal(back["W_h"], params["W_h"])


def test_integer_and_float32_inputs_become_float64():
    rnn_state = {"weight_ih_l0": np.ones((2, 3), dtype=np.float32),
                 "weight_hh_l0": np.eye(2, dtype=np.int64),
                 "bias_ih_l0": [1, 2], "bias_hh_l0": np.zeros(2, dtype=np.float32)}
    params = from_torch_state_dict(rnn_state, {"weight": np.ones((3, 2)), "bias": np.zeros(3)})
    assert all(value.dtype == np.float64 for value in params.values())
    np.testing.assert_array_equal(params["b_h"], [1.0, 2.0])


def good_states():
    return to_torch_state_dict(random_params("lstm", 3, 2, 4, seed=2))


@pytest.mark.parametrize("change, error, match", [
    (lambda r, lin: ([r], lin), TypeError, r"^rnn_state: expected the state dict"),
    (lambda r, lin: (r, None), TypeError, r"^linear_state: expected the state dict"),
    (lambda r, lin: (dict(r, weight_ih_l1=r["weight_ih_l0"]), lin), ValueError,
     r"^rnn_state: unexpected keys \['weight_ih_l1'\]"),
    (lambda r, lin: (dict(r, weight_hr_l0=np.ones((2, 1))), lin), ValueError,
     r"^rnn_state: unexpected keys \['weight_hr_l0'\]"),
    (lambda r, lin: ({key: r[key] for key in RNN_KEYS[1:]}, lin), ValueError,
     r"^rnn_state: missing keys \['weight_ih_l0'\]"),
    (lambda r, lin: (r, {"bias": lin["bias"]}), ValueError,
     r"^linear_state: missing keys \['weight'\]"),
    (lambda r, lin: (dict(r, weight_hh_l0=np.ones((6, 2))), lin), ValueError,
     r"^rnn_state\['weight_hh_l0'\]: expected shape \(d, d\) .* got \(6, 2\)"),   # a GRU
    (lambda r, lin: (dict(r, weight_ih_l0=np.ones((7, 3))), lin), ValueError,
     r"^rnn_state\['weight_ih_l0'\]: expected shape \(8, k\)"),
    (lambda r, lin: (dict(r, bias_hh_l0=np.ones(7)), lin), ValueError,
     r"^rnn_state\['bias_hh_l0'\]: expected shape \(8,\), got \(7,\)"),
    (lambda r, lin: (r, dict(lin, weight=np.ones((4, 3)))), ValueError,
     r"^linear_state\['weight'\]: expected shape \(m, 2\)"),
    (lambda r, lin: (r, dict(lin, bias=np.ones(3))), ValueError,
     r"^linear_state\['bias'\]: expected shape \(4,\), got \(3,\)"),
    (lambda r, lin: (dict(r, bias_ih_l0=np.full(8, np.inf)), lin), ValueError,
     r"^rnn_state\['bias_ih_l0'\]: expected finite numbers"),
    (lambda r, lin: (dict(r, weight_hh_l0="abc"), lin), TypeError,
     r"^rnn_state\['weight_hh_l0'\]: expected an array of numbers"),
])
def test_from_torch_errors_name_the_argument(change, error, match):
    with pytest.raises(error, match=match):
        from_torch_state_dict(*change(*good_states()))


def test_to_torch_validates_params():
    with pytest.raises(ValueError, match=r"params\['W_h'\]"):
        to_torch_state_dict(dict(random_params("rnn", 2, 3, 2, seed=0), W_h=np.ones((6, 3))))


def test_a_module_instead_of_its_state_dict_gets_a_hint():
    class Module:
        def state_dict(self):
            return {}
    with pytest.raises(TypeError, match=r"pass module\.state_dict\(\)"):
        from_torch_state_dict(Module(), {})


# --- against PyTorch --------------------------------------------------------

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_loss_and_grads(torch, cell, params, X, y, h0, c0):
    """fastrnn's loss and gradients computed by torch modules loaded through
    the converter: sequences run one by one (any lengths), cross-entropy
    summed over steps, divided by B. Gradients converted back with
    from_torch_state_dict; bias_hh_l0's gradient is left out (it equals
    bias_ih_l0's, the gradient of b_h; the sum would double it). c0 is
    used, and its gradient returned, only for an LSTM."""
    k, d, m = params["W_x"].shape[1], params["W_h"].shape[1], params["W_y"].shape[0]
    module = (torch.nn.LSTM if cell == "lstm" else torch.nn.RNN)(k, d, dtype=torch.float64)
    linear = torch.nn.Linear(d, m, dtype=torch.float64)
    rnn_state, linear_state = to_torch_state_dict(params)
    module.load_state_dict({key: torch.from_numpy(value) for key, value in rnn_state.items()})
    linear.load_state_dict({key: torch.from_numpy(value) for key, value in linear_state.items()})
    h0 = torch.tensor(h0, requires_grad=True)
    c0 = torch.tensor(c0, requires_grad=True)
    total = 0.0
    for b, (x, target) in enumerate(zip(X, y)):
        x = torch.from_numpy(np.eye(k)[x] if x.ndim == 1 else x)       # ids: one-hot rows
        state = (h0[b:b + 1], c0[b:b + 1]) if cell == "lstm" else h0[b:b + 1]
        out, _ = module(x, state)                                        # unbatched: (T, d)
        total = total + torch.nn.functional.cross_entropy(
            linear(out), torch.from_numpy(target), reduction="sum")
    loss = total / len(X)
    loss.backward()
    assert_normwise(module.bias_hh_l0.grad, module.bias_ih_l0.grad, "torch's two bias gradients")
    grads = from_torch_state_dict(
        {"weight_ih_l0": module.weight_ih_l0.grad, "weight_hh_l0": module.weight_hh_l0.grad,
         "bias_ih_l0": module.bias_ih_l0.grad},
        {"weight": linear.weight.grad, "bias": linear.bias.grad})
    return loss.item(), grads, h0.grad.numpy(), (c0.grad.numpy() if cell == "lstm" else None)


CASES = [  # cell, lengths, k, d, m, ids, soft
    ("lstm", (3,), 4, 3, 4, False, False),     # the toy's sizes
    ("lstm", (1,), 1, 1, 2, True, True),
    ("lstm", (5, 2, 4), 6, 5, 3, True, False),
    ("lstm", (2, 6), 3, 4, 5, False, True),
    ("rnn", (3,), 4, 3, 4, False, False),
    ("rnn", (4, 1, 3), 5, 2, 3, True, True),
]


@pytest.mark.kernels
@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("case", CASES)
def test_matches_pytorch(torch, case, backend):
    cell, lengths, k, d, m, ids, soft = case
    rng = np.random.default_rng(list(lengths) + [k, d, m])
    params = random_params(cell, k, d, m, seed=len(lengths))
    X = [rng.integers(0, k, T) if ids else rng.normal(0, 1, (T, k)) for T in lengths]
    y = [rng.dirichlet(np.ones(m), T) if soft else rng.integers(0, m, T) for T in lengths]
    B = len(lengths)
    h0, c0 = rng.normal(0, 0.7, (B, d)), rng.normal(0, 1.0, (B, d))
    loss, grads, dh0, dc0 = torch_loss_and_grads(torch, cell, params, X, y, h0, c0)

    state = (h0, c0) if cell == "lstm" else h0
    ours, our_grads, our_dstate = fastrnn.loss_and_grad(params, X, y, h0=state, backend=backend,
                                                        return_dh0=True)
    assert_normwise(ours, loss, "loss")
    for key in KEYS:
        assert_normwise(our_grads[key], grads[key], key)
    if cell == "lstm":
        assert_normwise(our_dstate[0], dh0, "dh0")
        assert_normwise(our_dstate[1], dc0, "dc0")
    else:
        assert_normwise(our_dstate, dh0, "dh0")
