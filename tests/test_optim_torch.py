"""The optimizers and the norm clipping of fastrnn, both twins, against
torch.optim and torch.nn.utils on random float64 vectors (skipped without
torch). adagrad has no torch counterpart here: fastrnn's is min-char-rnn's
θ -= lr g / √(s + eps), eps under the root, where torch.optim.Adagrad adds
eps outside it; test_training_twins.py checks it against the formula.
"""
import numpy as np
import pytest

from fastrnn._codes import ADAM, CLIP_NORM, CLIP_VALUE, MOMENTUM, RMSPROP, SGD
from fastrnn.kernels import optim as kernel_optim
from fastrnn.reference import optim as reference_optim

torch = pytest.importorskip("torch")

TWINS = [kernel_optim, reference_optim]
TWIN_IDS = ["kernel", "reference"]
P = 41
N_STEPS = 12


def gradients(seed):
    rng = np.random.default_rng(seed)
    # Varied magnitudes, so the adaptive optimizers' state matters.
    return [rng.normal(size=P) * rng.choice([1e-3, 0.1, 1.0, 5.0], size=P)
            for _ in range(N_STEPS)]


def run_torch(make_optimizer, theta0, grads):
    param = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    opt = make_optimizer([param])
    trajectory = []
    for g in grads:
        opt.zero_grad()
        param.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        trajectory.append(param.detach().numpy().copy())
    return np.array(trajectory)


def run_fastrnn(module, optimizer, hyper, theta0, grads):
    theta = theta0.copy()
    state = np.zeros((2, P))
    step = np.zeros(1, dtype=np.int64)
    trajectory = []
    for g in grads:
        module.optimizer_step(theta, g.copy(), optimizer, np.array(hyper, dtype=float),
                              state, step)
        trajectory.append(theta.copy())
    return np.array(trajectory)


# (name, fastrnn code, [lr, momentum, beta1, beta2, eps], torch optimizer factory)
CASES = [
    ("sgd", SGD, [0.1, 0.9, 0.9, 0.999, 1e-8],
     lambda ps: torch.optim.SGD(ps, lr=0.1)),
    ("momentum", MOMENTUM, [0.05, 0.9, 0.9, 0.999, 1e-8],
     lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    ("rmsprop", RMSPROP, [0.01, 0.9, 0.9, 0.95, 1e-8],
     lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.95, eps=1e-8)),
    ("rmsprop-eps", RMSPROP, [0.01, 0.9, 0.9, 0.99, 1e-3],
     lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.99, eps=1e-3)),
    ("adam-defaults", ADAM, [0.001, 0.9, 0.9, 0.999, 1e-8],
     lambda ps: torch.optim.Adam(ps)),
    ("adam", ADAM, [0.02, 0.9, 0.8, 0.99, 1e-4],
     lambda ps: torch.optim.Adam(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-4)),
]


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("name,optimizer,hyper,make_torch", CASES, ids=[c[0] for c in CASES])
def test_optimizer_matches_torch(module, name, optimizer, hyper, make_torch):
    theta0 = np.random.default_rng(0).normal(size=P)
    grads = gradients(1)
    expected = run_torch(make_torch, theta0, grads)
    actual = run_fastrnn(module, optimizer, hyper, theta0, grads)
    for step, (a, e) in enumerate(zip(actual, expected), start=1):
        diff = np.linalg.norm(a - e) / np.linalg.norm(e - theta0)
        assert diff <= 1e-12, f"{name} step {step}: relative difference {diff:.2e} of the update"


@pytest.mark.parametrize("module", TWINS, ids=TWIN_IDS)
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0], ids=["strong", "mild", "inactive"])
def test_norm_clipping_matches_torch(module, max_norm):
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
def test_value_clipping_matches_torch(module):
    g = np.random.default_rng(3).normal(size=P)
    tensor = torch.tensor(g, dtype=torch.float64, requires_grad=True)
    tensor.grad = torch.tensor(g, dtype=torch.float64)
    torch.nn.utils.clip_grad_value_([tensor], 0.4)
    grad = g.copy()
    module.clip_gradient(grad, CLIP_VALUE, 0.4)
    assert np.array_equal(grad, tensor.grad.numpy())
    assert (np.abs(g) > 0.4).any()
