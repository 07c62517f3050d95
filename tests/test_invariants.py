"""Properties that hold for every network, on both backends and for every
architecture of the registry (cell × layers × direction, tests/_registry.py):

* probabilities are distributions; last-step outputs have one row per
  sequence; every output is shaped as documented;
* a zero model predicts uniformly (within a few ulp: exp(z − logsumexp) is
  not exactly 1/m) and its loss is Σ_b T_b log m / B;
* for the cross-entropy the logit gradient of every row sums to 0, and with
  one step it is ŷ − y as forward reports ŷ; forward's ŷ give the loss;
* results are deterministic; a zero h0 is no h0; token ids are one-hot
  inputs, class ids one-hot targets; a batch is the list of its sequences;
  the final state continues a sequence where it stopped;
* nothing overflows silently: huge gate pre-activations saturate, and an
  input large enough to overflow inside the network gives the same outcome
  in both twins, a clear error or identical finite results;
* the twins agree on degenerate sizes (k, d or m = 1), which the battery's
  fixed sizes do not reach, and on saturated networks (with the floor of
  docs/math.md, section 10);
* the twins never write into their inputs; init_params is as documented.

The agreement of the twins, finite differences and PyTorch on every input
form and head are the battery's (tests/test_twins.py).
"""
import warnings

import numpy as np
import pytest

import fastrnn
from _metrics import flat, normwise
from _registry import (ARCHITECTURES, BACKENDS, D, FORMS, HEADS, K, M, arch_id, make_params,
                       make_problem)
from fastrnn import _validation
from fastrnn._cells import CELLS
from fastrnn._layout import Architecture, transposed
from fastrnn.kernels import network as kernel_network
from fastrnn.reference import network as reference_network

pytestmark = pytest.mark.kernels
CE_HEADS = [h for h in HEADS if h[0] == "cross_entropy"]
UNIDIRECTIONAL = [a for a in ARCHITECTURES if not a[2]]


def problem(arch, form, head, weights=None, seed=0, scale=0.5):
    """make_problem, without a (B, T) id batch whose rows look one-hot (T = k:
    fastrnn warns about those, and warnings are errors here)."""
    p = make_problem(arch, form, head, weights, seed, scale)
    X = p.X
    if isinstance(X, np.ndarray) and X.dtype.kind in "iu" and X.ndim == 2 and X.shape[1] == K:
        X[0] = 0
    return p


def forward_kwargs(p):
    return {k: v for k, v in p.kwargs.items() if k != "sample_weight"}


def per_sequence_outputs(out, p, last_step):
    """forward's ŷ as a list of (rows, m) arrays, one per sequence."""
    if last_step:
        return [row[None] for row in np.atleast_2d(out)]
    if isinstance(out, list):
        return out
    return [out] if p.form.startswith("single") else list(out)


def per_sequence_targets(y, p, last_step):
    if last_step:
        y = np.asarray(y)
        return [y] if p.form.startswith("single") else list(y)
    if isinstance(y, list):
        return y
    return [y] if p.form.startswith("single") else list(y)


def deep(arch):
    return arch[1] > 1 or arch[2]


def n_slots(arch):
    return arch[1] * (2 if arch[2] else 1)


def state_shape(arch, B, single):
    return ((n_slots(arch),) if deep(arch) else ()) + ((D,) if single else (B, D))


def states(value, arch):
    """A public state as a tuple of arrays (h,) or (h, c)."""
    return tuple(value) if arch[0] == "lstm" else (value,)


def assert_identical(a, b, what=""):
    fa, fb = flat(a), flat(b)
    assert len(fa) == len(fb), what
    for i, (x, y) in enumerate(zip(fa, fb)):
        assert x.shape == y.shape and np.array_equal(x, y), f"{what}[{i}] differs"


def assert_close(a, b, what="", tol=1e-12):
    fa, fb = flat(a), flat(b)
    assert len(fa) == len(fb), what
    for i, (x, y) in enumerate(zip(fa, fb)):
        assert x.shape == y.shape, (what, i, x.shape, y.shape)
        assert normwise(x, y) <= tol, f"{what}[{i}]: {normwise(x, y):.2e}"


# ------------------------------------------------------------- probabilities
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_probabilities_are_distributions(arch, backend):
    for form in FORMS:
        for head in CE_HEADS:
            p = problem(arch, form, head)
            probs = fastrnn.forward(p.params, p.X, backend=backend, **forward_kwargs(p))[0]
            for P in (probs if isinstance(probs, list) else [probs]):
                assert P.shape[-1] == M and P.dtype == np.float64
                assert np.all(P > 0) and np.all(P <= 1), (form, head)
                assert np.abs(P.sum(axis=-1) - 1.0).max() <= 4e-16 * M, (form, head)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_is_stable_for_huge_logits(backend):
    """b_y of ±800 would overflow exp without taking out the largest logit."""
    rng = np.random.default_rng(9)
    params = fastrnn.init_params(2, 3, 3, random_state=rng)
    params["b_y"] = np.array([800.0, -800.0, 799.0])
    X = rng.normal(0, 1, (4, 2))
    probs = fastrnn.forward(params, X, backend=backend)[0]
    assert np.all(np.isfinite(probs))
    # z − lse(z) is exact only to ulp(800) ≈ 1e-13, and so is each ŷ relatively
    assert np.abs(probs.sum(axis=-1) - 1.0).max() <= 4 * np.spacing(800.0)
    assert np.all(probs[:, 1] == 0.0)                 # e^{-1600} underflows to 0
    assert np.all(probs[:, 0] > probs[:, 2])
    # the loss of the class whose probability is 0 is finite: lse(z) - z_1 ≈ 1600
    loss = fastrnn.loss_and_grad(params, X, np.ones(4, int), backend=backend)[0]
    assert 1590 < loss / 4 < 1610


# ----------------------------------------------------------------- shapes
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_output_shapes_follow_the_input(arch, backend):
    cell, layers, bidirectional = arch
    Dd = D * (2 if bidirectional else 1)
    for form in FORMS:
        for head in HEADS:
            p = problem(arch, form, head)
            single = form.startswith("single")
            B, last = len(p.lengths), head[1] == "last_step"
            out = fastrnn.forward(p.params, p.X, backend=backend, return_hidden=True,
                                  **forward_kwargs(p))
            assert len(out) == 3
            assert len(fastrnn.forward(p.params, p.X, backend=backend,
                                       **forward_kwargs(p))) == 2
            probs, h_last, hidden = out
            if last:                                  # one row per sequence
                assert np.shape(probs) == ((M,) if single else (B, M)), (form, head)
            elif form.startswith("list"):
                assert [np.shape(P) for P in probs] == [(T, M) for T in p.lengths]
            else:
                assert np.shape(probs) == np.shape(p.X)[:-1 if form.endswith("dense") or
                                                        form == "h0" else None] + (M,)
            # the states: h (and c), shaped like h0
            shape = state_shape(arch, B, single)
            for s in states(h_last, arch):
                assert s.shape == shape, (form, s.shape, shape)
            hid = states(hidden, arch)
            assert len(hid) == (2 if cell == "lstm" else 1)
            for H in hid:
                per_seq = H if isinstance(H, list) else [H] if single else list(H)
                assert [h.shape for h in per_seq] == [(T, Dd) for T in p.lengths], form
            # each state is where its sequence stopped: the top forward slot's
            # final h is hidden at the last step; the top reverse slot's at the first
            for j, (s, H) in enumerate(zip(states(h_last, arch), hid)):
                per_seq = H if isinstance(H, list) else [H] if single else list(H)
                top = s[-(2 if bidirectional else 1)] if deep(arch) else s
                top = top[None] if single else top
                assert np.array_equal(top, [h[-1, :D] for h in per_seq]), (form, j)
                if bidirectional:
                    rev = s[-1][None] if single else s[-1]
                    assert np.array_equal(rev, [h[0, D:] for h in per_seq]), (form, j)
            # the gradients: every key of params, float64, the same shapes
            lg = fastrnn.loss_and_grad(p.params, p.X, p.y, backend=backend, return_dh0=True,
                                       return_dX=form.endswith("dense"), **p.kwargs)
            loss, grads, dh0 = lg[:3]
            assert isinstance(loss, float)
            assert list(grads) == list(p.params)
            for key in grads:
                assert grads[key].shape == p.params[key].shape, key
                assert grads[key].dtype == np.float64
            for s in states(dh0, arch):
                assert s.shape == shape
            if form.endswith("dense"):
                dX = lg[3]
                if isinstance(p.X, list):
                    assert [a.shape for a in dX] == [x.shape for x in p.X]
                else:
                    assert dX.shape == p.X.shape


# ------------------------------------------------------------ the zero model
def zero_params(arch, k=K, m=M):
    return {key: np.zeros_like(v) for key, v in
            make_params(arch, np.random.default_rng(0), k=k, m=m).items()}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_the_zero_model_predicts_uniformly(arch, backend):
    """W = 0, b = 0: z = 0, so ŷ = 1/m (within a few ulp: e^{0 − log m}) and
    each output row costs log m (cross-entropy) or ½‖y‖² (squared error)."""
    params = zero_params(arch)
    for form in FORMS:
        for head in HEADS:
            p = problem(arch, form, head)
            probs = fastrnn.forward(params, p.X, backend=backend, **forward_kwargs(p))[0]
            for P in (probs if isinstance(probs, list) else [probs]):
                if head[0] == "cross_entropy":
                    ulps = np.abs(P - 1.0 / M) / np.spacing(1.0 / M)
                    assert ulps.max() <= 4, (form, head, ulps.max())
                else:
                    assert np.all(P == 0.0)
            loss, grads, dh0 = fastrnn.loss_and_grad(params, p.X, p.y, backend=backend,
                                                     return_dh0=True, **p.kwargs)
            targets = per_sequence_targets(p.y, p, head[1] == "last_step")
            if head[0] == "cross_entropy":
                rows = [1 if head[1] == "last_step" else T for T in p.lengths]
                expected = np.mean(rows) * np.log(M)
            else:
                expected = np.mean([0.5 * np.sum(np.asarray(t) ** 2) for t in targets])
            assert abs(loss - expected) <= 1e-14 * expected, (form, head, loss, expected)
            # W_y = 0 stops every gradient at the output layer
            for key in grads:
                if key not in ("W_y", "b_y"):
                    assert np.all(grads[key] == 0.0), (form, head, key)
            for s in states(dh0, arch):
                assert np.all(s == 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_zero_models_loss_is_a_mean_over_sequences(backend):
    """A ragged list: the loss is the mean over sequences of T_b log m, not
    the mean over all steps."""
    m, lengths = 5, (1, 2, 9)
    X = [np.zeros(T, dtype=int) for T in lengths]
    y = [np.zeros(T, dtype=int) for T in lengths]
    loss = fastrnn.loss_and_grad(zero_params(("gru", 2, True), k=2, m=m), X, y,
                                 backend=backend)[0]
    assert abs(loss - 4 * np.log(m)) <= 1e-14 * 4 * np.log(m)       # (1 + 2 + 9) / 3 = 4


# ----------------------------------------------------------- logit gradients
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_logit_gradients_sum_to_zero(arch, backend):
    """Σ_c dz_{r,c} = factor_r (Σ_c ŷ_c − Σ_c y_c) = 0 for every row, so
    Σ_c db_y[c] = 0 and every column of dW_y sums to 0."""
    for form in ("batch_dense", "list_ids", "h0"):
        for head in CE_HEADS:
            p = problem(arch, form, head, "sequence", seed=1, scale=1.0)
            grads = fastrnn.loss_and_grad(p.params, p.X, p.y, backend=backend, **p.kwargs)[1]
            size = np.abs(grads["b_y"]).sum()
            assert size > 1e-3, (form, head)
            assert abs(grads["b_y"].sum()) <= 1e-15 * M * max(1.0, size), (form, head)
            columns = grads["W_y"].sum(axis=0)
            assert np.abs(columns).max() <= 1e-15 * M * max(1.0, np.abs(grads["W_y"]).sum())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_one_step_logit_gradient_is_probs_minus_target(arch, backend):
    """One sequence of one step: db_y = ŷ − y, with ŷ as forward reports it."""
    params = make_params(arch, np.random.default_rng(7))
    X = np.random.default_rng(8).normal(0, 1, (1, K))
    probs = fastrnn.forward(params, X, backend=backend)[0]
    for y in (np.array([2]), np.random.default_rng(9).dirichlet(np.ones(M), 1)):
        target = np.eye(M)[y] if y.dtype.kind == "i" else y
        grads = fastrnn.loss_and_grad(params, X, y, backend=backend)[1]
        assert np.abs(grads["b_y"] - (probs[0] - target[0])).max() <= 2e-16
    # squared error: db_y = z − y, z = ŷ
    y = np.array([[0.5, -1.0, 2.0]])
    z = fastrnn.forward(params, X, backend=backend, loss="squared_error")[0]
    grads = fastrnn.loss_and_grad(params, X, y, backend=backend, loss="squared_error")[1]
    assert np.abs(grads["b_y"] - (z[0] - y[0])).max() <= 4e-16


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_forward_probabilities_give_the_loss(arch, backend):
    """An independent check of the glue: the weighted loss of docs/math.md
    (section 5) computed here from forward's ŷ equals loss_and_grad's."""
    for i, head in enumerate(HEADS):
        for weights in (None, "sequence", "step"):
            form = ("list_dense", "batch_ids", "single_dense")[(i + len(weights or "")) % 3]
            p = problem(arch, form, head, weights, seed=2)
            last = head[1] == "last_step"
            probs = fastrnn.forward(p.params, p.X, backend=backend, **forward_kwargs(p))[0]
            B = len(p.lengths)
            share = (np.full(B, 1.0 / B) if p.seq_weight is None
                     else p.seq_weight / p.seq_weight.sum())
            expected = 0.0
            for b, (P, y) in enumerate(zip(per_sequence_outputs(probs, p, last),
                                           per_sequence_targets(p.y, p, last))):
                y = np.asarray(y)
                if head[0] == "squared_error":
                    per_row = 0.5 * ((P - y.reshape(P.shape)) ** 2).sum(axis=-1)
                elif y.dtype.kind in "iu":
                    per_row = -np.log(P[np.arange(len(P)), np.atleast_1d(y)])
                else:
                    per_row = -(y.reshape(P.shape) * np.log(P)).sum(axis=-1)
                if p.step_weight is not None:
                    per_row = per_row * p.step_weight[b]
                expected += share[b] * per_row.sum()
            loss = fastrnn.loss_and_grad(p.params, p.X, p.y, backend=backend, **p.kwargs)[0]
            assert abs(loss - expected) <= 1e-12 * abs(expected), (head, weights, loss, expected)


# ------------------------------------------------------------- determinism
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_results_are_deterministic(arch, backend):
    for form in ("list_dense", "batch_ids", "h0"):
        p = problem(arch, form, HEADS[0], "step", scale=1.5)

        def run():
            return (fastrnn.forward(p.params, p.X, backend=backend, return_hidden=True,
                                    **forward_kwargs(p)),
                    fastrnn.loss_and_grad(p.params, p.X, p.y, backend=backend, return_dh0=True,
                                          return_dX=form.endswith("dense"), **p.kwargs))
        assert_identical(run(), run(), form)


# --------------------------------------------------- spellings of the same data
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_zero_h0_equals_no_h0_and_a_given_h0_matters(arch, backend):
    p = problem(arch, "h0", HEADS[0], seed=3, scale=1.0)
    B = len(p.lengths)
    shape = state_shape(arch, B, False)
    zeros = np.zeros(shape)
    none = fastrnn.loss_and_grad(p.params, p.X, p.y, backend=backend, return_dh0=True)
    spellings = [(zeros, zeros), (zeros, None), (None, zeros), (None, None),
                 (zeros.tolist(), None)] if arch[0] == "lstm" else [zeros, zeros.tolist()]
    for h0 in spellings:
        got = fastrnn.loss_and_grad(p.params, p.X, p.y, h0=h0, backend=backend,
                                    return_dh0=True)
        assert_identical(got, none, "loss_and_grad")
        assert_identical(fastrnn.forward(p.params, p.X, h0=h0, backend=backend,
                                         return_hidden=True),
                         fastrnn.forward(p.params, p.X, backend=backend, return_hidden=True),
                         "forward")
    given = fastrnn.loss_and_grad(p.params, p.X, p.y, h0=p.kwargs["h0"], backend=backend,
                                  return_dh0=True)
    assert abs(given[0] - none[0]) > 1e-6                 # h0 is really used
    if arch[0] == "lstm":                                  # and so is c0 alone
        c_only = fastrnn.loss_and_grad(p.params, p.X, p.y, h0=(None, p.kwargs["h0"][1]),
                                       backend=backend)
        assert abs(c_only[0] - none[0]) > 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_token_ids_equal_one_hot_inputs(arch, backend):
    """An id picks a column of W_x; a one-hot float row multiplies W_x by
    e_j: the same numbers (the gradient sums may be ordered differently)."""
    for form in ("single_ids", "batch_ids", "list_ids"):
        for head in (HEADS[0], HEADS[3]):
            p = problem(arch, form, head, "sequence", seed=4)
            one_hot = [np.eye(K)[x] for x in p.X] if isinstance(p.X, list) else np.eye(K)[p.X]
            a = fastrnn.loss_and_grad(p.params, p.X, p.y, backend=backend, return_dh0=True,
                                      **p.kwargs)
            b = fastrnn.loss_and_grad(p.params, one_hot, p.y, backend=backend,
                                      return_dh0=True, **p.kwargs)
            assert_close(a, b, f"{form} loss_and_grad")
            assert_close(fastrnn.forward(p.params, p.X, backend=backend, return_hidden=True,
                                         **forward_kwargs(p)),
                         fastrnn.forward(p.params, one_hot, backend=backend,
                                         return_hidden=True, **forward_kwargs(p)),
                         f"{form} forward")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_class_ids_equal_one_hot_targets(arch, backend):
    for head in CE_HEADS:
        p = problem(arch, "batch_dense", head, "step", seed=5)
        lead = (len(p.lengths),) if head[1] == "last_step" else (len(p.lengths), p.lengths[0])
        ids = np.random.default_rng(5).integers(0, M, lead)
        a = fastrnn.loss_and_grad(p.params, p.X, ids, backend=backend, return_dh0=True,
                                  return_dX=True, **p.kwargs)
        b = fastrnn.loss_and_grad(p.params, p.X, np.eye(M)[ids], backend=backend,
                                  return_dh0=True, return_dX=True, **p.kwargs)
        assert_close(a, b, str(head))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_a_batch_is_the_list_of_its_sequences(arch, backend):
    """The same sequences as a (B, T, ...) array or as a list are packed
    alike: the same numbers, bit for bit."""
    for form in ("batch_dense", "batch_ids", "h0"):
        for head in (HEADS[0], HEADS[1], HEADS[2]):
            p = problem(arch, form, head, "sequence" if head[1] == "last_step" else "step",
                        seed=6)
            as_list = list(p.X)
            y_list = p.y if head[1] == "last_step" else list(p.y)
            kwargs = dict(p.kwargs)
            if "sample_weight" in kwargs and head[1] != "last_step":
                kwargs["sample_weight"] = list(kwargs["sample_weight"])
            dense = form != "batch_ids"
            a = fastrnn.loss_and_grad(p.params, p.X, p.y, backend=backend, return_dh0=True,
                                      return_dX=dense, **p.kwargs)
            b = fastrnn.loss_and_grad(p.params, as_list, y_list, backend=backend,
                                      return_dh0=True, return_dX=dense, **kwargs)
            assert_identical(a[:3], b[:3], f"{form} {head}")
            if dense:
                assert_identical(list(a[3]), b[3], "dX")
            fa = fastrnn.forward(p.params, p.X, backend=backend, return_hidden=True,
                                 **forward_kwargs(p))
            fb = fastrnn.forward(p.params, as_list, backend=backend, return_hidden=True,
                                 **forward_kwargs(p))
            assert isinstance(fb[0], list) or head[1] == "last_step"
            probs_a = fa[0] if head[1] == "last_step" else list(fa[0])
            assert_identical(probs_a, fb[0], "probs")
            assert_identical(fa[1], fb[1], "h_last")
            hid_a = [list(h) for h in states(fa[2], arch)]
            assert_identical(hid_a, list(states(fb[2], arch)), "hidden")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_each_sequences_initial_state_gradient_is_its_own(arch, backend):
    """h0 of sequence b reaches only sequence b: its part of dh0 is the dh0
    of sequence b alone times its share of the loss (1/B here)."""
    p = problem(arch, "h0", HEADS[0], seed=7)
    B = len(p.lengths)
    dh0 = fastrnn.loss_and_grad(p.params, p.X, p.y, h0=p.kwargs["h0"], backend=backend,
                                return_dh0=True)[2]
    for b in range(B):
        h0_b = tuple(s[..., b, :] for s in states(p.kwargs["h0"], arch))
        alone = fastrnn.loss_and_grad(p.params, p.X[b], p.y[b], backend=backend,
                                      h0=h0_b if arch[0] == "lstm" else h0_b[0],
                                      return_dh0=True)[2]
        for whole, one in zip(states(dh0, arch), states(alone, arch)):
            assert_close(whole[..., b, :], one / B, f"sequence {b}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", UNIDIRECTIONAL, ids=arch_id)
def test_the_final_state_continues_the_sequence(arch, backend):
    """forward(X[:3]) then forward(X[3:], h0=its final state) is forward(X)
    (every layer's h, and c): how a stream is predicted chunk by chunk."""
    params = make_params(arch, np.random.default_rng(10))
    X = np.random.default_rng(11).normal(0, 1, (2, 7, K))
    whole, end = fastrnn.forward(params, X, backend=backend)
    first, middle = fastrnn.forward(params, X[:, :3], backend=backend)
    second, end2 = fastrnn.forward(params, X[:, 3:], h0=middle, backend=backend)
    assert_close(np.concatenate([first, second], axis=1), whole, "probs", tol=1e-15)
    assert_close(end2, end, "state", tol=1e-15)


# -------------------------------------------------------- nothing overflows silently
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a[0] != "rnn"], ids=arch_id)
def test_huge_gate_pre_activations_saturate_without_warnings(arch, backend):
    """Gate biases of ±1e4 (e^{1e4} overflows) saturate σ to exactly 0 or 1:
    finite outputs and gradients, no overflow warning."""
    rng = np.random.default_rng(3)
    params = make_params(arch, rng)
    for key in params:
        if key.startswith("b_h"):
            params[key] = np.resize([1e4, -1e4, 800.0, -800.0, 1e4, -1e4, 3.0],
                                    params[key].shape)
    p = problem(arch, "h0", HEADS[0], seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fastrnn.forward(params, p.X, h0=p.kwargs["h0"], backend=backend,
                              return_hidden=True)
        lg = fastrnn.loss_and_grad(params, p.X, p.y, h0=p.kwargs["h0"], backend=backend,
                                   return_dh0=True)
    for value in flat(out) + flat(lg):
        assert np.isfinite(value).all()
    # |h_t| ≤ 1 for the LSTM (o_t tanh c_t); the GRU interpolates from h_0
    bound = 1.0 if arch[0] == "lstm" else max(1.0, np.abs(p.kwargs["h0"]).max())
    assert np.abs(states(out[2], arch)[0]).max() <= bound


def overflow_outcome(call):
    """('ok', result) or ('error', exception) of a call that may overflow."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return "ok", call()
    except (ValueError, FloatingPointError) as exc:
        return "error", exc


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_an_overflow_inside_the_network_is_never_silent(arch):
    """Finite inputs near 1e308 can overflow in W_x x_t + b_h. Both twins must
    then do the same: raise a ValueError or FloatingPointError saying what
    overflowed, or return identical (within the twins' bound), finite
    results. Neither may return NaN or an inf. Inputs: ±1.7e308 with weights
    of ±2 (every product w·x overflows, so the sum is inf − inf in one order
    and ±inf in another), and ±1e308 with weights of ±0.5 (no product
    overflows)."""
    rng = np.random.default_rng(12)
    for size, weight in ((1.7e308, 2.0), (1e308, 0.5)):
        params = make_params(arch, rng)
        for key in ("W_x", "W_x_reverse"):
            if key in params:
                params[key] = rng.choice([-weight, weight], params[key].shape)
        X = rng.choice([-size, size], (3, 2, K))
        for head in HEADS:
            lead = (3,) if head[1] == "last_step" else (3, 2)
            y = (rng.integers(0, M, lead) if head[0] == "cross_entropy"
                 else rng.normal(0, 1, lead + (M,)))
            results = {}
            for backend in BACKENDS:
                results[backend] = (
                    overflow_outcome(lambda: fastrnn.forward(
                        params, X, backend=backend, return_hidden=True, loss=head[0],
                        output=head[1])),
                    overflow_outcome(lambda: fastrnn.loss_and_grad(
                        params, X, y, backend=backend, return_dh0=True, return_dX=True,
                        loss=head[0], output=head[1])))
            for i, what in enumerate(("forward", "loss_and_grad")):
                (kind_k, got_k), (kind_r, got_r) = results["numba"][i], results["numpy"][i]
                assert kind_k == kind_r, (
                    f"{what}, |x| = {size:g}, {head}: the kernels "
                    f"{'raise ' + repr(got_k) if kind_k == 'error' else 'return finite results'}"
                    f", the reference "
                    f"{'raises ' + repr(got_r) if kind_r == 'error' else 'returns finite results'}")
                if kind_k == "error":
                    for exc in (got_k, got_r):
                        assert "overflow" in str(exc) or "finite" in str(exc), exc
                else:
                    for value in flat(got_k) + flat(got_r):
                        assert np.isfinite(value).all(), (what, size, head)
                    assert_close(got_k, got_r, f"{what} {size:g} {head}")


# ----------------------------------------------------------- twins, off the grid
def check_twins(params, X, y, h0, kwargs, saturated=False):
    out = {}
    for backend in BACKENDS:
        out[backend] = (
            fastrnn.forward(params, X, h0=h0, backend=backend, return_hidden=True,
                            **{k: v for k, v in kwargs.items() if k != "sample_weight"}),
            fastrnn.loss_and_grad(params, X, y, h0=h0, backend=backend, return_dh0=True,
                                  **kwargs))
    (fk, lk), (fr, lr) = out["numba"], out["numpy"]
    assert_close(fk, fr, "forward")
    assert_close(lk[0], lr[0], "loss")
    if not saturated:
        assert_close(lk[1:], lr[1:], "gradients")
        return
    # docs/math.md, section 10: arrays whose every entry flows through saturated
    # units are held to max(‖reference‖, 0.1 G), G the whole gradient's norm
    arrays_k, arrays_r = flat(lk[1:]), flat(lr[1:])
    G = np.sqrt(sum(np.sum(a ** 2) for a in arrays_r))
    for i, (a, r) in enumerate(zip(arrays_k, arrays_r)):
        assert np.linalg.norm(a - r) <= 1e-12 * max(np.linalg.norm(r), 0.1 * G), i


SIZES = [(1, 1, 1), (1, 1, 2), (2, 1, 3), (1, 2, 1), (4, 3, 2)]      # k, d, m


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "k{}d{}m{}".format(*s))
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_twins_agree_on_degenerate_sizes(arch, size):
    k, d, m = size
    rng = np.random.default_rng([ARCHITECTURES.index(arch), *size])
    params = make_params(arch, rng, k=k, d=d, m=m)
    lengths = [3, 1, 4]
    X = [rng.integers(0, k, T) for T in lengths]
    y = [rng.integers(0, m, T) for T in lengths]
    check_twins(params, X, y, None, {})
    X = [rng.normal(0, 1, (T, k)) for T in lengths]
    y = rng.normal(0, 1, (3, m))
    check_twins(params, X, y, None, dict(loss="squared_error", output="last_step",
                                          sample_weight=rng.uniform(0.5, 1, 3)))
    if m == 1:          # one class: ŷ = 1, the loss and every gradient exactly 0
        loss, grads = fastrnn.loss_and_grad(params, X, [np.zeros(T, int) for T in lengths])
        assert loss == 0.0 and all(np.all(g == 0.0) for g in grads.values())


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_twins_agree_on_long_sequences(arch):
    """T = 40 (the battery's sequences have at most 5 steps): the gradient
    travels back through many steps; ragged, so sequences drop out early."""
    rng = np.random.default_rng(60 + ARCHITECTURES.index(arch))
    params = make_params(arch, rng, scale=0.4)
    X = [rng.normal(0, 1, (T, K)) for T in (40, 3, 27)]
    y = [rng.integers(0, M, T) for T in (40, 3, 27)]
    check_twins(params, X, y, None, {})


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_twins_agree_on_saturated_networks(arch):
    """Weights N(0, 2²): tanh and σ saturate (docs/math.md, section 10)."""
    for i, form in enumerate(("batch_dense", "list_ids")):
        p = problem(arch, form, HEADS[i], seed=9, scale=2.0)
        check_twins(p.params, p.X, p.y, None, p.kwargs, saturated=True)


# ------------------------------------------------------- the twins' own inputs
def kernel_arguments(p):
    net = _validation.check_params(p.params)
    head = _validation.check_head(p.kwargs["loss"], p.kwargs["output"])
    seqs = _validation.check_inputs(p.X, net.n_inputs)
    Y = _validation.check_targets(p.y, seqs, net.n_outputs, head)
    seq_weight, step_weight = _validation.check_sample_weight(p.kwargs.get("sample_weight"),
                                                              seqs, head)
    state0 = _validation.check_states(p.kwargs.get("h0"), net, seqs)
    return net, head, seqs, Y, _validation.sequence_scale(seq_weight), step_weight, state0


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_the_twins_never_write_into_their_inputs(arch):
    """The network functions of both twins fill only their output arrays."""
    a = Architecture(arch[0], K, D, M, arch[1], arch[2])
    for form, head, weights in (("h0", HEADS[0], "step"), ("list_ids", HEADS[1], "sequence")):
        p = problem(arch, form, head, weights, seed=10)
        net, head_, seqs, Y, scale, step_weight, state0 = kernel_arguments(p)
        thetaT = transposed(net.theta, a)
        inputs = (net.theta, thetaT, net.table, seqs.data, Y, seqs.offsets, scale, step_weight,
                  state0)
        before = [np.array(v, copy=True) for v in inputs]
        N, B = seqs.n_rows, seqs.n_sequences
        cache = CELLS[arch[0]].cache_blocks * D
        for module in (kernel_network, reference_network):
            Hs = np.empty((a.n_layers, a.n_directions, N, D))
            caches = np.empty((a.n_layers, a.n_directions, N, cache))
            module.loss_and_grad(CELLS[arch[0]].tag, net.theta, net.table, seqs.data, Y,
                                 seqs.offsets, scale, step_weight, state0, head_.loss,
                                 head_.last_step, 0.3 if arch[1] > 1 else 0.0, np.uint64(5), 0,
                                 Hs, caches, np.empty_like(state0), np.empty_like(net.theta),
                                 np.empty_like(state0),
                                 np.empty((N if seqs.data.ndim == 2 else 0, K)))
            module.forward(CELLS[arch[0]].tag, net.theta, thetaT, net.table, seqs.data,
                           seqs.offsets, state0, head_.loss, head_.last_step, Hs, caches,
                           np.empty_like(state0), np.empty((B if head_.last_step else N, M)))
            for old, new in zip(before, inputs):
                assert np.array_equal(old, new), module.__name__


@pytest.mark.parametrize("given", [False, True], ids=["thetaT-empty", "thetaT-given"])
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_forward_and_loss_and_grad_run_the_same_forward_pass(arch, given):
    """Both network functions of a twin fill Hs, the caches and the final
    states alike (without dropout), and forward's ŷ are the loss's; forward
    gives the same bits whether it is given the transposed weights or makes
    them (``given``)."""
    a = Architecture(arch[0], K, D, M, arch[1], arch[2])
    p = problem(arch, "h0", HEADS[1], seed=11)
    net, head_, seqs, Y, scale, step_weight, state0 = kernel_arguments(p)
    thetaT = transposed(net.theta, a) if given else net.theta[:0]
    N, B = seqs.n_rows, seqs.n_sequences
    cache = CELLS[arch[0]].cache_blocks * D
    for module in (kernel_network, reference_network):
        out = []
        for call in ("forward", "loss_and_grad"):
            Hs = np.full((a.n_layers, a.n_directions, N, D), np.nan)
            caches = np.full((a.n_layers, a.n_directions, N, cache), np.nan)
            state_last = np.full_like(state0, np.nan)
            if call == "forward":
                module.forward(CELLS[arch[0]].tag, net.theta, thetaT, net.table, seqs.data,
                               seqs.offsets, state0, head_.loss, head_.last_step, Hs, caches,
                               state_last, np.empty((B, M)))
            else:
                module.loss_and_grad(CELLS[arch[0]].tag, net.theta, net.table, seqs.data, Y,
                                     seqs.offsets, scale, step_weight, state0, head_.loss,
                                     head_.last_step, 0.0, np.uint64(0), 0, Hs, caches,
                                     state_last, np.empty_like(net.theta),
                                     np.empty_like(state0), np.empty((0, K)))
            out.append((Hs, caches, state_last))
        assert_identical(out[0], out[1], module.__name__)
        assert all(np.isfinite(x).all() for x in out[0])


# ------------------------------------------------------------------ init_params
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=arch_id)
def test_init_params_is_reproducible_and_as_documented(arch):
    """docs/math.md, section 9: keys in theta order, C-contiguous float64,
    weights in [−1/√d, 1/√d], biases 0 except the LSTM's forget block (1)."""
    cell, layers, bidirectional = arch
    k, d, m = 5, 4, 3
    kwargs = dict(cell=cell, n_layers=layers, bidirectional=bidirectional)
    a = fastrnn.init_params(k, d, m, random_state=0, **kwargs)
    b = fastrnn.init_params(k, d, m, random_state=np.random.default_rng(0), **kwargs)
    c = fastrnn.init_params(k, d, m, random_state=1, **kwargs)
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    n_dir = 2 if bidirectional else 1
    shapes = {}                              # docs/math.md, section 6, by hand
    for layer in range(layers):
        for direction in range(n_dir):
            suffix = (f"_l{layer}" if layer else "") + ("_reverse" if direction else "")
            shapes["W_x" + suffix] = (G * d, k if layer == 0 else n_dir * d)
            shapes["W_h" + suffix] = (G * d, d)
            shapes["b_h" + suffix] = (G * d,)
            if cell == "gru":
                shapes["b_hn" + suffix] = (d,)
    shapes.update(W_y=(m, n_dir * d), b_y=(m,))
    assert list(a) == list(shapes)
    for key, value in a.items():
        assert value.shape == shapes[key] and value.dtype == np.float64, key
        assert value.flags.c_contiguous and np.array_equal(value, b[key]), key
        if key.startswith("W_"):
            assert np.abs(value).max() <= 1 / np.sqrt(d) and np.abs(value).max() > 0.2, key
            assert not np.array_equal(value, c[key]), key
        elif key.startswith("b_h") and not key.startswith("b_hn") and cell == "lstm":
            assert np.array_equal(value, np.repeat([1.0, 0, 0, 0], d)), key   # f, i, o, g
        else:
            assert np.all(value == 0.0), key
    assert fastrnn.init_params(k, d, random_state=0, **kwargs)["W_y"].shape == (k, n_dir * d)
