"""The optimizers and the gradient clipping of both twins
(``fastrnn.reference.optim``, ``fastrnn.kernels.optim``):

* each optimizer's first three updates against values computed here by
  hand, from the formulas of docs/math.md (section 8) written out in plain
  Python, with the code the estimator uses, ``OPTIMIZERS.index(name)``: so a
  name mapped to another optimizer's code fails, and so does a code whose
  branch computes another optimizer's update;
* an unknown code is a ValueError, never a silent default;
* an update that would make theta or the optimizer's state non-finite is
  undone: theta, the state and the step counter are restored;
* clipping by norm and by value, by hand;
* against torch.optim where the definitions are the same: SGD, momentum
  (torch's SGD with momentum, dampening 0), RMSprop (alpha = β2, ε outside
  the root) and Adam. Not Adagrad: fastrnn's puts ε inside the root, as
  min-char-rnn does; torch.optim.Adagrad adds it outside.
"""
import math

import numpy as np
import pytest

from _optional import require
from fastrnn._codes import (ADAGRAD, ADAM, CLIP_MODES, CLIP_NONE, CLIP_NORM, CLIP_VALUE,
                            MOMENTUM, OPTIMIZERS, RMSPROP, SGD)
from fastrnn.kernels import optim as kernel_optim
from fastrnn.reference import optim as reference_optim

TWINS = [kernel_optim, reference_optim]
TWIN_IDS = ["kernel", "reference"]

pytestmark = pytest.mark.kernels

# hyper = [lr, μ, β1, β2, ε]; ε large enough to matter in every formula
LR, MU, BETA1, BETA2, EPS = 0.1, 0.9, 0.8, 0.99, 1e-3
HYPER = [LR, MU, BETA1, BETA2, EPS]
THETA0 = [1.0, -2.0, 0.5, 0.0]
GRADS = [[0.1, -0.2, 3.0, 0.0],
         [-0.4, 0.5, 0.0, 1e-3],
         [0.3, 0.3, -1.0, -2.0]]


def by_hand(name, theta0=THETA0, grads=GRADS):
    """θ after each update, from docs/math.md section 8, coordinate by
    coordinate in plain Python floats (state zero at the start, t from 1)."""
    trajectory = []
    theta = list(theta0)
    first = [0.0] * len(theta)          # v (momentum), s (adagrad, rmsprop), m (adam)
    second = [0.0] * len(theta)         # Adam's v
    for t, g in enumerate(grads, start=1):
        for p in range(len(theta)):
            if name == "sgd":
                theta[p] = theta[p] - LR * g[p]
            elif name == "momentum":
                first[p] = MU * first[p] + g[p]
                theta[p] = theta[p] - LR * first[p]
            elif name == "adagrad":
                first[p] = first[p] + g[p] ** 2
                theta[p] = theta[p] - LR * g[p] / math.sqrt(first[p] + EPS)
            elif name == "rmsprop":
                first[p] = BETA2 * first[p] + (1 - BETA2) * g[p] ** 2
                theta[p] = theta[p] - LR * g[p] / (math.sqrt(first[p]) + EPS)
            elif name == "adam":
                first[p] = BETA1 * first[p] + (1 - BETA1) * g[p]
                second[p] = BETA2 * second[p] + (1 - BETA2) * g[p] ** 2
                m_hat = first[p] / (1 - BETA1 ** t)
                v_hat = second[p] / (1 - BETA2 ** t)
                theta[p] = theta[p] - LR * m_hat / (math.sqrt(v_hat) + EPS)
            else:
                raise AssertionError(name)
        trajectory.append(list(theta))
    return np.array(trajectory)


def run(module, code, hyper=HYPER, theta0=THETA0, grads=GRADS):
    """θ after each update by a twin's optimizer_step; also checks the step
    counter and that the gradient is not modified."""
    theta = np.array(theta0, dtype=float)
    state = np.zeros((2, len(theta)))
    step = np.zeros(1, dtype=np.int64)
    previous = np.empty((3, len(theta)))
    trajectory = []
    for t, g in enumerate(grads, start=1):
        grad = np.array(g, dtype=float)
        assert module.optimizer_step(theta, grad, code, np.array(hyper, dtype=float), state, step,
                                     previous) is True
        assert step[0] == t
        assert np.array_equal(grad, g)
        trajectory.append(theta.copy())
    return np.array(trajectory)


def assert_trajectory(got, want, what):
    assert got.shape == want.shape
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err <= 1e-15, f"{what}: {got.tolist()} vs by hand {want.tolist()} ({err:.1e})"


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_first_updates_by_hand(module, name):
    assert_trajectory(run(module, OPTIMIZERS.index(name)), by_hand(name), name)


def test_the_hand_computed_updates_tell_the_optimizers_apart():
    """On these numbers no two optimizers' updates coincide (else a swap of
    two of them could pass), and a few values are checked in closed form."""
    trajectories = {name: by_hand(name) for name in OPTIMIZERS}
    for a in OPTIMIZERS:
        for b in OPTIMIZERS:
            if a < b:
                assert np.abs(trajectories[a] - trajectories[b]).max() > 1e-3, (a, b)
    # the first update of each, in closed form: SGD, momentum θ − lr g;
    # Adagrad θ − lr g / √(g² + ε); RMSprop θ − lr g / (√(1 − β2) |g| + ε);
    # Adam θ − lr g / (|g| + ε) (both bias corrections are exact at t = 1)
    g, theta = np.array(GRADS[0]), np.array(THETA0)
    assert np.allclose(trajectories["sgd"][0], theta - 0.1 * g, rtol=0, atol=1e-15)
    assert np.allclose(trajectories["momentum"][0], theta - 0.1 * g, rtol=0, atol=1e-15)
    assert np.allclose(trajectories["adagrad"][0], theta - 0.1 * g / np.sqrt(g ** 2 + 1e-3),
                       rtol=0, atol=1e-15)
    assert np.allclose(trajectories["rmsprop"][0],
                       theta - 0.1 * g / (np.sqrt(0.01) * np.abs(g) + 1e-3), rtol=0, atol=1e-14)
    assert np.allclose(trajectories["adam"][0], theta - 0.1 * g / (np.abs(g) + 1e-3),
                       rtol=0, atol=1e-14)
    # momentum's second update: v = 0.9 g1 + g2
    assert np.allclose(trajectories["momentum"][1],
                       theta - 0.1 * g - 0.1 * (0.9 * g + np.array(GRADS[1])), rtol=0,
                       atol=1e-15)


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
def test_each_name_maps_to_its_own_update(module):
    """The name → code mapping (what the estimator passes): the code of each
    name computes that name's update and no other's. Swapping two names in
    OPTIMIZERS, or two code constants, fails here."""
    expected = {name: by_hand(name) for name in OPTIMIZERS}
    for name in OPTIMIZERS:
        got = run(module, OPTIMIZERS.index(name))
        closest = min(OPTIMIZERS, key=lambda other: np.abs(got - expected[other]).max())
        assert closest == name, f"optimizer={name!r} (code {OPTIMIZERS.index(name)}) " \
                                f"computes {closest}'s update"
    assert (SGD, MOMENTUM, ADAGRAD, RMSPROP, ADAM) == tuple(
        OPTIMIZERS.index(name) for name in ("sgd", "momentum", "adagrad", "rmsprop", "adam"))
    assert OPTIMIZERS == ("sgd", "momentum", "adagrad", "rmsprop", "adam")


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("code", [len(OPTIMIZERS), 7, -1, 99])
def test_an_unknown_optimizer_code_is_an_error(module, code):
    theta = np.array(THETA0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        module.optimizer_step(theta, np.array(GRADS[0]), code, np.array(HYPER), np.zeros((2, 4)),
                              np.zeros(1, dtype=np.int64), np.empty((3, 4)))
    assert np.array_equal(theta, THETA0)


# Per optimizer: a gradient (or learning rate) with which the update leaves
# float64: theta or the state would hold an inf or a nan.
NON_FINITE = {
    "sgd": ([1e300, 1.0, 0.0, -1.0], [1e10] + HYPER[1:]),             # θ: −1e309
    "momentum": ([1e300, 1.0, 0.0, -1.0], [1e10] + HYPER[1:]),
    "adagrad": ([1e200, 1.0, 0.0, -1.0], HYPER),                        # s: g² = 1e400
    "rmsprop": ([1e200, 1.0, 0.0, -1.0], HYPER),
    "adam": ([1e200, 1.0, 0.0, -1.0], HYPER),                           # v: g² = 1e400
}


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_non_finite_update_is_undone(module, name):
    """After two good updates, a third whose result is not finite returns
    False and leaves theta, the state and the step counter as they were."""
    code = OPTIMIZERS.index(name)
    theta = np.array(THETA0)
    state = np.zeros((2, 4))
    step = np.zeros(1, dtype=np.int64)
    previous = np.empty((3, 4))
    for g in GRADS[:2]:
        assert module.optimizer_step(theta, np.array(g), code, np.array(HYPER), state, step,
                                     previous)
    before = (theta.copy(), state.copy(), step.copy())
    grad, hyper = NON_FINITE[name]
    with np.errstate(all="ignore"):
        ok = module.optimizer_step(theta, np.array(grad), code, np.array(hyper), state, step,
                                   previous)
    assert ok is False
    assert np.array_equal(theta, before[0]) and np.array_equal(state, before[1])
    assert step[0] == before[2][0] == 2
    # and the next good update continues from there, as if the bad one never was
    assert module.optimizer_step(theta, np.array(GRADS[2]), code, np.array(HYPER), state, step,
                                 previous)
    assert_trajectory(theta[None], by_hand(name)[2:], f"{name} after an undone update")


# ------------------------------------------------------------------ clipping
@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
def test_clipping_by_norm(module):
    g = np.array([3.0, 4.0, 0.0, -12.0])                    # ‖g‖ = 13
    for clip, want in ((1.0, g / (13 + 1e-6)), (6.5, g * 6.5 / (13 + 1e-6)),
                       (13.0, g), (100.0, g)):
        grad = g.copy()
        assert module.clip_gradient(grad, CLIP_NORM, clip) == 13.0
        assert np.allclose(grad, want, rtol=1e-15, atol=0), (clip, grad)
        assert np.linalg.norm(grad) <= max(clip, 13.0) * (1 + 1e-15)
        if clip >= 13.0:
            assert np.array_equal(grad, g)                    # untouched, not rescaled by 1


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
def test_clipping_by_value(module):
    g = np.array([3.0, -4.0, 0.25, -0.5, 0.0])
    grad = g.copy()
    assert module.clip_gradient(grad, CLIP_VALUE, 0.5) == pytest.approx(math.sqrt(25.3125),
                                                                        rel=1e-15)
    assert np.array_equal(grad, [0.5, -0.5, 0.25, -0.5, 0.0])


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
def test_no_clipping_returns_the_norm(module):
    g = np.array([3.0, 4.0])
    grad = g.copy()
    assert module.clip_gradient(grad, CLIP_NONE, 0.1) == 5.0
    assert np.array_equal(grad, g)
    assert (CLIP_NORM, CLIP_VALUE) == tuple(CLIP_MODES.index(m) + 1 for m in ("norm", "value"))
    with np.errstate(all="ignore"):
        assert not math.isfinite(module.clip_gradient(np.array([1e200, 1e200]), CLIP_NORM, 1.0))
        assert math.isnan(module.clip_gradient(np.array([np.nan, 1.0]), CLIP_NONE, 1.0))


# ----------------------------------------------------------- against PyTorch
@pytest.fixture(scope="module")
def torch():
    return require("torch", "torch.optim is an independent definition of four optimizers")


P = 41
N_STEPS = 12


def gradients(seed):
    rng = np.random.default_rng(seed)
    # Varied magnitudes, so the adaptive optimizers' state matters.
    return [rng.normal(size=P) * rng.choice([1e-3, 0.1, 1.0, 5.0], size=P)
            for _ in range(N_STEPS)]


def run_torch(torch, make_optimizer, theta0, grads):
    param = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    opt = make_optimizer(torch, [param])
    trajectory = []
    for g in grads:
        opt.zero_grad()
        param.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        trajectory.append(param.detach().numpy().copy())
    return np.array(trajectory)


# (name, optimizer name, [lr, momentum, beta1, beta2, eps], torch optimizer factory)
CASES = [
    ("sgd", "sgd", [0.1, 0.9, 0.9, 0.999, 1e-8],
     lambda torch, ps: torch.optim.SGD(ps, lr=0.1)),
    ("momentum", "momentum", [0.05, 0.9, 0.9, 0.999, 1e-8],
     lambda torch, ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0)),
    ("rmsprop", "rmsprop", [0.01, 0.9, 0.9, 0.95, 1e-8],
     lambda torch, ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.95, eps=1e-8)),
    ("rmsprop-eps", "rmsprop", [0.01, 0.9, 0.9, 0.99, 1e-3],
     lambda torch, ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.99, eps=1e-3)),
    ("adam-defaults", "adam", [0.001, 0.9, 0.9, 0.999, 1e-8],
     lambda torch, ps: torch.optim.Adam(ps)),
    ("adam", "adam", [0.02, 0.9, 0.8, 0.99, 1e-4],
     lambda torch, ps: torch.optim.Adam(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-4)),
]


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("case,name,hyper,make_torch", CASES, ids=[c[0] for c in CASES])
def test_optimizer_matches_torch(torch, module, case, name, hyper, make_torch):
    theta0 = np.random.default_rng(0).normal(size=P)
    grads = gradients(1)
    expected = run_torch(torch, make_torch, theta0, grads)
    actual = run(module, OPTIMIZERS.index(name), hyper, theta0, grads)
    for step, (a, e) in enumerate(zip(actual, expected), start=1):
        diff = np.linalg.norm(a - e) / np.linalg.norm(e - theta0)
        assert diff <= 1e-12, f"{case} step {step}: relative difference {diff:.2e} of the update"


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0], ids=["strong", "mild", "inactive"])
def test_norm_clipping_matches_torch(torch, module, max_norm):
    g = np.random.default_rng(2).normal(size=P)            # ‖g‖ ≈ 6.4
    tensor = torch.tensor(g, dtype=torch.float64, requires_grad=True)
    tensor.grad = torch.tensor(g, dtype=torch.float64)
    torch_norm = torch.nn.utils.clip_grad_norm_([tensor], max_norm)
    grad = g.copy()
    norm = module.clip_gradient(grad, CLIP_NORM, max_norm)
    assert norm == pytest.approx(float(torch_norm), rel=1e-13)
    np.testing.assert_allclose(grad, tensor.grad.numpy(), rtol=1e-13, atol=0)
    if max_norm < norm:
        assert np.linalg.norm(grad) < max_norm
    else:
        assert np.array_equal(grad, g)


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
def test_value_clipping_matches_torch(torch, module):
    g = np.random.default_rng(3).normal(size=P)
    tensor = torch.tensor(g, dtype=torch.float64, requires_grad=True)
    tensor.grad = torch.tensor(g, dtype=torch.float64)
    torch.nn.utils.clip_grad_value_([tensor], 0.4)
    grad = g.copy()
    module.clip_gradient(grad, CLIP_VALUE, 0.4)
    assert np.array_equal(grad, tensor.grad.numpy())
    assert (np.abs(g) > 0.4).any()
