"""Gradient clipping and the optimizers, on the flat parameter vector.

All parameters live in one vector ``theta`` (``fastrnn._layout`` says
where each array sits), so clipping and every optimizer are elementwise
over plain vectors. Twin of ``fastrnn.kernels.optim``.

Optimizers, with ``hyper = [lr, momentum, beta1, beta2, eps]``; ``state`` is
a (2, P) array of zeros at the start, ``step`` a one-element int64 counter.
An unknown optimizer code is an error, never a silent default:

* 0 ``sgd``:       θ -= lr g                                   (the notes)
* 1 ``momentum``:  v = μ v + g;  θ -= lr v                     (torch.optim.SGD)
* 2 ``adagrad``:   s += g²;  θ -= lr g / √(s + eps)            (min-char-rnn)
* 3 ``rmsprop``:   s = β2 s + (1 - β2) g²;  θ -= lr g / (√s + eps)   (torch, alpha = β2)
* 4 ``adam``:      m = β1 m + (1 - β1) g;  v = β2 v + (1 - β2) g²;
                   θ -= (lr / (1 - β1ᵗ)) m / (√v / √(1 - β2ᵗ) + eps)   (torch.optim.Adam)
"""
import numpy as np

from fastrnn._codes import ADAGRAD, ADAM, CLIP_NORM, CLIP_VALUE, MOMENTUM, RMSPROP, SGD


def clip_gradient(grad, clip_mode, clip):
    """Clip in place; return the global L2 norm of the gradient before clipping.

    ``norm``: scale the whole vector by clip / (‖g‖ + 1e-6) when ‖g‖ > clip
    (torch.nn.utils.clip_grad_norm_); ``value``: clamp each entry to ±clip."""
    norm = np.sqrt(np.dot(grad.astype(np.float64), grad))     # summed in float64
    if clip_mode == CLIP_NORM and norm > clip:
        grad *= grad.dtype.type(clip / (norm + 1e-6))
    elif clip_mode == CLIP_VALUE:
        bound = grad.dtype.type(clip)
        np.clip(grad, -bound, bound, out=grad)
    return norm


def optimizer_step(theta, grad, optimizer, hyper, state, step, previous):
    """One update of theta in place, with the optimizer's state. Returns
    whether theta and the state stayed finite; if not, both (and the step
    counter) are put back as they were, from ``previous`` (3, P)."""
    if optimizer not in (SGD, MOMENTUM, ADAGRAD, RMSPROP, ADAM):
        raise ValueError(f"optimizer_step: unknown optimizer code {optimizer}")
    lr, mu, beta1, beta2, eps = hyper.astype(theta.dtype)    # float32 updates in float32
    previous[0] = theta
    previous[1:] = state
    step[0] += 1
    if optimizer == SGD:
        theta -= lr * grad
    elif optimizer == MOMENTUM:
        v = state[0]
        v *= mu
        v += grad
        theta -= lr * v
    elif optimizer == ADAGRAD:
        s = state[0]
        s += grad * grad
        theta -= lr * grad / np.sqrt(s + eps)
    elif optimizer == RMSPROP:
        s = state[0]
        s *= beta2
        s += (1.0 - beta2) * (grad * grad)
        theta -= lr * grad / (np.sqrt(s) + eps)
    elif optimizer == ADAM:
        m, v = state[0], state[1]
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        v += (1.0 - beta2) * (grad * grad)
        t = step[0]
        step_size = lr / (1.0 - beta1 ** t)
        denom = np.sqrt(v) / np.sqrt(1.0 - beta2 ** t) + eps
        theta -= step_size * (m / denom)
    else:
        raise ValueError(f"optimizer_step: unknown optimizer code {optimizer}")
    if np.isfinite(theta).all() and np.isfinite(state).all():
        return True
    theta[:] = previous[0]
    state[:] = previous[1:]
    step[0] -= 1
    return False
