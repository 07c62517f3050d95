"""An independent float64 check of the forward pass, the loss and every
gradient: PyTorch's own nn.RNN (tanh) + nn.Linear with autograd, loaded with
fastrnn's parameters.

Mapping (SPEC.md notation): weight_ih_l0 = W_X, weight_hh_l0 = W_H,
bias_ih_l0 = b_h, bias_hh_l0 = 0 (fastrnn has one hidden bias), Linear
weight = W_Y, bias = b_y. Loss: cross-entropy summed over every step of
every sequence, divided by B (the mean over sequences of per-sequence sums).
"""
import numpy as np
import pytest

import fastrnn
from _metrics import normwise

torch = pytest.importorskip(
    "torch", reason="PyTorch is an optional, independent cross-check (CI installs torch==2.13.0 "
                    "when it can)")

KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
BACKENDS = ("numba", "numpy")


def torch_reference(params, X, Y, h0):
    """X: float (B, T, k); Y: int (B, T) class ids or float (B, T, m)
    distributions; h0: (B, d) or None. Returns loss, probs (B, T, m),
    hidden (B, T, d), grads dict (fastrnn keys) and dh0 (or None)."""
    d, k = params["W_x"].shape
    m = params["W_y"].shape[0]
    B, T = X.shape[:2]
    rnn = torch.nn.RNN(k, d, num_layers=1, nonlinearity="tanh", bias=True, batch_first=True,
                       dtype=torch.float64)
    out_layer = torch.nn.Linear(d, m, bias=True, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(params["W_x"]))
        rnn.weight_hh_l0.copy_(torch.from_numpy(params["W_h"]))
        rnn.bias_ih_l0.copy_(torch.from_numpy(params["b_h"]))
        rnn.bias_hh_l0.zero_()
        out_layer.weight.copy_(torch.from_numpy(params["W_y"]))
        out_layer.bias.copy_(torch.from_numpy(params["b_y"]))
    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64))
    h0_t = None
    if h0 is not None:
        h0_t = torch.tensor(np.asarray(h0, dtype=np.float64)[None], requires_grad=True)  # (1, B, d)
    hidden, _ = rnn(x, h0_t)                       # (B, T, d)
    logits = out_layer(hidden)                     # (B, T, m)
    if Y.dtype.kind in "iu":
        target = torch.from_numpy(np.asarray(Y, dtype=np.int64).reshape(-1))
    else:
        target = torch.from_numpy(np.asarray(Y, dtype=np.float64).reshape(-1, m))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, m), target, reduction="sum") / B
    loss.backward()
    grads = {"W_x": rnn.weight_ih_l0.grad, "W_h": rnn.weight_hh_l0.grad,
             "b_h": rnn.bias_ih_l0.grad, "W_y": out_layer.weight.grad, "b_y": out_layer.bias.grad}
    grads = {key: value.detach().numpy().copy() for key, value in grads.items()}
    # both biases enter a_t the same way, so they get the same gradient
    # (up to torch's own summation order)
    assert normwise(rnn.bias_hh_l0.grad.numpy(), grads["b_h"]) <= 1e-12
    dh0 = None if h0_t is None else h0_t.grad.detach().numpy()[0].copy()
    probs = torch.softmax(logits, dim=-1).detach().numpy()
    return float(loss.item()), probs, hidden.detach().numpy(), grads, dh0


def make_params(rng, k, d, m, scale):
    return {"W_x": rng.normal(0, scale, (d, k)), "W_h": rng.normal(0, scale, (d, d)),
            "b_h": rng.normal(0, scale, d), "W_y": rng.normal(0, scale, (m, d)),
            "b_y": rng.normal(0, scale, m)}


TOY_X = np.eye(4)[[0, 1, 2]]
TOY_Y = np.eye(4)[[1, 2, 3]]

CASES = {
    # name: (B, T, k, d, m, target kind, given h0, scale)
    "toy-shape": (1, 3, 4, 3, 4, "ids", False, 0.6),
    "toy-shape-h0": (1, 3, 4, 3, 4, "onehot", True, 0.6),
    "batch": (3, 5, 2, 4, 3, "ids", True, 0.8),
    "batch-soft": (4, 6, 5, 3, 6, "soft", True, 0.8),
    "d1-T1": (2, 1, 3, 1, 2, "ids", True, 1.0),
    "long": (2, 20, 3, 5, 4, "soft", False, 0.5),
}


def _compare(params, X, Y, h0, fastrnn_X=None, fastrnn_h0=None):
    """X, Y, h0 in torch's batch layout; fastrnn_X / fastrnn_h0 optionally in
    another accepted form of the same data (e.g. one (T, k) sequence)."""
    loss_t, probs_t, hidden_t, grads_t, dh0_t = torch_reference(params, X, Y, h0)
    fx = X if fastrnn_X is None else fastrnn_X
    fy = Y if fastrnn_X is None else Y[0]
    fh = h0 if fastrnn_h0 is None else fastrnn_h0
    for backend in BACKENDS:
        loss, grads, dh0 = fastrnn.loss_and_grad(params, fx, fy, h0=fh, backend=backend,
                                                 return_dh0=True)
        assert normwise(loss, loss_t) <= 1e-12, backend
        for key in KEYS:
            assert normwise(grads[key], grads_t[key]) <= 1e-12, (backend, key)
        if h0 is not None:
            assert normwise(np.reshape(dh0, dh0_t.shape), dh0_t) <= 1e-12, backend
        probs, _, hidden = fastrnn.forward(params, fx, h0=fh, backend=backend, return_hidden=True)
        assert normwise(np.reshape(probs, probs_t.shape), probs_t) <= 1e-12, backend
        assert normwise(np.reshape(hidden, hidden_t.shape), hidden_t) <= 1e-12, backend


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name):
    B, T, k, d, m, target, given_h0, scale = CASES[name]
    rng = np.random.default_rng(list(CASES).index(name))
    params = make_params(rng, k, d, m, scale)
    X = rng.normal(0, 1, (B, T, k))
    if target == "ids":
        Y = rng.integers(0, m, (B, T))
    elif target == "onehot":
        Y = np.eye(m)[rng.integers(0, m, (B, T))]
    else:
        Y = rng.dirichlet(np.ones(m), (B, T))
    h0 = rng.normal(0, 0.5, (B, d)) if given_h0 else None
    _compare(params, X, Y, h0)


@pytest.mark.parametrize("given_h0", [False, True], ids=["zeros", "h0"])
def test_toy_matches_torch(given_h0):
    """The notes' toy, as one (T, k) sequence for fastrnn and as a batch of
    one for torch, with init_params and with biased random parameters."""
    h0 = np.array([0.2, -0.4, 0.1]) if given_h0 else None
    for params in (fastrnn.init_params(4, 3, random_state=0),
                   make_params(np.random.default_rng(42), 4, 3, 4, 0.7)):
        _compare(params, TOY_X[None], TOY_Y[None], None if h0 is None else h0[None],
                 fastrnn_X=TOY_X, fastrnn_h0=h0)
        # and as ids
        for backend in BACKENDS:
            a = fastrnn.loss_and_grad(params, np.array([0, 1, 2]), np.array([1, 2, 3]),
                                      h0=h0, backend=backend)
            loss_t, _, _, grads_t, _ = torch_reference(params, TOY_X[None], TOY_Y[None],
                                                       None if h0 is None else h0[None])
            assert normwise(a[0], loss_t) <= 1e-12
            for key in KEYS:
                assert normwise(a[1][key], grads_t[key]) <= 1e-12, key
