"""Gradient clipping and the optimizers as kernels: the twin of
``fastrnn.reference.optim`` (read that module for the formulas)."""
import math

import numpy as np

from fastrnn._codes import ADAGRAD, ADAM, CLIP_NORM, CLIP_VALUE, MOMENTUM, RMSPROP, SGD
from fastrnn._jit import kernel


@kernel
def sum_of_squares(v):
    """Σ v_p², in float64 whatever v's dtype, in four interleaved partial sums: a single running sum is one
    long chain of dependent additions, which without fastmath LLVM may not
    split; four independent ones fill a vector register. The order is fixed,
    so the result is the same on every run."""
    s0 = s1 = s2 = s3 = 0.0
    n4 = v.shape[0] - v.shape[0] % 4
    for p in range(0, n4, 4):
        x0, x1, x2, x3 = float(v[p]), float(v[p + 1]), float(v[p + 2]), float(v[p + 3])
        s0 += x0 * x0
        s1 += x1 * x1
        s2 += x2 * x2
        s3 += x3 * x3
    for p in range(n4, v.shape[0]):
        x0 = float(v[p])
        s0 += x0 * x0
    return (s0 + s1) + (s2 + s3)


@kernel
def clip_gradient(grad, clip_mode, clip):
    """Clip in place; return the global L2 norm of the gradient before clipping."""
    norm = math.sqrt(sum_of_squares(grad))
    if clip_mode == CLIP_NORM and norm > clip:
        scale = grad.dtype.type(clip / (norm + 1e-6))
        for p in range(grad.shape[0]):
            grad[p] *= scale
    elif clip_mode == CLIP_VALUE:
        bound = grad.dtype.type(clip)
        for p in range(grad.shape[0]):
            grad[p] = min(max(grad[p], -bound), bound)
    return norm


@kernel
def optimizer_step(theta, grad, optimizer, hyper, state, step, previous):
    """One update of theta in place, with the optimizer's state. Returns
    whether theta and the state stayed finite; if not, both (and the step
    counter) are put back as they were, from ``previous`` (3, P).

    The old values are saved in the same pass that updates them, and
    finiteness is tested as x·0 ≠ 0 (true exactly for inf and nan), or-ed
    over the vector, so the loops still vectorise."""
    real = theta.dtype.type                   # float32 parameters update in float32
    lr, mu, beta1, beta2, eps = (real(hyper[0]), real(hyper[1]), real(hyper[2]),
                                 real(hyper[3]), real(hyper[4]))
    one, zero = real(1.0), real(0.0)
    n = theta.shape[0]
    if grad.shape[0] != n or state.shape[0] != 2 or state.shape[1] != n \
            or previous.shape[0] != 3 or previous.shape[1] != n or hyper.shape[0] != 5:
        raise ValueError("optimizer_step: expected theta, grad (P,), state (2, P), "
                         "previous (3, P), hyper (5,)")
    if optimizer < SGD or optimizer > ADAM:
        raise ValueError("optimizer_step: unknown optimizer code")
    step[0] += 1
    old_theta, old_0, old_1 = previous[0], previous[1], previous[2]
    bad = False
    if optimizer == SGD:
        for p in range(n):
            old_theta[p] = theta[p]
            theta[p] -= lr * grad[p]
            bad |= theta[p] * zero != zero
    elif optimizer == MOMENTUM:
        v = state[0]
        for p in range(n):
            old_theta[p] = theta[p]
            old_0[p] = v[p]
            v[p] = v[p] * mu + grad[p]
            theta[p] -= lr * v[p]
            bad |= theta[p] * zero + v[p] * zero != zero
    elif optimizer == ADAGRAD:
        s = state[0]
        for p in range(n):
            old_theta[p] = theta[p]
            old_0[p] = s[p]
            s[p] += grad[p] * grad[p]
            theta[p] -= lr * grad[p] / np.sqrt(s[p] + eps)
            bad |= theta[p] * zero + s[p] * zero != zero
    elif optimizer == RMSPROP:
        s = state[0]
        for p in range(n):
            old_theta[p] = theta[p]
            old_0[p] = s[p]
            s[p] = s[p] * beta2 + (one - beta2) * (grad[p] * grad[p])
            theta[p] -= lr * grad[p] / (np.sqrt(s[p]) + eps)
            bad |= theta[p] * zero + s[p] * zero != zero
    elif optimizer == ADAM:
        m, v = state[0], state[1]
        t = step[0]
        step_size = real(lr / (one - beta1 ** t))
        correction2 = real(math.sqrt(one - beta2 ** t))
        for p in range(n):
            old_theta[p] = theta[p]
            old_0[p] = m[p]
            old_1[p] = v[p]
            m[p] = m[p] * beta1 + (one - beta1) * grad[p]
            v[p] = v[p] * beta2 + (one - beta2) * (grad[p] * grad[p])
            theta[p] -= step_size * (m[p] / (np.sqrt(v[p]) / correction2 + eps))
            bad |= theta[p] * zero + m[p] * zero + v[p] * zero != zero
    else:
        raise ValueError("optimizer_step: unknown optimizer code")
    if not bad:
        return True
    for p in range(n):
        theta[p] = old_theta[p]
    if optimizer != SGD:
        for p in range(n):
            state[0, p] = old_0[p]
    if optimizer == ADAM:
        for p in range(n):
            state[1, p] = old_1[p]
    step[0] -= 1
    return False
