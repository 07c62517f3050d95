"""The assignment of the lecture notes, run and explained.

Simple RNN, k = 4 inputs, d = 3 hidden units, T = 3 steps, tanh, softmax
output; inputs x_1..x_3 = one-hot 0, 1, 2 and targets y_1..y_3 = one-hot
1, 2, 3 (predict the next symbol). Forward values, loss and every gradient
from both backends, how far apart they are, and what each took.
"""
import time

import numpy as np

from fastrnn.functional import forward, loss_and_grad
from fastrnn.params import init_params

TOY_X = np.eye(4)[[0, 1, 2]]        # x_1, x_2, x_3 as rows: shape (T, k) = (3, 4)
TOY_Y = np.eye(4)[[1, 2, 3]]        # y_1, y_2, y_3: the next symbol, one-hot


def _median_seconds(func, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _relative_difference(a, b):
    scale = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale else float(np.linalg.norm(a - b))


def _matrix(name, array, indent="    "):
    text = np.array2string(np.atleast_1d(array), precision=6, suppress_small=False,
                           floatmode="fixed", max_line_width=100)
    lines = text.splitlines()
    pad = " " * (len(name) + 3)
    return "\n".join([f"{indent}{name} = {lines[0]}"] + [f"{indent}{pad}{line}" for line in lines[1:]])


def run_assignment(seed=0, repeat=200, out=print):
    """Print the toy of the notes, computed by both backends."""
    params = init_params(4, 3, random_state=seed)
    out("The assignment of the lecture notes: a simple RNN, k=4, d=3, T=3, tanh, softmax.")
    out(f"Parameters: fastrnn.init_params(4, 3, random_state={seed}) "
        "(uniform in [-1/sqrt(d), 1/sqrt(d)], biases 0)")
    out("")
    out("Inputs and targets (one row per time step):")
    out(_matrix("X", TOY_X))
    out(_matrix("Y", TOY_Y))
    out("")
    out("Forward pass: a_t = W_H h_{t-1} + W_X x_t + b_h,  h_t = tanh(a_t),  "
        "y^_t = softmax(W_Y h_t + b_y)")
    results = {}
    for backend in ("numpy", "numba"):
        probs, h_last, hidden = forward(params, TOY_X, backend=backend, return_hidden=True)
        loss, grads, dh0 = loss_and_grad(params, TOY_X, TOY_Y, backend=backend, return_dh0=True)
        results[backend] = dict(probs=probs, hidden=hidden, loss=loss, dh0=dh0, **grads)
    ref = results["numpy"]
    for t in range(3):
        out(f"  t={t + 1}:")
        out(_matrix("h_t ", ref["hidden"][t], "    "))
        out(_matrix("y^_t", ref["probs"][t], "    "))
    out("")
    out(f"Loss  L = -sum_t sum_c y_tc log y^_tc = {ref['loss']:.12f}")
    out("")
    out("Gradients by backpropagation through time:")
    for key in ("W_x", "W_h", "b_h", "W_y", "b_y", "dh0"):
        label = "dL/dh0" if key == "dh0" else f"dL/d{key}"
        out(_matrix(label, ref[key]))
    out("")
    out("Numba kernels vs NumPy reference (normwise relative difference, bound 1e-12):")
    worst = 0.0
    for key in ("probs", "hidden", "W_x", "W_h", "b_h", "W_y", "b_y", "dh0"):
        diff = _relative_difference(results["numba"][key], ref[key])
        worst = max(worst, diff)
        out(f"    {key:<7} {diff:.2e}")
    loss_diff = abs(results["numba"]["loss"] - ref["loss"]) / abs(ref["loss"])
    worst = max(worst, loss_diff)
    out(f"    {'loss':<7} {loss_diff:.2e}")
    out(f"  largest: {worst:.2e}  ({'agree' if worst <= 1e-12 else 'DISAGREE'})")
    out("")
    out(f"Time for one loss_and_grad call (median of {repeat}):")
    timings = {backend: _median_seconds(lambda: loss_and_grad(params, TOY_X, TOY_Y, backend=backend),
                                        repeat) for backend in ("numpy", "numba")}
    for backend, seconds in timings.items():
        out(f"    {backend:<6} {seconds * 1e6:9.1f} us")
    out(f"  numba is {timings['numpy'] / timings['numba']:.1f}x the speed of numpy "
        "(both times include input validation)")
    return worst
