"""The assignment of the lecture notes, run and explained.

Simple RNN, k = 4 inputs, d = 3 hidden units, T = 3 steps, tanh, softmax
output; inputs x_1..x_3 = one-hot 0, 1, 2 and targets y_1..y_3 = one-hot
1, 2, 3 (predict the next symbol). The initial weights (printed, or read
from the student's own file so they can check their numbers), every a_t,
h_t and ŷ_t, the loss and every gradient from both backends, how far apart
they are and what each took; then training until the network predicts the
shifted sequence, on both backends.
"""
import os
import time
import zipfile

import numpy as np

from fastrnn._modelfile import _CORRUPT
from fastrnn.cli._util import CLIError, SlowNote, time_calls
from fastrnn.estimator import FastRNN
from fastrnn.functional import forward, loss_and_grad
from fastrnn.params import init_params

TRAIN_EPOCHS = 200
TRAIN_REPEAT = 5
LEARNING_RATE = 0.1

TOY_X = np.eye(4)[[0, 1, 2]]        # x_1, x_2, x_3 as rows: shape (T, k) = (3, 4)
TOY_Y = np.eye(4)[[1, 2, 3]]        # y_1, y_2, y_3: the next symbol, one-hot

# fastrnn's keys, with the notes' names.
NOTES_NAMES = {"W_x": "W_X", "W_h": "W_H", "b_h": "b_h", "W_y": "W_Y", "b_y": "b_y"}
# The most a --params file may unpack to (d = 1000 takes 8 MB).
MAX_PARAMS_BYTES = 2**26
COMPILE_NOTE = ("(compiling the kernels: the first run only; measured 10 to 40 s on a 2-core "
                "machine, depending on how busy it is. Later runs load them from Numba's "
                "cache.)")


def _relative_difference(a, b):
    scale = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale else float(np.linalg.norm(a - b))


def _matrix(name, array, indent="    "):
    text = np.array2string(np.atleast_1d(array), precision=6, suppress_small=False,
                           floatmode="fixed", max_line_width=100)
    lines = text.splitlines()
    pad = " " * (len(name) + 3)
    return "\n".join([f"{indent}{name} = {lines[0]}"] + [f"{indent}{pad}{line}" for line in lines[1:]])


def read_params(path):
    """A student's initial weights from an .npz file: the arrays W_X (or
    W_x) (d, 4), W_H (d, d), b_h (d,), W_Y (4, d), b_y (4,), for any d."""
    if not os.path.isfile(path):
        raise CLIError(f"--params {path}: no such file")
    try:
        # The file opened here, not by np.load, which leaves its own handle
        # open when the archive is damaged.
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise ValueError("it is not a zip archive, as np.savez writes")
            f.seek(0)
            with zipfile.ZipFile(f) as archive:     # sizes as declared, before inflating
                unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_PARAMS_BYTES:
                raise ValueError(f"its arrays would take {unpacked:,} bytes; the "
                                 f"assignment's weights take far less")
            f.seek(0)
            with np.load(f, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
    except _CORRUPT as exc:
        raise CLIError(f"--params {path}: not a NumPy .npz file ({exc})") from None
    params = {}
    for key, notes in NOTES_NAMES.items():
        found = [name for name in (notes, key) if name in arrays]
        if not found:
            raise CLIError(f"--params {path}: no array {notes} (the file has "
                           f"{sorted(arrays) or 'no arrays'})")
        if arrays[found[0]].dtype.kind not in "iuf":
            raise CLIError(f"--params {path}: {found[0]} holds {arrays[found[0]].dtype} "
                           f"values; expected numbers")
        params[key] = np.asarray(arrays[found[0]], dtype=np.float64)
    d = params["W_h"].shape[0] if params["W_h"].ndim == 2 else -1
    expected = {"W_x": (d, 4), "W_h": (d, d), "b_h": (d,), "W_y": (4, d), "b_y": (4,)}
    for key, shape in expected.items():
        if d < 1 or params[key].shape != shape:
            raise CLIError(f"--params {path}: {NOTES_NAMES[key]} has shape {params[key].shape}; "
                           f"the assignment needs W_X (d, 4), W_H (d, d), b_h (d,), W_Y (4, d), "
                           f"b_y (4,)")
        if not np.all(np.isfinite(params[key])):
            raise CLIError(f"--params {path}: {NOTES_NAMES[key]} holds non-finite values")
    return params


def run_assignment(seed=0, repeat=200, out=print, params=None):
    """Print the toy of the notes, computed by both backends, then train it
    (:func:`run_training`). Returns the largest relative difference between
    the backends."""
    worst = run_gradients(seed, repeat, out, params)
    out("")
    return max(worst, run_training(seed, out=out, params=params))


def run_gradients(seed=0, repeat=200, out=print, params=None):
    """Print the toy of the notes, computed by both backends."""
    d = 3 if params is None else params["W_h"].shape[0]
    out(f"The assignment of the lecture notes: a simple RNN, k=4, d={d}, T=3, tanh, softmax.")
    if params is None:
        params = init_params(4, 3, random_state=seed)
        out(f"Initial weights: fastrnn.init_params(4, 3, random_state={seed}) (uniform in "
            f"[-1/sqrt(d), 1/sqrt(d)], biases 0); use --params FILE.npz for your own:")
    else:
        out("Initial weights: from your file:")
    for key, notes in NOTES_NAMES.items():
        out(_matrix(notes, params[key]))
    out("")
    out("Inputs and targets (one row per time step):")
    out(_matrix("X", TOY_X))
    out(_matrix("Y", TOY_Y))
    out("")
    out("Forward pass: a_t = W_H h_{t-1} + W_X x_t + b_h,  h_t = tanh(a_t),  "
        "y^_t = softmax(W_Y h_t + b_y)")
    results = {}
    with SlowNote(COMPILE_NOTE, out):
        for backend in ("numpy", "numba"):
            probs, h_last, hidden = forward(params, TOY_X, backend=backend, return_hidden=True)
            loss, grads, dh0 = loss_and_grad(params, TOY_X, TOY_Y, backend=backend,
                                             return_dh0=True)
            results[backend] = dict(probs=probs, hidden=hidden, loss=loss, dh0=dh0, **grads)
    ref = results["numpy"]
    h_prev = np.zeros(d)
    for t in range(3):
        a_t = params["W_h"] @ h_prev + params["W_x"] @ TOY_X[t] + params["b_h"]
        h_prev = ref["hidden"][t]
        out(f"  t={t + 1}:")
        out(_matrix("a_t ", a_t, "    "))
        out(_matrix("h_t ", ref["hidden"][t], "    "))
        out(_matrix("y^_t", ref["probs"][t], "    "))
    out("")
    out(f"Loss  L = -sum_t sum_c y_tc log y^_tc = {ref['loss']:.12f}")
    out("")
    out("Gradients by backpropagation through time:")
    for key in ("W_x", "W_h", "b_h", "W_y", "b_y", "dh0"):
        label = "dL/dh_0" if key == "dh0" else f"dL/d{NOTES_NAMES[key]}"
        out(_matrix(label, ref[key]))
    out("")
    out("Numba kernels vs NumPy reference (normwise relative difference, bound 1e-12):")
    worst = 0.0
    for key in ("probs", "hidden", "W_x", "W_h", "b_h", "W_y", "b_y", "dh0"):
        diff = _relative_difference(results["numba"][key], ref[key])
        worst = max(worst, diff)
        out(f"    {NOTES_NAMES.get(key, key):<7} {diff:.2e}")
    loss_diff = abs(results["numba"]["loss"] - ref["loss"]) / abs(ref["loss"])
    worst = max(worst, loss_diff)
    out(f"    {'loss':<7} {loss_diff:.2e}")
    out(f"  largest: {worst:.2e}  ({'agree' if worst <= 1e-12 else 'DISAGREE'})")
    out("")
    out(f"Time for one loss_and_grad call (median of {repeat}):")
    timings = {backend: time_calls(lambda: loss_and_grad(params, TOY_X, TOY_Y, backend=backend),
                                   repeat, warm_up=False).median for backend in ("numpy", "numba")}
    for backend, seconds in timings.items():
        out(f"    {backend:<6} {seconds * 1e6:9.1f} us")
    out(f"  numba is {timings['numpy'] / timings['numba']:.1f}x the speed of numpy "
        "(both times include input validation)")
    return worst


def _parameter_difference(a, b):
    return max(_relative_difference(a[key], b[key]) for key in b)


def _model(settings, params):
    """A FastRNN set to start from ``params`` (the student's weights), or
    from its own (the same as init_params's for the same random_state)."""
    model = FastRNN(**settings)
    if params is None:
        return model
    model.set_params(epochs=1).fit(TOY_X, TOY_Y)         # the fitted attributes of the toy,
    model.params_ = {key: value.copy() for key, value in params.items()}   # then the weights
    model._optimizer_state, model.loss_curve_, model.n_iter_ = None, [], 0
    return model.set_params(epochs=settings["epochs"], warm_start=True)


def run_training(seed=0, epochs=TRAIN_EPOCHS, repeat=TRAIN_REPEAT, out=print, params=None):
    """Train FastRNN on the toy with the notes' plain gradient descent until
    it predicts [1 2 3]; time the same fit on both backends. Returns the
    largest relative difference of their final parameters."""
    targets = TOY_Y.argmax(axis=1)
    d = 3 if params is None else params["W_h"].shape[0]
    settings = dict(n_hidden=d, optimizer="sgd", learning_rate=LEARNING_RATE, epochs=epochs,
                    random_state=seed)
    out(f"Training: FastRNN(n_hidden={d}, optimizer='sgd', learning_rate={LEARNING_RATE}, "
        f"epochs={epochs}, random_state={seed}).fit(X, Y)")
    out("with Y the one-hot targets above: the notes' plain gradient descent, one update per "
        "epoch on the")
    out("whole sequence, starting from the weights above. After each epoch:")
    with SlowNote("(compiling the training kernels: the first run only)", out):
        FastRNN(**dict(settings, epochs=1)).fit(TOY_X, TOY_Y)
    start = params if params is not None else init_params(4, 3, random_state=seed)
    # Epoch by epoch (warm_start continues where the last call stopped; the
    # parameters are those of a single fit), to watch the predictions.
    model = _model(dict(settings, epochs=1), params).set_params(warm_start=True)
    report = {0, 1, 2, 5, 10, epochs} | set(range(10, epochs + 1, 10) if epochs <= 100 else
                                            range(20, epochs + 1, 20))
    out("    epoch   loss      predicts    p(correct next symbol) at t=1, 2, 3")
    steady_from = None
    for epoch in range(epochs + 1):
        if epoch:
            model.fit(TOY_X, TOY_Y)
            probs = model.predict_proba(TOY_X)
        else:
            probs = forward(start, TOY_X)[0]
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
        _model(dict(settings, epochs=1, backend=backend), params).fit(TOY_X, TOY_Y)
        times = []
        for _ in range(repeat):
            trained = _model(dict(settings, backend=backend), params)
            begin = time.perf_counter()
            fitted[backend] = trained.fit(TOY_X, TOY_Y)
            times.append(time.perf_counter() - begin)
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
