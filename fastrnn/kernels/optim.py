"""Gradient clipping and the optimizers as kernels: the twin of
``fastrnn.reference.optim`` (read that module for the formulas)."""
import math

from fastrnn._codes import ADAGRAD, CLIP_NORM, CLIP_VALUE, MOMENTUM, RMSPROP, SGD
from fastrnn._jit import kernel


@kernel
def sum_of_squares(v):
    """Σ v_p², in four interleaved partial sums: a single running sum is one
    long chain of dependent additions, which without fastmath LLVM may not
    split; four independent ones fill a vector register. The order is fixed,
    so the result is the same on every run."""
    s0 = s1 = s2 = s3 = 0.0
    n4 = v.shape[0] - v.shape[0] % 4
    for p in range(0, n4, 4):
        s0 += v[p] * v[p]
        s1 += v[p + 1] * v[p + 1]
        s2 += v[p + 2] * v[p + 2]
        s3 += v[p + 3] * v[p + 3]
    for p in range(n4, v.shape[0]):
        s0 += v[p] * v[p]
    return (s0 + s1) + (s2 + s3)


@kernel
def clip_gradient(grad, clip_mode, clip):
    """Clip in place; return the global L2 norm of the gradient before clipping."""
    norm = math.sqrt(sum_of_squares(grad))
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
