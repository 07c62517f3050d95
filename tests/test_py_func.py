"""Each public kernel of fastrnn.kernels.network (forward, loss_and_grad) and
fastrnn.kernels.train.train_epochs equals its own uncompiled execution,
``kernel.py_func(...)``, bit for bit (np.array_equal, not allclose), on
architectures of the registry (every cell, deep and bidirectional), heads
and input forms.

Kernels are compiled without fastmath (fastrnn._jit), so LLVM may not
reassociate sums or contract multiply-adds: the compiled code must do the
same float64 operations in the same order as the Python source. A failure
here means the compiler changed the arithmetic, or the source relies on
something that differs between the two (uninitialised memory, say).

``.py_func`` runs the kernel's own body as Python and calls the kernels it
uses (the cells, the head, the products) compiled: the comparison covers
each entry point's own code, its loops over layers, directions, updates and
epochs, and the way it hands arrays to the kernels below.

Inputs are what fastrnn._validation produces (C-contiguous float64, int64
ids and offsets); every output array is filled with NaN beforehand, so an
entry left unwritten is caught.
"""
import numpy as np
import pytest

from _registry import FORMS, HEADS, arch_id, head_id, make_problem
from fastrnn import _validation
from fastrnn._cells import CELLS
from fastrnn._codes import ADAM, CLIP_NORM, MOMENTUM, OK
from fastrnn._layout import transposed
from fastrnn.kernels import network, train

pytestmark = pytest.mark.kernels

# Every cell, shallow, deep and bidirectional; each meets several forms and heads.
ARCHS = [("rnn", 1, False), ("rnn", 2, True), ("lstm", 1, True), ("lstm", 3, False),
         ("gru", 2, False), ("gru", 2, True)]
CASES = [(arch, FORMS[(i + j) % len(FORMS)], HEADS[(i + 2 * j) % len(HEADS)])
         for i, arch in enumerate(ARCHS) for j in range(3)]
IDS = [f"{arch_id(a)}-{f}-{head_id(h)}" for a, f, h in CASES]


def python(kernel):
    """The kernel's Python function (itself when NUMBA_DISABLE_JIT=1)."""
    return getattr(kernel, "py_func", kernel)


def validated(arch, form, head, weights):
    p = make_problem(arch, form, head, weights, seed=31)
    net = _validation.check_params(p.params)
    head_ = _validation.check_head(*head)
    seqs = _validation.check_inputs(p.X, net.n_inputs)
    Y = _validation.check_targets(p.y, seqs, net.n_outputs, head_)
    seq_weight, step_weight = _validation.check_sample_weight(p.kwargs.get("sample_weight"),
                                                              seqs, head_)
    state0 = _validation.check_states(p.kwargs.get("h0"), net, seqs)
    return net, head_, seqs, Y, seq_weight, step_weight, state0


def buffers(net, seqs, state0):
    a = net.architecture
    N = seqs.n_rows
    cache = CELLS[a.cell].cache_blocks * a.n_hidden
    return (np.full((a.n_layers, a.n_directions, N, a.n_hidden), np.nan),
            np.full((a.n_layers, a.n_directions, N, cache), np.nan),
            np.full_like(state0, np.nan))


def assert_filled_and_equal(compiled, python, names):
    for name, c, p in zip(names, compiled, python):
        c, p = np.asarray(c), np.asarray(p)
        assert np.isfinite(c).all(), f"{name}: an entry left unwritten (NaN)"
        assert c.shape == p.shape and np.array_equal(c, p), f"{name} differs from py_func"


@pytest.mark.parametrize("arch,form,head", CASES, ids=IDS)
def test_network_forward_equals_py_func(arch, form, head):
    net, head_, seqs, _, _, _, state0 = validated(arch, form, head, None)
    # the transposed weights given to half the cases (a Stream's way)
    given = CASES.index((arch, form, head)) % 2
    thetaT = transposed(net.theta, net.architecture) if given else net.theta[:0]
    out = {}
    for name, function in (("compiled", network.forward), ("python", python(network.forward))):
        Hs, caches, state_last = buffers(net, seqs, state0)
        P = np.full((seqs.n_sequences if head_.last_step else seqs.n_rows, net.n_outputs),
                    np.nan)
        function(CELLS[net.cell].tag, net.theta, thetaT, net.table, seqs.data, seqs.offsets,
                 state0, head_.loss, head_.last_step, Hs, caches, state_last, P)
        out[name] = (Hs, caches, state_last, P)
    assert_filled_and_equal(out["compiled"], out["python"], ("Hs", "caches", "state_last", "P"))


@pytest.mark.parametrize("dropout", [0.0, 0.4], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("arch,form,head", CASES, ids=IDS)
def test_network_loss_and_grad_equals_py_func(arch, form, head, dropout):
    weights = ("step", "sequence", None)[CASES.index((arch, form, head)) % 3]
    net, head_, seqs, Y, seq_weight, step_weight, state0 = validated(arch, form, head, weights)
    scale = _validation.sequence_scale(seq_weight)
    dense = seqs.data.ndim == 2
    out = {}
    for name, function in (("compiled", network.loss_and_grad),
                           ("python", python(network.loss_and_grad))):
        Hs, caches, state_last = buffers(net, seqs, state0)
        grad = np.full_like(net.theta, np.nan)
        dstate0 = np.full_like(state0, np.nan)
        dX = np.full((seqs.n_rows if dense else 0, net.n_inputs), np.nan)
        loss = function(CELLS[net.cell].tag, net.theta, net.table, seqs.data, Y, seqs.offsets,
                        scale, step_weight, state0, head_.loss, head_.last_step, dropout,
                        np.uint64(12345), 3, Hs, caches, state_last, grad, dstate0, dX)
        out[name] = (np.float64(loss), Hs, caches, state_last, grad, dstate0, dX)
    assert_filled_and_equal(out["compiled"], out["python"],
                            ("loss", "Hs", "caches", "state_last", "grad", "dstate0", "dX"))


TRAIN_CASES = [(arch, form, head, optimizer)
               for (arch, form, head), optimizer in zip(CASES[::2], [ADAM, MOMENTUM] * 5)
               if not form.startswith("single")]


@pytest.mark.parametrize("arch,form,head,optimizer", TRAIN_CASES,
                         ids=[f"{arch_id(a)}-{f}-{head_id(h)}-{o}" for a, f, h, o in TRAIN_CASES])
def test_train_epochs_equals_py_func(arch, form, head, optimizer):
    """Two epochs of mini-batches with truncated BPTT, dropout, clipping and
    an optimizer with state: theta, the state, the losses, the progress."""
    net, head_, seqs, Y, seq_weight, step_weight, _ = validated(arch, form, head, "sequence")
    a = net.architecture
    S = seqs.n_sequences
    rng = np.random.default_rng(32)
    order = np.stack([rng.permutation(S) for _ in range(2)]).astype(np.int64)
    seeds = rng.integers(0, 2**63, 2, dtype=np.uint64)
    dims = np.array([a.n_layers, a.n_directions, len(CELLS[a.cell].states),
                     CELLS[a.cell].cache_blocks], dtype=np.int64)
    hyper = np.array([0.05, 0.9, 0.9, 0.999, 1e-8])
    out = {}
    for name, function in (("compiled", train.train_epochs),
                           ("python", python(train.train_epochs))):
        theta = net.theta.copy()
        state = np.zeros((2, len(theta)))
        step = np.zeros(1, dtype=np.int64)
        losses = np.full(2, np.nan)
        progress = np.zeros(3, dtype=np.int64)
        code = function(CELLS[a.cell].tag, theta, net.table, dims, seqs.data, Y,
                        np.ascontiguousarray(seqs.offsets[:-1]), np.diff(seqs.offsets),
                        seq_weight, step_weight, order, seeds, 2, 2, head_.loss,
                        head_.last_step, 0.3 if a.n_layers > 1 else 0.0, optimizer, hyper,
                        CLIP_NORM, 1.0, state, step, losses, progress,
                        np.zeros(1, dtype=np.int64))
        assert code == OK, (name, code)
        out[name] = (theta, state, step, losses, progress)
    assert not np.array_equal(out["compiled"][0], net.theta)          # it did train
    assert_filled_and_equal(out["compiled"], out["python"],
                            ("theta", "state", "step", "losses", "progress"))
