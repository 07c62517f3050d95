"""Converting parameters and gradients between fastrnn and PyTorch
(``fastrnn.convert``), for every cell × n_layers (1, 2, 3) × direction of
the registry.

Without torch: round trips are exact, the LSTM's gate blocks and the two
biases are laid out as docs/math.md says (sections 3, 4), gradients convert
(the GRU's bias_hh n block is ∂L/∂b_hn, not bias_ih's), bad state dicts are
refused with a message naming the argument. With torch (required in CI):
modules loaded with to_torch_state_dict have fastrnn's keys and shapes and
compute fastrnn.forward in float64, and autograd's ``.grad`` of every
parameter is fastrnn's gradient converted with ``gradients=True``, both ways.
"""
import numpy as np
import pytest

import fastrnn
from _metrics import normwise
from _optional import require
from _registry import ARCHITECTURES, arch_id, make_params
from fastrnn.convert import from_torch_state_dict, to_torch_state_dict

K, D, M = 3, 4, 3                   # the registry's sizes (make_params)
TOL = 1e-12

pytestmark = pytest.mark.kernels


def torch_keys(arch):
    cell, layers, bidirectional = arch
    return {f"{name}_l{layer}{suffix}" for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            for layer in range(layers) for suffix in ([""] + ["_reverse"] * bidirectional)}


def blocks(cell):
    return {"rnn": 1, "lstm": 4, "gru": 3}[cell]


# --------------------------------------------------------- without torch
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_round_trip_is_exact(arch):
    cell, layers, bidirectional = arch
    params = make_params(arch, np.random.default_rng(ARCHITECTURES.index(arch)))
    rnn_state, linear_state = to_torch_state_dict(params)
    assert set(rnn_state) == torch_keys(arch) and set(linear_state) == {"weight", "bias"}
    G, Dd = blocks(cell), D * (2 if bidirectional else 1)
    for key, value in rnn_state.items():
        layer = int(key.split("_l")[1].split("_")[0])
        width = K if layer == 0 else Dd
        shape = {"weight_ih": (G * D, width), "weight_hh": (G * D, D)}.get(key[:9], (G * D,))
        assert value.shape == shape and value.dtype == np.float64, key
        assert value.flags.c_contiguous, key
    assert linear_state["weight"].shape == (M, Dd)
    back = from_torch_state_dict(rnn_state, linear_state)
    assert list(back) == list(params)
    for key in params:
        assert np.array_equal(back[key], params[key]), key
        assert back[key].dtype == np.float64 and back[key].flags.c_contiguous
    # and back again: the same state dicts
    again = to_torch_state_dict(back)
    for state, other in zip((rnn_state, linear_state), again):
        assert state.keys() == other.keys()
        assert all(np.array_equal(state[key], other[key]) for key in state)


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_from_torch_adds_the_two_biases(arch):
    """A torch state dict with both biases random: fastrnn's b_h is their sum
    (in fastrnn's gate order), except the GRU's n block, where bias_ih is
    b_xn and bias_hh is b_hn; back to torch, the sums are in bias_ih."""
    cell, layers, bidirectional = arch
    rng = np.random.default_rng(100 + ARCHITECTURES.index(arch))
    rnn_state, linear_state = to_torch_state_dict(make_params(arch, rng))
    rnn_state = {key: rng.normal(0, 1, value.shape) for key, value in rnn_state.items()}
    params = from_torch_state_dict(rnn_state, linear_state)
    order = np.arange(blocks(cell) * D).reshape(-1, D)
    if cell == "lstm":
        order = order[[1, 0, 3, 2]]           # fastrnn's f, i, o, g from torch's i, f, g, o
    order = order.ravel()
    for key in params:
        if not key.startswith("b_h"):
            continue
        suffix = key[len("b_hn"):] if key.startswith("b_hn") else key[len("b_h"):]
        layer = int(suffix[2]) if suffix.startswith("_l") else 0
        torch_suffix = f"_l{layer}" + ("_reverse" if suffix.endswith("_reverse") else "")
        bias_ih, bias_hh = rnn_state["bias_ih" + torch_suffix], rnn_state["bias_hh" + torch_suffix]
        if key.startswith("b_hn"):
            assert np.array_equal(params[key], bias_hh[2 * D:]), key
        elif cell == "gru":
            assert np.array_equal(params[key][:2 * D], (bias_ih + bias_hh)[:2 * D]), key
            assert np.array_equal(params[key][2 * D:], bias_ih[2 * D:]), key
        else:
            assert np.array_equal(params[key], (bias_ih + bias_hh)[order]), key
    back, _ = to_torch_state_dict(params)
    for key in rnn_state:
        if key.startswith("weight"):
            assert np.array_equal(back[key], rnn_state[key]), key
        elif key.startswith("bias_hh"):
            n_block = rnn_state[key][2 * D:] if cell == "gru" else np.zeros(0)
            assert np.array_equal(back[key], np.concatenate([np.zeros(len(back[key]) -
                                                                      len(n_block)), n_block]))


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
    np.testing.assert_array_equal(rnn_state["bias_hh_l0"], np.zeros(4 * d))
    rnn_state["bias_hh_l0"] = np.repeat([0.5, 0.25, 0.125, 1.0], d)   # i, f, g, o
    back = from_torch_state_dict(rnn_state, {"weight": np.ones((5, d)), "bias": np.zeros(5)})
    np.testing.assert_array_equal(back["b_h"], np.repeat([0.25, 10.5, 21.0, 30.125], d))


def test_gru_blocks_and_biases():
    """The GRU's r, u, n are torch's r, z, n; b_hn is bias_hh's n block."""
    d, k = 2, 3
    block = np.repeat(np.arange(3.0), d)
    params = {"W_x": np.repeat(block[:, None], k, axis=1), "W_h": np.repeat(block[:, None], d, 1),
              "b_h": block * 10, "b_hn": np.array([7.0, 8.0]), "W_y": np.ones((5, d)),
              "b_y": np.zeros(5)}
    rnn_state, _ = to_torch_state_dict(params)
    np.testing.assert_array_equal(rnn_state["weight_ih_l0"][:, 0], block)
    np.testing.assert_array_equal(rnn_state["bias_ih_l0"], block * 10)
    np.testing.assert_array_equal(rnn_state["bias_hh_l0"], [0, 0, 0, 0, 7.0, 8.0])


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a[1] < 3], ids=arch_id)
def test_gradients_convert_both_ways(arch):
    """to torch with gradients=True: bias_ih.grad = db_h and bias_hh.grad
    the same, except the GRU's n block, ∂L/∂b_hn; and back: b_h's gradient
    is bias_ih's alone (adding bias_hh's would double it)."""
    cell = arch[0]
    rng = np.random.default_rng(200 + ARCHITECTURES.index(arch))
    params = make_params(arch, rng)
    X, y = rng.normal(0, 1, (2, 4, K)), rng.integers(0, M, (2, 4))
    grads = fastrnn.loss_and_grad(params, X, y)[1]
    rnn_grads, linear_grads = to_torch_state_dict(grads, gradients=True)
    for key in rnn_grads:
        if key.startswith("bias_hh"):
            bias_ih = rnn_grads[key.replace("bias_hh", "bias_ih")]
            if cell == "gru":
                assert np.array_equal(rnn_grads[key][:2 * D], bias_ih[:2 * D]), key
            else:
                assert np.array_equal(rnn_grads[key], bias_ih), key
    back = from_torch_state_dict(rnn_grads, linear_grads, gradients=True)
    assert list(back) == list(grads)
    for key in grads:
        assert np.array_equal(back[key], grads[key]), key


def test_the_grus_bias_hh_gradient_is_db_hn_not_a_copy_of_bias_ih():
    """docs/math.md, section 4: bias_hh.grad's n block is db_hn = Σ_t r_t ⊙
    da^n_t, bias_ih.grad's is db_xn = Σ_t da^n_t. With r_t < 1 they differ."""
    rng = np.random.default_rng(300)
    arch = ("gru", 1, False)
    params = make_params(arch, rng)
    X, y = rng.normal(0, 1, (3, 5, K)), rng.integers(0, M, (3, 5))
    grads = fastrnn.loss_and_grad(params, X, y)[1]
    rnn_grads, _ = to_torch_state_dict(grads, gradients=True)
    n = slice(2 * D, 3 * D)
    assert np.array_equal(rnn_grads["bias_hh_l0"][n], grads["b_hn"])
    assert np.array_equal(rnn_grads["bias_ih_l0"][n], grads["b_h"][n])
    assert np.abs(grads["b_hn"] - grads["b_h"][n]).max() > 1e-3 * np.abs(grads["b_h"][n]).max()
    # and a b_hn gradient survives the round trip, not replaced by b_h's n block
    back = from_torch_state_dict(*to_torch_state_dict(grads, gradients=True), gradients=True)
    assert np.array_equal(back["b_hn"], grads["b_hn"])


def test_outputs_are_new_arrays():
    params = make_params(("gru", 2, True), np.random.default_rng(0))
    rnn_state, linear_state = to_torch_state_dict(params)
    for value in list(rnn_state.values()) + list(linear_state.values()):
        value[...] = 99.0
    assert not any((value == 99.0).any() for value in params.values())
    back = from_torch_state_dict(rnn_state, linear_state)
    for value in back.values():
        value[...] = -1.0
    assert all((value == 99.0).all() for value in rnn_state.values())


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_missing_biases_are_zero(cell):
    """Modules built with ``bias=False`` have no bias keys."""
    params = make_params((cell, 2, True), np.random.default_rng(1))
    rnn_state, linear_state = to_torch_state_dict(params)
    back = from_torch_state_dict({key: v for key, v in rnn_state.items()
                                  if key.startswith("weight")},
                                 {"weight": linear_state["weight"]})
    for key in back:
        if key.startswith("b_"):
            assert np.array_equal(back[key], np.zeros_like(params[key])), key
        else:
            assert np.array_equal(back[key], params[key]), key


def test_integer_and_float32_inputs_become_float64():
    rnn_state = {"weight_ih_l0": np.ones((2, 3), dtype=np.float32),
                 "weight_hh_l0": np.eye(2, dtype=np.int64),
                 "bias_ih_l0": [1, 2], "bias_hh_l0": np.zeros(2, dtype=np.float32)}
    params = from_torch_state_dict(rnn_state, {"weight": np.ones((3, 2)), "bias": np.zeros(3)})
    assert all(value.dtype == np.float64 for value in params.values())
    np.testing.assert_array_equal(params["b_h"], [1.0, 2.0])


def good_states():
    """The state dicts of a 2-layer bidirectional LSTM (k = 3, d = 2, m = 4)."""
    params = fastrnn.init_params(3, 2, 4, cell="lstm", n_layers=2, bidirectional=True,
                                 random_state=2)
    return to_torch_state_dict(params)


def without(state, *keys):
    return {key: value for key, value in state.items() if key not in keys}


@pytest.mark.parametrize("change, error, match", [
    # not state dicts
    (lambda r, lin: ([r], lin), TypeError, r"^rnn_state: expected the state dict"),
    (lambda r, lin: (r, None), TypeError, r"^linear_state: expected the state dict"),
    # unexpected keys, proj_size
    (lambda r, lin: (dict(r, foo=np.ones(2)), lin), ValueError,
     r"^rnn_state: unexpected key 'foo'"),
    (lambda r, lin: (dict(r, weight_hr_l0=np.ones((2, 1))), lin), ValueError,
     r"^rnn_state: unexpected key 'weight_hr_l0'.*proj_size"),
    (lambda r, lin: (dict(r, weight_hr_l1_reverse=np.ones((2, 1))), lin), ValueError,
     r"^rnn_state: unexpected key 'weight_hr_l1_reverse'.*proj_size"),
    (lambda r, lin: (dict(r, **{"weight_ih_l0.orig": r["weight_ih_l0"]}), lin), ValueError,
     r"^rnn_state: unexpected key"),
    (lambda r, lin: (r, dict(lin, foo=np.ones(3))), ValueError,
     r"^linear_state: unexpected keys \['foo'\]"),
    # missing keys
    (lambda r, lin: (without(r, "weight_ih_l0"), lin), ValueError,
     r"^rnn_state: missing keys? \['weight_ih_l0'\]"),
    (lambda r, lin: (without(r, "weight_hh_l0"), lin), ValueError,
     r"^rnn_state: missing keys? \['weight_hh_l0'\]"),
    (lambda r, lin: (without(r, "weight_hh_l1"), lin), ValueError,
     r"^rnn_state: missing keys \['weight_hh_l1'\]"),
    (lambda r, lin: (without(r, "weight_ih_l1_reverse"), lin), ValueError,
     r"^rnn_state: missing keys \['weight_ih_l1_reverse'\]"),
    (lambda r, lin: (dict(r, weight_ih_l2=r["weight_ih_l1"]), lin), ValueError,
     r"^rnn_state: missing keys \['weight_hh_l2'"),
    (lambda r, lin: (r, {"bias": lin["bias"]}), ValueError, r"^linear_state: missing key"),
    # wrong shapes
    (lambda r, lin: (dict(r, weight_hh_l0=np.ones((7, 2))), lin), ValueError,
     r"^rnn_state\['weight_hh_l0'\]: expected shape \(d, d\) .* got \(7, 2\)"),
    (lambda r, lin: (dict(r, weight_ih_l0=np.ones((7, 3))), lin), ValueError,
     r"^rnn_state\['weight_ih_l0'\]: expected shape \(8, k\)"),
    (lambda r, lin: (dict(r, weight_ih_l1=np.ones((8, 2))), lin), ValueError,
     r"^rnn_state\['weight_ih_l1'\]: expected shape \(8, 4\), got \(8, 2\)"),
    (lambda r, lin: (dict(r, weight_hh_l1_reverse=np.ones((8, 3))), lin), ValueError,
     r"^rnn_state\['weight_hh_l1_reverse'\]: expected shape \(8, 2\)"),
    (lambda r, lin: (dict(r, bias_hh_l0=np.ones(7)), lin), ValueError,
     r"^rnn_state\['bias_hh_l0'\]: expected shape \(8,\), got \(7,\)"),
    (lambda r, lin: (r, dict(lin, weight=np.ones((4, 2)))), ValueError,
     r"^linear_state\['weight'\]: expected shape \(m, 4\)"),
    (lambda r, lin: (r, dict(lin, bias=np.ones(3))), ValueError,
     r"^linear_state\['bias'\]: expected shape \(4,\), got \(3,\)"),
    # values
    (lambda r, lin: (dict(r, bias_ih_l1=np.full(8, np.inf)), lin), ValueError,
     r"^rnn_state\['bias_ih_l1'\]: expected finite numbers"),
    (lambda r, lin: (dict(r, weight_hh_l0="abc"), lin), TypeError,
     r"^rnn_state\['weight_hh_l0'\]: expected an array of numbers"),
    (lambda r, lin: (r, dict(lin, weight=np.full((4, 4), np.nan))), ValueError,
     r"^linear_state\['weight'\]: expected finite numbers"),
], ids=["list", "None", "foo", "proj_size", "proj_size-l1", "odd-key", "linear-foo",
        "missing-ih0", "missing-hh0", "missing-hh1", "missing-ih1-reverse", "gap-l2",
        "linear-missing", "hh0-shape", "ih0-rows", "ih1-width", "hh1-reverse-shape",
        "bias-shape", "linear-shape", "linear-bias-shape", "inf", "str", "nan-linear"])
def test_from_torch_errors_name_the_argument(change, error, match):
    with pytest.raises(error, match=match):
        from_torch_state_dict(*change(*good_states()))


def test_to_torch_validates_params():
    params = make_params(("gru", 2, False), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"^params\['W_h_l1'\]"):
        to_torch_state_dict(dict(params, W_h_l1=np.ones((6, 4))))
    with pytest.raises(ValueError, match=r"^params: .*missing \['b_hn_l1'\]"):
        to_torch_state_dict(without(params, "b_hn_l1"))


def test_a_module_instead_of_its_state_dict_gets_a_hint():
    class Module:
        def state_dict(self):
            return {}
    with pytest.raises(TypeError, match=r"pass module\.state_dict\(\)"):
        from_torch_state_dict(Module(), {})


# --------------------------------------------------------- against PyTorch
@pytest.fixture(scope="module")
def torch():
    return require("torch", "PyTorch's modules are what the converters convert to")


def torch_modules(torch, arch, params):
    cell, layers, bidirectional = arch
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        K, D, num_layers=layers, bidirectional=bidirectional, batch_first=True,
        dtype=torch.float64)
    linear = torch.nn.Linear(D * (2 if bidirectional else 1), M, dtype=torch.float64)
    rnn_state, linear_state = to_torch_state_dict(params)
    module.load_state_dict({key: torch.from_numpy(v) for key, v in rnn_state.items()})
    linear.load_state_dict({key: torch.from_numpy(v) for key, v in linear_state.items()})
    return module, linear


def assert_close(actual, desired, what):
    actual, desired = np.asarray(actual, dtype=float), np.asarray(desired, dtype=float)
    assert actual.shape == desired.shape, (what, actual.shape, desired.shape)
    assert normwise(actual, desired) <= TOL, f"{what}: {normwise(actual, desired):.2e}"


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_the_state_dicts_are_those_of_torchs_modules(torch, arch):
    """Same keys, shapes and dtype as a fresh module's; and a module's own
    state_dict() (float32 tensors) converts to fastrnn's keys and shapes."""
    cell, layers, bidirectional = arch
    params = make_params(arch, np.random.default_rng(1))
    rnn_state, linear_state = to_torch_state_dict(params)
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        K, D, num_layers=layers, bidirectional=bidirectional)
    linear = torch.nn.Linear(D * (2 if bidirectional else 1), M)
    theirs = module.state_dict()
    assert set(rnn_state) == set(theirs)
    assert all(tuple(theirs[key].shape) == rnn_state[key].shape for key in theirs)
    assert {k: tuple(v.shape) for k, v in linear.state_dict().items()} == \
        {k: v.shape for k, v in linear_state.items()}
    converted = from_torch_state_dict(module.state_dict(), linear.state_dict())
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in params.items()}
    W_hh = module.weight_hh_l0.detach().double().numpy().reshape(blocks(cell), D, D)
    if cell == "lstm":
        W_hh = W_hh[[1, 0, 3, 2]]                 # torch's i, f, g, o as f, i, o, g
    assert np.array_equal(converted["W_h"], W_hh.reshape(-1, D))


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_torch_modules_compute_fastrnns_forward(torch, arch):
    """nn.RNN/LSTM/GRU + nn.Linear loaded with to_torch_state_dict, in
    float64: the same outputs at every step, hidden states, final states (h_n,
    c_n) and last-step outputs as fastrnn.forward."""
    cell, layers, bidirectional = arch
    rng = np.random.default_rng(400 + ARCHITECTURES.index(arch))
    params = make_params(arch, rng)
    module, linear = torch_modules(torch, arch, params)
    B, T, S = 3, 5, layers * (2 if bidirectional else 1)
    X = rng.normal(0, 1, (B, T, K))
    h0 = rng.normal(0, 0.5, (S, B, D))
    c0 = rng.normal(0, 0.5, (S, B, D))
    state = (h0, c0) if cell == "lstm" else h0
    deep = layers > 1 or bidirectional
    fastrnn_state = state if deep else ((h0[0], c0[0]) if cell == "lstm" else h0[0])
    probs, h_last, hidden = fastrnn.forward(params, X, h0=fastrnn_state, return_hidden=True)
    with torch.no_grad():
        torch_state = tuple(torch.from_numpy(s) for s in state) if cell == "lstm" \
            else torch.from_numpy(state)
        out, h_n = module(torch.from_numpy(X), torch_state)
        torch_probs = torch.softmax(linear(out), dim=-1).numpy()
        top = h_n[0] if cell == "lstm" else h_n
        last_features = torch.cat([top[-2], top[-1]], dim=-1) if bidirectional else top[-1]
        torch_last = torch.softmax(linear(last_features), dim=-1).numpy()
    assert_close(probs, torch_probs, "probs")
    assert_close(hidden[0] if cell == "lstm" else hidden, out.numpy(), "hidden")
    for ours, theirs in zip(h_last if cell == "lstm" else (h_last,),
                            h_n if cell == "lstm" else (h_n,)):
        assert_close(np.reshape(ours, (S, B, D)), theirs.numpy(), "final states")
    last = fastrnn.forward(params, X, h0=fastrnn_state, output="last_step")[0]
    assert_close(last, torch_last, "last-step probs")


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_autograd_gradients_are_fastrnns_converted(torch, arch):
    """Every parameter's .grad (both biases included) equals fastrnn's
    gradient converted with to_torch_state_dict(gradients=True), and the
    torch gradients converted with from_torch_state_dict(gradients=True)
    equal fastrnn's. Loss: cross-entropy summed over steps, mean over B."""
    cell, layers, bidirectional = arch
    rng = np.random.default_rng(500 + ARCHITECTURES.index(arch))
    params = make_params(arch, rng)
    module, linear = torch_modules(torch, arch, params)
    B, T = 2, 4
    X, y = rng.normal(0, 1, (B, T, K)), rng.integers(0, M, (B, T))
    loss, grads = fastrnn.loss_and_grad(params, X, y)
    z = linear(module(torch.from_numpy(X))[0])
    total = torch.nn.functional.cross_entropy(z.reshape(-1, M), torch.from_numpy(y.reshape(-1)),
                                              reduction="sum") / B
    total.backward()
    assert abs(total.item() - loss) <= TOL * loss
    rnn_grads, linear_grads = to_torch_state_dict(grads, gradients=True)
    for name, parameter in module.named_parameters():
        assert_close(rnn_grads[name], parameter.grad.numpy(), name)
    for name, parameter in linear.named_parameters():
        assert_close(linear_grads[name], parameter.grad.numpy(), name)
    back = from_torch_state_dict({n: p.grad for n, p in module.named_parameters()},
                                 {n: p.grad for n, p in linear.named_parameters()},
                                 gradients=True)
    for key in grads:
        assert_close(back[key], grads[key], key)
