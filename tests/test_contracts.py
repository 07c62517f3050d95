"""Every kernel entry point has an explicit shape contract: Numba checks no
bounds (and wraps negative indices even with NUMBA_BOUNDSCHECK=1), so a
kernel called with arrays that disagree must refuse them with a ValueError
instead of reading or writing out of range. The public API never gets
there (fastrnn._validation refuses first); these call the kernels directly.

Also here: the cross-entropy is computed from the logits (log-sum-exp), so a
target whose probability underflows gives a large finite loss, as PyTorch's
cross_entropy does, in both twins.
"""
import numpy as np
import pytest

import fastrnn
from fastrnn._cells import CELLS
from fastrnn._codes import CROSS_ENTROPY
from fastrnn._layout import Architecture, flatten, transposed
from fastrnn.kernels import _linalg, head, layers, network, rnn, lstm, gru, sequences, train, optim
from _optional import require

pytestmark = pytest.mark.kernels


def test_add_products_refuses_mismatched_shapes():
    A, B = np.ones((3, 4)), np.ones((4, 5))
    _linalg.add_products(A, B, np.zeros((3, 5)))
    for Out in (np.zeros((0, 5)), np.zeros((2, 5)), np.zeros((3, 6))):
        with pytest.raises(ValueError, match="add_products"):
            _linalg.add_products(A, B, Out)
    with pytest.raises(ValueError, match="add_products"):
        _linalg.add_products(A, np.ones((3, 5)), np.zeros((3, 5)))


def test_input_projection_refuses_mismatched_shapes():
    W_x, b_h, none = np.ones((4, 3)), np.zeros(4), np.empty((0, 0))
    layers.input_projection(np.ones((1, 5, 3)), W_x, none, b_h, np.empty((5, 4)))
    layers.input_projection(np.ones((1, 5, 3)), W_x, np.ones((3, 4)), b_h, np.empty((5, 4)))
    bad = [(np.ones((1, 5, 3)), W_x, none, b_h, np.empty((5, 3))),          # A too narrow
           (np.ones((1, 5, 3)), W_x, none, np.zeros(3), np.empty((5, 4))),   # b_h
           (np.ones((1, 6, 3)), W_x, none, b_h, np.empty((5, 4))),           # X rows
           (np.ones((2, 5, 3)), W_x, none, b_h, np.empty((5, 4))),           # blocks vs W_x
           (np.zeros(6, dtype=np.int64), W_x, none, b_h, np.empty((5, 4))),  # ids rows
           (np.ones((1, 5, 3)), W_x, np.ones((4, 3)), b_h, np.empty((5, 4))),  # W_xT: W_x's shape
           (np.zeros(5, dtype=np.int64), W_x, np.ones((3, 3)), b_h, np.empty((5, 4)))]
    for args in bad:
        with pytest.raises(ValueError, match="input_projection"):
            layers.input_projection(*args)


def _head_arrays(last_step=False):
    H = np.ones((1, 5, 3))
    offsets = np.array([0, 2, 5])
    W_y, b_y = np.ones((4, 3)), np.zeros(4)
    rows = 2 if last_step else 5
    return H, offsets, W_y, b_y, rows


@pytest.mark.parametrize("last_step", [False, True])
def test_output_layer_and_backward_refuse_mismatched_shapes(last_step):
    H, offsets, W_y, b_y, rows = _head_arrays(last_step)
    none = np.empty((0, 0))
    head.output_layer(H, W_y, none, b_y, offsets, last_step, np.empty((rows, 4)))
    head.output_layer(H, W_y, np.ones((3, 4)), b_y, offsets, last_step, np.empty((rows, 4)))
    for Z in (np.empty((rows + 1, 4)), np.empty((0, 4)), np.empty((rows, 5))):
        with pytest.raises(ValueError):
            head.output_layer(H, W_y, none, b_y, offsets, last_step, Z)
    with pytest.raises(ValueError, match="product_transpose"):
        head.output_layer(H, W_y, np.ones((4, 3)), b_y, offsets, last_step, np.empty((rows, 4)))
    dZ = np.ones((rows, 4))
    good = (np.empty_like(W_y), np.empty(4), np.empty_like(H))
    head.output_backward(dZ, H, W_y, offsets, last_step, *good)
    for dZ_bad in (np.ones((rows + 1, 4)), np.ones((0, 4))):
        with pytest.raises(ValueError):
            head.output_backward(dZ_bad, H, W_y, offsets, last_step, *good)
    with pytest.raises(ValueError, match="output_backward"):
        head.output_backward(dZ, H, W_y, offsets, last_step, np.empty((4, 2)), np.empty(4),
                             np.empty_like(H))
    with pytest.raises(ValueError):
        head.output_backward(dZ, H, W_y, np.array([0, 2, 6]), last_step, *good)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cell_kernels_refuse_mismatched_shapes(cell):
    module = {"rnn": rnn, "lstm": lstm, "gru": gru}[cell]
    info = CELLS[cell]
    d, G, S = 3, info.blocks, len(info.states)
    offsets = np.array([0, 2, 5])
    order, running = sequences.longest_first(offsets)
    W_h, b_hn = np.zeros((G * d, d)), np.zeros(d if info.extra_bias else 0)
    A, H = np.zeros((5, G * d)), np.empty((5, d))
    cache = np.empty((5, info.cache_blocks * d))
    state0, last = np.zeros((S, 2, d)), np.empty((S, 2, d))
    none = np.empty((0, 0))
    module.forward_steps(W_h, none, b_hn, A, offsets, order, running, False, state0, H, cache,
                         last)
    module.forward_steps(W_h, np.zeros((d, G * d)), b_hn, A[:2], np.array([0, 2]),
                         *sequences.longest_first(np.array([0, 2])), False, state0[:, :1], H[:2],
                         cache[:2], last[:, :1])                       # W_hT given, few rows
    bad = {"A": dict(A=np.zeros((4, G * d))), "H": dict(H=np.empty((6, d))),
           "W_hT": dict(W_hT=np.zeros((d + 1, G * d))),
           "state0": dict(state0=np.zeros((S, 3, d))), "last": dict(last=np.empty((S, 1, d))),
           "offsets": dict(offsets=np.array([0, 2, 7])), "W_h": dict(W_h=np.zeros((G * d, d + 1))),
           "order": dict(order=np.array([0]))}
    for what, change in bad.items():
        args = dict(W_h=W_h, W_hT=none, b_hn=b_hn, A=A, offsets=offsets, order=order,
                    running=running, reverse=False, state0=state0, H=H, cache=cache, last=last)
        args.update(change)
        with pytest.raises(ValueError):
            module.forward_steps(*args.values())
    dA = np.empty((5, G * d))
    module.backward_steps(W_h, b_hn, offsets, order, running, False, state0, H, cache,
                          np.zeros((5, d)), dA, dA if not info.extra_bias else np.empty_like(dA),
                          np.empty(d if info.extra_bias else 0), np.empty_like(state0))
    with pytest.raises(ValueError):
        module.backward_steps(W_h, b_hn, offsets, order, running, False, state0, H, cache,
                              np.zeros((4, d)), dA, dA, np.empty(d), np.empty_like(state0))


def _network(cell="lstm", layers_=2, bidirectional=True, k=3, d=4, m=3):
    a = Architecture(cell, k, d, m, layers_, bidirectional)
    theta = flatten(fastrnn.init_params(k, d, m, cell=cell, n_layers=layers_,
                                        bidirectional=bidirectional, random_state=0), a)
    return a, theta, a.table()


def test_network_entry_points_refuse_what_does_not_fit_the_layout():
    a, theta, table = _network()
    info = CELLS[a.cell]
    L, D, d = a.n_layers, a.n_directions, a.n_hidden
    offsets = np.array([0, 2, 5])
    X = np.zeros(5, dtype=np.int64)
    state0 = np.zeros((L * D, 2, 2, d))
    good = dict(X=X, offsets=offsets, state0=state0, Hs=np.empty((L, D, 5, d)),
                caches=np.empty((L, D, 5, info.cache_blocks * d)), last=np.empty_like(state0),
                P=np.empty((5, 3)), thetaT=theta[:0])

    def call(**change):
        args = dict(good, **change)
        network.forward(info.tag, theta, args["thetaT"], table, args["X"], args["offsets"],
                        args["state0"], CROSS_ENTROPY, False, args["Hs"], args["caches"],
                        args["last"], args["P"])

    call()
    call(thetaT=transposed(theta, a))
    bad = dict(X=np.array([0, 1, 3, 1, 0]),                      # an id out of range (k = 3)
               X_negative=np.array([0, 1, -1, 1, 0]),             # Numba would wrap it
               offsets=np.array([0, 2, 6]), state0=np.zeros((L * D, 2, 3, d)),
               Hs=np.empty((L, D, 4, d)), caches=np.empty((L, D, 5, d)),
               P=np.empty((4, 3)), thetaT=theta[:-1])
    for what, value in bad.items():
        with pytest.raises(ValueError):
            call(**{what.split("_")[0]: value})
    with pytest.raises(ValueError, match="layout table"):
        network.forward(info.tag, theta[:-5], theta[:0], table, X, offsets, state0,
                        CROSS_ENTROPY, False, good["Hs"], good["caches"], good["last"], good["P"])


def test_train_epochs_refuses_an_order_outside_the_data():
    a, theta, table = _network("rnn", 1, False)
    info = CELLS["rnn"]
    X, Y = np.zeros(6, dtype=np.int64), np.zeros(6, dtype=np.int64)
    starts, lengths = np.array([0, 3]), np.array([3, 3])
    dims = np.array([1, 1, 1, 0])
    for order in (np.array([[0, 2]]), np.array([[0, -1]])):
        with pytest.raises(ValueError, match="order"):
            train.train_epochs(info.tag, theta, table, dims, X, Y, starts, lengths, np.ones(2),
                               np.empty(0), order, np.zeros(1, np.uint64), 2, 3, CROSS_ENTROPY,
                               False, 0.0, 0, np.array([0.1, 0.9, 0.9, 0.999, 1e-8]), 0, 0.0,
                               np.zeros((2, len(theta))), np.zeros(1, np.int64), np.zeros(1),
                               np.zeros(3, np.int64), np.zeros(1, np.int64))


def test_optimizer_step_refuses_mismatched_state():
    theta = np.zeros(4)
    with pytest.raises(ValueError, match="optimizer_step"):
        optim.optimizer_step(theta, np.zeros(4), 4, np.array([0.1, 0.9, 0.9, 0.999, 1e-8]),
                             np.zeros((2, 3)), np.zeros(1, np.int64), np.zeros((3, 4)))


# ------------------------------------------------- cross-entropy from logits
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_an_underflowing_target_probability_gives_a_large_finite_loss(backend):
    """ŷ of the target class is about e^-1000 (0 in float64): the loss is
    about 1000, finite, not inf; the gradient is finite too."""
    params = fastrnn.init_params(2, 1, 3, random_state=0)
    params["W_y"][:] = 0.0
    params["b_y"][:] = [1000.0, 0.0, 0.0]
    X = np.zeros((1, 2))
    loss, grads = fastrnn.loss_and_grad(params, X, np.array([1]), backend=backend)
    assert np.isfinite(loss) and abs(loss - 1000.0) <= 1e-9 * 1000.0
    assert all(np.isfinite(g).all() for g in grads.values())
    soft = np.array([[0.0, 0.5, 0.5]])
    loss_soft, _ = fastrnn.loss_and_grad(params, X, soft, backend=backend)
    assert abs(loss_soft - 1000.0) <= 1e-9 * 1000.0


def test_the_loss_from_logits_agrees_with_pytorch():
    torch = require("torch", "PyTorch's cross_entropy is the independent check")
    rng = np.random.default_rng(0)
    params = fastrnn.init_params(3, 4, 5, random_state=0)
    params["W_y"] = rng.normal(0, 200.0, params["W_y"].shape)     # huge logit gaps
    X = rng.normal(0, 1, (6, 3))
    y = rng.integers(0, 5, 6)
    H = fastrnn.forward(params, X, return_hidden=True)[2]
    z = torch.tensor(H @ params["W_y"].T + params["b_y"])
    expected = float(torch.nn.functional.cross_entropy(z, torch.tensor(y), reduction="sum"))
    for backend in ("numba", "numpy"):
        loss = fastrnn.loss_and_grad(params, X, y, backend=backend)[0]
        assert np.isfinite(loss)
        assert abs(loss - expected) <= 1e-12 * abs(expected), (backend, loss, expected)


def test_fit_does_not_fault_on_an_underflowing_probability():
    """A confident wrong prediction is a large loss, not a 'loss became
    non-finite' fault."""
    X, y = np.zeros((1, 2)), np.array([[0.0, 1.0, 0.0]])     # class 1 of 3, one-hot
    model = fastrnn.FastRNN(n_hidden=1, epochs=1, optimizer="sgd", learning_rate=1e-12,
                            random_state=0)
    model.fit(X, y)
    model.params_["b_y"][:] = [1000.0, 0.0, 0.0]
    model.set_params(warm_start=True).fit(X, y)
    assert abs(model.loss_curve_[-1] - 1000.0) < 1.0
