"""Gradient clipping and the optimizers as kernels: the twin of
``fastrnn.reference.optim`` (read that module for the formulas)."""
import math

from fastrnn._codes import ADAGRAD, CLIP_NORM, CLIP_VALUE, MOMENTUM, RMSPROP, SGD
from fastrnn._jit import kernel


@kernel
def clip_gradient(grad, clip_mode, clip):
    """Clip in place; return the global L2 norm of the gradient before clipping."""
    total = 0.0
    for p in range(grad.shape[0]):
        total += grad[p] * grad[p]
    norm = math.sqrt(total)
    if clip_mode == CLIP_NORM and norm > clip:
        scale = clip / (norm + 1e-6)
        for p in range(grad.shape[0]):
            grad[p] *= scale
    elif clip_mode == CLIP_VALUE:
        for p in range(grad.shape[0]):
            grad[p] = min(max(grad[p], -clip), clip)
    return norm


@kernel
def optimizer_step(theta, grad, optimizer, hyper, state, step):
    """One update of theta in place, with the optimizer's state."""
    lr, mu, beta1, beta2, eps = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    step[0] += 1
    n = theta.shape[0]
    if optimizer == SGD:
        for p in range(n):
            theta[p] -= lr * grad[p]
    elif optimizer == MOMENTUM:
        v = state[0]
        for p in range(n):
            v[p] = v[p] * mu + grad[p]
            theta[p] -= lr * v[p]
    elif optimizer == ADAGRAD:
        s = state[0]
        for p in range(n):
            s[p] += grad[p] * grad[p]
            theta[p] -= lr * grad[p] / math.sqrt(s[p] + eps)
    elif optimizer == RMSPROP:
        s = state[0]
        for p in range(n):
            s[p] = s[p] * beta2 + (1.0 - beta2) * (grad[p] * grad[p])
            theta[p] -= lr * grad[p] / (math.sqrt(s[p]) + eps)
    else:
        m, v = state[0], state[1]
        t = step[0]
        step_size = lr / (1.0 - beta1 ** t)
        correction2 = math.sqrt(1.0 - beta2 ** t)
        for p in range(n):
            m[p] = m[p] * beta1 + (1.0 - beta1) * grad[p]
            v[p] = v[p] * beta2 + (1.0 - beta2) * (grad[p] * grad[p])
            theta[p] -= step_size * (m[p] / (math.sqrt(v[p]) / correction2 + eps))
