"""``fastrnn.gradcheck``, the finite-difference checker that the battery
(tests/test_twins.py) and a learner's own backpropagation rely on:

* it passes on fastrnn.loss_and_grad (both backends) for a few architectures;
* it finds a planted error: a loss_and_grad whose gradient is wrong in one
  coordinate (scaled by 1.001), or whose square W_h gradient is transposed,
  is reported (ok is False), and the worst array and coordinate are the
  planted ones;
* it checks a learner's own function with fastrnn's signature: a pure-NumPy
  simple RNN written here, right and wrong;
* its report prints every array; max_coordinates draws a reproducible
  subset with random_state.

The error measure (docs/math.md, section 10, and fastrnn/_gradcheck.py):
err = |a − n| / max(|a| + |n|, floor), floor = 1e-3 · max(1, |L|).
"""
import numpy as np
import pytest

import fastrnn
from _registry import ARCHITECTURES, HEADS, arch_id, make_problem

pytestmark = pytest.mark.kernels

CHECKED = [("rnn", 1, False), ("lstm", 2, False), ("gru", 1, True), ("rnn", 2, True)]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("arch", CHECKED, ids=arch_id)
def test_passes_on_fastrnns_own_gradient(arch, backend):
    i = ARCHITECTURES.index(arch)
    p = make_problem(arch, ("list_dense", "h0", "batch_ids", "single_dense")[i % 4],
                     HEADS[i % 4], "sequence", seed=50)
    report = fastrnn.gradcheck(p.params, p.X, p.y, backend=backend, max_coordinates=12,
                               random_state=i, **p.kwargs)
    assert report.ok, str(report)
    assert set(report.arrays) == set(p.params)
    assert report.worst <= 1e-6
    assert sum(a.relative for a in report.arrays.values()) >= 10, str(report)
    assert all(a.checked == min(12, np.size(p.params[key]))
               for key, a in report.arrays.items())


def planted(error, key="W_h", index=(1, 2)):
    """fastrnn.loss_and_grad with a wrong gradient of ``key``."""
    def loss_and_grad(params, X, y, **options):
        loss, grads, *rest = fastrnn.loss_and_grad(params, X, y, **options)
        grads = {k: v.copy() for k, v in grads.items()}
        if error == "scaled":
            grads[key][index] *= 1.001
        elif error == "transposed":
            grads[key] = grads[key].T.copy()
        return (loss, grads, *rest)
    return loss_and_grad


@pytest.fixture(scope="module")
def square_problem():
    """A simple RNN with a square W_h (d = 4), every coordinate far from 0."""
    p = make_problem(("rnn", 1, False), "batch_dense", HEADS[0], seed=51, scale=0.8)
    return p


def test_finds_one_coordinate_scaled_by_1_001(square_problem):
    p = square_problem
    report = fastrnn.gradcheck(p.params, p.X, p.y, loss_and_grad=planted("scaled"), **p.kwargs)
    assert not report.ok, str(report)
    worst_key = max(report.arrays, key=lambda key: report.arrays[key].worst)
    assert worst_key == "W_h"
    check = report.arrays["W_h"]
    assert check.where == (1, 2)
    # the analytic value is the true one times 1.001: an error of about 5e-4
    assert 3e-4 < check.worst < 6e-4 and check.analytic == pytest.approx(
        1.001 * check.numerical, rel=1e-6)
    assert all(a.worst <= 1e-6 for key, a in report.arrays.items() if key != "W_h")
    assert "FAILED" in str(report)


def test_finds_a_transposed_gradient(square_problem):
    p = square_problem
    report = fastrnn.gradcheck(p.params, p.X, p.y, loss_and_grad=planted("transposed"),
                               **p.kwargs)
    assert not report.ok
    check = report.arrays["W_h"]
    assert check.worst > 1e-2
    row, col = check.where
    assert row != col                         # the diagonal of a transpose is right
    assert all(a.worst <= 1e-6 for key, a in report.arrays.items() if key != "W_h")


def test_finds_a_planted_error_among_a_subset_only_if_it_is_drawn(square_problem):
    """max_coordinates checks a random subset: the planted coordinate is found
    when drawn and missed otherwise (the report says how many were checked)."""
    p = square_problem
    found = missed = 0
    for seed in range(12):
        report = fastrnn.gradcheck(p.params, p.X, p.y, loss_and_grad=planted("scaled"),
                                   max_coordinates=4, random_state=seed, **p.kwargs)
        assert report.arrays["W_h"].checked == 4
        if report.ok:
            missed += 1
        else:
            found += 1
            assert report.arrays["W_h"].where == (1, 2)
    assert found and missed


def test_a_gradient_of_another_shape_is_an_error(square_problem):
    p = square_problem
    with pytest.raises(ValueError, match=r"^loss_and_grad: the gradient of 'W_x' has shape"):
        fastrnn.gradcheck(p.params, p.X, p.y, loss_and_grad=planted("transposed", "W_x"),
                          **p.kwargs)


@pytest.mark.parametrize("arch", [("rnn", 1, False), ("lstm", 1, False), ("gru", 2, True)],
                         ids=arch_id)
def test_passes_through_a_long_sequence(arch):
    """T = 25: the gradient has to travel back through many steps."""
    rng = np.random.default_rng(54)
    params = {key: rng.normal(0, 0.5, value.shape) for key, value in
              fastrnn.init_params(3, 4, 3, cell=arch[0], n_layers=arch[1],
                                  bidirectional=arch[2], random_state=0).items()}
    X, y = rng.normal(0, 1, (25, 3)), rng.integers(0, 3, 25)
    report = fastrnn.gradcheck(params, X, y, max_coordinates=6, random_state=1)
    assert report.ok, str(report)
    assert sum(a.relative for a in report.arrays.values()) >= 10, str(report)


def with_states_as_parameters(arch, p):
    """fastrnn.loss_and_grad seen by gradcheck with h0 (and c0) and X among
    the parameters: their gradients dh0, dc0 and dX are checked too."""
    lstm = arch[0] == "lstm"

    def loss_and_grad(params, X, y, **options):
        params = dict(params)
        h0 = (params.pop("h0"), params.pop("c0")) if lstm else params.pop("h0")
        X = params.pop("X")
        loss, grads, dh0, dX = fastrnn.loss_and_grad(params, X, y, h0=h0, return_dh0=True,
                                                     return_dX=True, **options)
        grads = dict(grads, X=dX, **({"h0": dh0[0], "c0": dh0[1]} if lstm else {"h0": dh0}))
        return loss, grads

    h0 = p.kwargs["h0"]
    extended = dict(p.params, X=p.X, **({"h0": h0[0], "c0": h0[1]} if lstm else {"h0": h0}))
    return loss_and_grad, extended


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("arch", [("rnn", 1, False), ("lstm", 2, True), ("gru", 3, False)],
                         ids=arch_id)
def test_state_and_input_gradients_match_finite_differences(arch, backend):
    """dh0 (dc0) and dX, which gradcheck's parameters do not include, by
    finite differences too: every coordinate of the states and inputs."""
    p = make_problem(arch, "h0", HEADS[ARCHITECTURES.index(arch) % 4], "step", seed=53)
    loss_and_grad, extended = with_states_as_parameters(arch, p)
    kwargs = {k: v for k, v in p.kwargs.items() if k != "h0"}
    report = fastrnn.gradcheck(extended, None, p.y, loss_and_grad=loss_and_grad,
                               backend=backend, max_coordinates=20, random_state=0, **kwargs)
    assert report.ok, str(report)
    keys = {"X", "h0", "c0"} if arch[0] == "lstm" else {"X", "h0"}
    assert keys <= set(report.arrays)
    assert all(report.arrays[key].relative >= 3 for key in keys), str(report)


# ----------------------------------------------------- a learner's own BPTT
def my_loss_and_grad(params, X, y, h0=None, wrong=False):
    """The notes' simple RNN written by a learner: one sequence, dense
    inputs (T, k), class ids y (T,), loss Σ_t −log ŷ_t[y_t]. ``wrong``
    forgets the tanh derivative, a classic slip."""
    W_x, W_h, b_h, W_y, b_y = (params[key] for key in ("W_x", "W_h", "b_h", "W_y", "b_y"))
    T, d = len(X), W_h.shape[0]
    hs = [np.zeros(d) if h0 is None else h0]
    ps, loss = [], 0.0
    for t in range(T):
        hs.append(np.tanh(W_x @ X[t] + W_h @ hs[-1] + b_h))
        z = W_y @ hs[-1] + b_y
        e = np.exp(z - z.max())
        ps.append(e / e.sum())
        loss -= np.log(ps[-1][y[t]])
    grads = {key: np.zeros_like(value) for key, value in params.items()}
    dh_next = np.zeros(d)
    for t in reversed(range(T)):
        dz = ps[t].copy()
        dz[y[t]] -= 1.0
        grads["W_y"] += np.outer(dz, hs[t + 1])
        grads["b_y"] += dz
        dh = W_y.T @ dz + dh_next
        da = dh if wrong else dh * (1.0 - hs[t + 1] ** 2)
        grads["W_x"] += np.outer(da, X[t])
        grads["W_h"] += np.outer(da, hs[t])
        grads["b_h"] += da
        dh_next = W_h.T @ da
    return loss, grads


def test_checks_a_learners_own_function():
    rng = np.random.default_rng(52)
    params = fastrnn.init_params(3, 4, 5, random_state=rng)
    params = {key: rng.normal(0, 0.7, value.shape) for key, value in params.items()}
    X, y = rng.normal(0, 1, (6, 3)), rng.integers(0, 5, 6)
    report = fastrnn.gradcheck(params, X, y, loss_and_grad=my_loss_and_grad)
    assert report.ok, str(report)
    # ... which is fastrnn's loss (independent check of the example itself)
    assert report.loss == pytest.approx(fastrnn.loss_and_grad(params, X, y)[0], rel=1e-13)
    wrong = fastrnn.gradcheck(params, X, y, loss_and_grad=my_loss_and_grad, wrong=True)
    assert not wrong.ok
    bad = {key for key, a in wrong.arrays.items() if a.worst > 1e-3}
    assert bad == {"W_x", "W_h", "b_h"}            # the output layer is right
    # options reach the function: an h0
    h0 = rng.normal(0, 0.5, 4)
    with_h0 = fastrnn.gradcheck(params, X, y, h0, loss_and_grad=my_loss_and_grad)
    assert with_h0.ok and with_h0.loss != report.loss


# ------------------------------------------------------------- the report
def test_the_report_prints_every_array(square_problem):
    p = square_problem
    report = fastrnn.gradcheck(p.params, p.X, p.y, max_coordinates=3, random_state=0,
                               **p.kwargs)
    text = str(report)
    for key in p.params:
        assert key in text
    assert "worst" in text and "ok" in text and "FAILED" not in text
    assert f"{report.loss:.6g}" in text
    assert "ok=True" in repr(report)
    lines = text.splitlines()
    assert len(lines) == 2 + len(p.params) + 1


def test_subsampling_is_reproducible_with_random_state(square_problem):
    p = square_problem
    runs = [fastrnn.gradcheck(p.params, p.X, p.y, max_coordinates=5, random_state=seed,
                              loss_and_grad=planted("scaled", "W_x", (0, 0)), **p.kwargs)
            for seed in (3, 3, 4)]
    first, again, other = ([(key, a.where, a.worst, a.checked) for key, a in r.arrays.items()]
                           for r in runs)
    assert first == again
    assert first != other
    assert all(a.checked == min(5, np.size(p.params[key]))
               for key, a in runs[0].arrays.items())
    # a Generator draws the same as its seed
    generator = fastrnn.gradcheck(p.params, p.X, p.y, max_coordinates=5,
                                  random_state=np.random.default_rng(3),
                                  loss_and_grad=planted("scaled", "W_x", (0, 0)), **p.kwargs)
    assert [(key, a.where, a.worst) for key, a in generator.arrays.items()] == \
        [(key, w, e) for key, w, e, _ in first]
