"""The generic battery, driven by tests/_registry.py: for every cell ×
layers (1, 2, 3) × direction × input form × head,

* the kernels agree with the reference (docs/math.md: ≤ 1e-12 normwise per
  array) on the loss, every gradient, ∂L/∂state0, ∂L/∂X, the outputs, every
  hidden state and the last states;
* the analytic gradient agrees with central finite differences
  (``fastrnn.gradcheck``: ≤ 1e-6, ε = 1e-6);
* PyTorch float64 autograd, through fastrnn's converters, agrees too
  (an independent implementation);
* a ragged list equals its sequences run alone (the reverse direction
  starts at each sequence's own last step, never in padding).

Parameters are N(0, 0.5²): at that scale tanh is far from saturation, where
two float64 implementations could legitimately differ by more (a saturated
unit keeps ~6 digits of 1 − h²).
"""
import numpy as np
import pytest

import fastrnn
from _metrics import flat, normwise
from _naive import as_sequences, torch_loss_and_grad
from _optional import require
from _registry import (ARCHITECTURES, FORMS, HEADS, WEIGHTS, arch_id, head_id, make_problem)

pytestmark = pytest.mark.kernels
TOL = 1e-12


def assert_close(actual, desired, what, tol=TOL):
    a, d = flat(actual), flat(desired)
    assert len(a) == len(d), what
    for i, (x, y) in enumerate(zip(a, d)):
        assert x.shape == y.shape, (what, i, x.shape, y.shape)
        err = normwise(x, y)
        assert err <= tol, f"{what}[{i}]: normwise difference {err:.3e} > {tol:g}"


def _weights_for(arch, form, head):
    """A weight kind per combination, so every kind meets every architecture."""
    return WEIGHTS[(ARCHITECTURES.index(arch) + FORMS.index(form) + HEADS.index(head)) % 3]


def _dense(problem):
    return not problem.form.endswith("ids")


@pytest.mark.parametrize("head", HEADS, ids=head_id)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_kernels_agree_with_the_reference(arch, form, head):
    p = make_problem(arch, form, head, _weights_for(arch, form, head))
    out = {}
    for backend in ("numba", "numpy"):
        lg = fastrnn.loss_and_grad(p.params, p.X, p.y, backend=backend, return_dh0=True,
                                   return_dX=_dense(p), **p.kwargs)
        kwargs = {k: v for k, v in p.kwargs.items() if k != "sample_weight"}
        fw = fastrnn.forward(p.params, p.X, backend=backend, return_hidden=True, **kwargs)
        out[backend] = (lg, fw)
    assert isinstance(out["numba"][0][0], float)
    assert_close(out["numba"][0], out["numpy"][0], "loss_and_grad")
    assert_close(out["numba"][1], out["numpy"][1], "forward")


@pytest.mark.parametrize("head", HEADS, ids=head_id)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_finite_differences(arch, head):
    i = ARCHITECTURES.index(arch) + HEADS.index(head)
    form = FORMS[i % len(FORMS)]
    p = make_problem(arch, form, head, WEIGHTS[i % 3], seed=1)
    report = fastrnn.gradcheck(p.params, p.X, p.y, max_coordinates=24, random_state=i,
                               **p.kwargs)
    assert report.ok, str(report)
    assert sum(a.relative for a in report.arrays.values()) >= 10, str(report)


@pytest.fixture(scope="module")
def torch_module():
    return require("torch", "PyTorch is the independent float64 cross-check")


@pytest.mark.parametrize("head", HEADS, ids=head_id)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_pytorch_float64_agrees(torch_module, arch, form, head):
    p = make_problem(arch, form, head, _weights_for(arch, form, head), seed=2)
    loss, grads, dh0, *dX = fastrnn.loss_and_grad(p.params, p.X, p.y, return_dh0=True,
                                                  return_dX=_dense(p), **p.kwargs)
    kwargs = {k: v for k, v in p.kwargs.items() if k != "sample_weight"}
    probs, h_last, hidden = fastrnn.forward(p.params, p.X, return_hidden=True, **kwargs)
    ref = torch_loss_and_grad(torch_module, p.params, p.X, p.y, loss=head[0], output=head[1],
                              h0=p.kwargs.get("h0"), seq_weight=p.seq_weight,
                              step_weight=p.step_weight)
    t_loss, t_grads, t_probs, t_hidden, t_dstate0, t_dX, t_last = ref
    assert abs(loss - t_loss) <= TOL * max(1.0, abs(t_loss)), (loss, t_loss)
    assert_close(grads, t_grads, "grads")
    cell, layers, bidirectional = arch
    assert_close(_to_kernel_states(dh0, arch, len(p.lengths), form), t_dstate0, "dstate0")
    assert_close(_to_kernel_states(h_last, arch, len(p.lengths), form), t_last, "state_last")
    if dX:
        assert_close(as_sequences(dX[0]), t_dX, "dX")
    assert_close(_per_sequence(probs, p, head), t_probs, "probs")
    hidden = hidden[0] if cell == "lstm" else hidden
    assert_close(as_sequences(hidden) if not isinstance(hidden, list) else hidden, t_hidden,
                 "hidden")


def _to_kernel_states(state, arch, B, form):
    """A public state (h, or (h, c)) as (L·D, n_states, B, d)."""
    cell, layers, bidirectional = arch
    parts = state if cell == "lstm" else (state,)
    S = layers * (2 if bidirectional else 1)
    return np.stack([np.asarray(s).reshape(S, B, -1) for s in parts], axis=1)


def _per_sequence(probs, p, head):
    if head[1] == "last_step":
        return [row[None] for row in np.atleast_2d(probs)]
    return probs if isinstance(probs, list) else as_sequences(probs) if p.form != "single_ids" \
        and p.form != "single_dense" else [probs]


@pytest.mark.parametrize("head", HEADS, ids=head_id)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_ragged_list_equals_each_sequence_alone(arch, head, backend):
    p = make_problem(arch, "list_dense", head, "sequence", seed=3)
    loss, grads = fastrnn.loss_and_grad(p.params, p.X, p.y, backend=backend, **p.kwargs)
    probs, h_last = fastrnn.forward(p.params, p.X, backend=backend, loss=head[0],
                                    output=head[1])[:2]
    share = p.seq_weight / p.seq_weight.sum()
    expected_loss, expected_grads = 0.0, {key: 0.0 for key in grads}
    for b, x in enumerate(p.X):
        y_b = p.y[b]
        kwargs = {"loss": head[0], "output": head[1]}
        loss_b, grads_b = fastrnn.loss_and_grad(p.params, x, y_b, backend=backend, **kwargs)
        expected_loss += share[b] * loss_b
        for key in grads:
            expected_grads[key] = expected_grads[key] + share[b] * grads_b[key]
        probs_b, h_b = fastrnn.forward(p.params, x, backend=backend, **kwargs)[:2]
        assert_close(probs[b], probs_b, f"probs[{b}]")
        assert_close(_state_of(h_last, arch, b), h_b, f"h_last[{b}]")
    assert abs(loss - expected_loss) <= TOL * abs(expected_loss)
    assert_close(grads, expected_grads, "grads", tol=1e-11)


def _state_of(state, arch, b):
    """Sequence b's part of a batch's public state."""
    cell, layers, bidirectional = arch
    deep = layers > 1 or bidirectional
    parts = state if cell == "lstm" else (state,)
    picked = tuple(np.asarray(s)[:, b] if deep else np.asarray(s)[b] for s in parts)
    return picked if cell == "lstm" else picked[0]
