"""Each public kernel of fastrnn.kernels.rnn equals its own uncompiled
execution ``kernel.py_func(...)`` bit for bit (np.array_equal, not allclose).

Kernels are compiled without fastmath (fastrnn._jit), so LLVM may not
reassociate sums or contract multiply-adds: the compiled code must do the
same float64 operations in the same order as the Python source. A failure
here means the compiler changed the arithmetic (or the source relies on
something, such as uninitialised memory, that differs between the two).

Note: ``rnn_forward.py_func`` and ``rnn_loss_and_grad.py_func`` run their own
body as plain Python but call the other kernels they use (the input
projection, softmax, cross-entropy and matrix-product helpers, and, for
rnn_loss_and_grad, rnn_forward itself) in their COMPILED form. That is
expected and fine: the comparison covers the code of each kernel itself,
and the helpers are exercised on both paths.

Inputs are built here directly in the layout the kernels assume (what
fastrnn._validation produces): C-contiguous float64, int64 ids and offsets,
h0 of shape (B, d); outputs preallocated and filled with NaN so that an
entry left unwritten is caught.
"""
import numpy as np
import pytest

from fastrnn.kernels import rnn as kernels

pytestmark = pytest.mark.kernels


def make_case(seed, ids_in, target, lengths, k=3, d=4, m=5, scale=1.0):
    rng = np.random.default_rng([seed, ids_in, ("ids", "onehot", "soft").index(target)])
    W = (rng.normal(0, scale, (d, k)), rng.normal(0, scale, (d, d)), rng.normal(0, scale, d),
         rng.normal(0, scale, (m, d)), rng.normal(0, scale, m))
    N = int(sum(lengths))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if ids_in:
        X = rng.integers(0, k, N).astype(np.int64)
    else:
        X = rng.normal(0, 1, (N, k))
        X[::3] = np.eye(k)[rng.integers(0, k, len(X[::3]))]   # some one-hot rows (zero-skipping path)
    if target == "ids":
        Y = rng.integers(0, m, N).astype(np.int64)
    elif target == "onehot":
        Y = np.eye(m)[rng.integers(0, m, N)]
    else:
        Y = rng.dirichlet(np.ones(m), N)
    h0 = rng.normal(0, 0.5, (len(lengths), d))
    return W, X, Y, offsets, h0


CASES = [(ids_in, target, lengths)
         for ids_in in (False, True)
         for target in ("ids", "onehot", "soft")
         for lengths in ((4,), (1,), (3, 3), (2, 5, 1), (1, 4, 4, 2))]
IDS = [f"{'ids' if i else 'dense'}-y{t}-{'_'.join(map(str, L))}" for i, t, L in CASES]


def run_forward(fn, W, X, offsets, h0):
    N, d, m = len(X), W[1].shape[0], W[3].shape[0]
    H = np.full((N, d), np.nan)
    P = np.full((N, m), np.nan)
    fn(*W, X, offsets, h0, H, P)
    return H, P


def run_loss_and_grad(fn, W, X, Y, offsets, h0):
    N, d, m = len(X), W[1].shape[0], W[3].shape[0]
    H = np.full((N, d), np.nan)
    P = np.full((N, m), np.nan)
    grads = [np.full_like(w, np.nan) for w in W]
    dh0 = np.full_like(h0, np.nan)
    loss = fn(*W, X, Y, offsets, h0, H, P, *grads, dh0)
    return loss, H, P, grads, dh0


@pytest.mark.parametrize("ids_in,target,lengths", CASES, ids=IDS)
def test_rnn_forward_equals_py_func_bitwise(ids_in, target, lengths):
    W, X, _, offsets, h0 = make_case(1, ids_in, target, lengths)
    H_c, P_c = run_forward(kernels.rnn_forward, W, X, offsets, h0)
    H_p, P_p = run_forward(kernels.rnn_forward.py_func, W, X, offsets, h0)
    assert np.all(np.isfinite(H_c)) and np.all(np.isfinite(P_c))    # every row was filled
    assert np.array_equal(H_c, H_p)
    assert np.array_equal(P_c, P_p)


@pytest.mark.parametrize("scale", [0.5, 2.0])
@pytest.mark.parametrize("ids_in,target,lengths", CASES, ids=IDS)
def test_rnn_loss_and_grad_equals_py_func_bitwise(ids_in, target, lengths, scale):
    W, X, Y, offsets, h0 = make_case(2, ids_in, target, lengths, scale=scale)
    loss_c, H_c, P_c, grads_c, dh0_c = run_loss_and_grad(kernels.rnn_loss_and_grad,
                                                         W, X, Y, offsets, h0)
    loss_p, H_p, P_p, grads_p, dh0_p = run_loss_and_grad(kernels.rnn_loss_and_grad.py_func,
                                                         W, X, Y, offsets, h0)
    assert np.isfinite(loss_c)
    assert float(loss_c) == float(loss_p)
    assert np.array_equal(H_c, H_p)
    assert np.array_equal(P_c, P_p)
    for name, g_c, g_p in zip(("dW_x", "dW_h", "db_h", "dW_y", "db_y"), grads_c, grads_p):
        assert np.all(np.isfinite(g_c)), name                       # every entry was written
        assert np.array_equal(g_c, g_p), name
    assert np.all(np.isfinite(dh0_c))
    assert np.array_equal(dh0_c, dh0_p)


def test_inputs_are_not_written_by_kernels():
    """The kernels fill only the output arrays (compiled and py_func)."""
    W, X, Y, offsets, h0 = make_case(3, False, "soft", (2, 3))
    before = [a.copy() for a in (*W, X, Y, offsets, h0)]
    for fn in (kernels.rnn_loss_and_grad, kernels.rnn_loss_and_grad.py_func):
        run_loss_and_grad(fn, W, X, Y, offsets, h0)
    for fn in (kernels.rnn_forward, kernels.rnn_forward.py_func):
        run_forward(fn, W, X, offsets, h0)
    for a, b in zip(before, (*W, X, Y, offsets, h0)):
        assert np.array_equal(a, b)
