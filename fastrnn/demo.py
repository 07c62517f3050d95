"""The assignment of the lecture notes, run and explained.

Simple RNN, k = 4 inputs, d = 3 hidden units, T = 3 steps, tanh, softmax
output; inputs x_1..x_3 = one-hot 0, 1, 2 and targets y_1..y_3 = one-hot
1, 2, 3 (predict the next symbol). Forward values, loss and every gradient
from both backends, how far apart they are, and what each took; then
training until the network predicts the shifted sequence, on both backends.
"""
import time

import numpy as np

from fastrnn._cliutil import SlowNote
from fastrnn.estimator import FastRNN
from fastrnn.functional import forward, loss_and_grad
from fastrnn.params import init_params

TRAIN_EPOCHS = 200
TRAIN_REPEAT = 5

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
    """Print the toy of the notes, computed by both backends, then train it
    (:func:`run_training`). Returns the largest relative difference between
    the backends."""
    worst = run_gradients(seed, repeat, out)
    out("")
    return max(worst, run_training(seed, out=out))


def run_gradients(seed=0, repeat=200, out=print):
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
    with SlowNote("(compiling the kernels: the first run only, a few seconds)", out):
        for backend in ("numpy", "numba"):
            probs, h_last, hidden = forward(params, TOY_X, backend=backend, return_hidden=True)
            loss, grads, dh0 = loss_and_grad(params, TOY_X, TOY_Y, backend=backend,
                                             return_dh0=True)
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


def _parameter_difference(a, b):
    return max(_relative_difference(a[key], b[key]) for key in b)


def run_training(seed=0, epochs=TRAIN_EPOCHS, repeat=TRAIN_REPEAT, out=print):
    """Train FastRNN(n_hidden=3) on the toy until it predicts [1 2 3]; time
    the same fit on both backends. Returns the largest relative difference
    of their final parameters."""
    targets = TOY_Y.argmax(axis=1)
    settings = dict(n_hidden=3, epochs=epochs, random_state=seed)
    out(f"Training: FastRNN(n_hidden=3, epochs={epochs}, random_state={seed}).fit(X, y) with "
        f"y = {targets}, the targets")
    out("as class ids: plain SGD, learning rate 0.1, one update per epoch on the whole "
        "sequence, starting")
    out("from the parameters above. After each epoch:")
    # Epoch by epoch (warm_start continues where the last call stopped; the
    # parameters are those of a single fit), to watch the predictions. Epoch
    # 0 is the start: the parameters above (FastRNN draws them the same way).
    with SlowNote("(compiling the training kernels: the first run only, up to a minute)", out):
        FastRNN(**dict(settings, epochs=1)).fit(TOY_X, targets)
    model = FastRNN(**dict(settings, epochs=1, warm_start=True))
    report = {0, 1, 2, 5, 10, epochs} | set(range(10, epochs + 1, 10) if epochs <= 100 else
                                            range(20, epochs + 1, 20))
    out("    epoch   loss      predicts    p(correct next symbol) at t=1, 2, 3")
    steady_from = None
    for epoch in range(epochs + 1):
        if epoch:
            model.fit(TOY_X, targets)
            probs = model.predict_proba(TOY_X)
        else:
            probs = forward(init_params(4, 3, random_state=seed), TOY_X)[0]
        predicted = probs.argmax(axis=1)
        right = bool((predicted == targets).all())
        steady_from = (epoch if steady_from is None else steady_from) if right else None
        if epoch in report:
            p_right = probs[np.arange(3), targets]
            out(f"    {epoch:>5}   {-np.log(p_right).sum():7.4f}   {str(predicted):<10}  "
                + "  ".join(f"{p:.3f}" for p in p_right))
    final = model.predict(TOY_X)
    out(f"  Final predictions: {final}  (targets {targets}: "
        f"{'the shifted sequence' if (final == targets).all() else 'NOT YET'})")
    if steady_from is not None:
        out(f"  It predicts the shifted sequence from epoch {steady_from} on.")
    out("")

    fitted, timings = {}, {}
    for backend in ("numba", "numpy"):
        FastRNN(**dict(settings, epochs=1, backend=backend)).fit(TOY_X, targets)   # warm-up
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fitted[backend] = FastRNN(**dict(settings, backend=backend)).fit(TOY_X, targets)
            times.append(time.perf_counter() - start)
        timings[backend] = float(np.median(times))
    out(f"Time for the {epochs} epochs, one fit call each (median of {repeat}, compilation "
        "excluded):")
    for backend, seconds in timings.items():
        out(f"    {backend:<6} {seconds * 1e3:9.2f} ms")
    diff = _parameter_difference(fitted["numba"].params_, fitted["numpy"].params_)
    walk = _parameter_difference(model.params_, fitted["numba"].params_)
    out(f"  numba is {timings['numpy'] / timings['numba']:.1f}x the speed of numpy.")
    out(f"  Final parameters, numba vs numpy: largest relative difference {diff:.2e} "
        f"(bound 1e-12: {'agree' if diff <= 1e-12 else 'DISAGREE'})")
    out(f"  The epoch-by-epoch run above vs one fit call: {walk:.2e}")
    return max(diff, walk)
