"""Ctrl-C during fit (fastrnn._interrupt): never lost, at any data size.

The compiled training runs on a worker thread; the main thread's SIGINT
handler sets a stop flag that the kernels read between updates. fit stops
within about a second whatever the size of an epoch (the checks allow 3 s
for a busy machine), keeps the parameters of its last completed update and
the loss curve of its completed epochs, and then raises KeyboardInterrupt,
so that a caller's own loop stops too. A second Ctrl-C while waiting stops
at once, leaving the model as it was before that fit.

Each scenario runs in a child process that is sent a real SIGINT once its
training has visibly started (it prints progress from fit's report hook).
The child checks its model against a reference training it computes itself
(the same updates, made without interruption) and prints the result; the
stop latencies are measured here, printed (run with -s to see them), and
bounded.
"""
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

from fastrnn import FastRNN, FastRNNRegressor

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="os.kill(SIGINT) ends the process on Windows")

LATENCY = 3.0            # seconds from the signal to the KeyboardInterrupt in the caller
STARTUP = 600            # seconds for a child to import and compile (a cold Numba cache)


class Child:
    """A Python child running ``script`` (``-W error``, unbuffered): its
    output read line by line on threads, each stdout line with the time it
    arrived. Used as a context manager, which kills the child (only it) if a
    check fails before it ended."""

    def __init__(self, script, *args):
        self.process = subprocess.Popen(
            [sys.executable, "-W", "error", "-u", "-c", script, *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.stderr = []
        self.seen = []
        self.readers = [threading.Thread(target=self._read_stdout, daemon=True),
                        threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self.readers:
            reader.start()

    def _read_stdout(self):
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), line.rstrip("\n")))
        self.lines.put((time.monotonic(), None))

    def _read_stderr(self):
        for line in self.process.stderr:
            self.stderr.append(line)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=60)
        for reader in self.readers:
            reader.join(timeout=60)
        self.process.stdout.close()
        self.process.stderr.close()
        return False

    def expect(self, prefix, timeout, accept=None):
        """(arrival time, line) of the next line starting with ``prefix`` (and
        for which ``accept(line)`` holds, if given)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                arrived, line = self.lines.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                pytest.fail(f"no {prefix!r} line from the child within {timeout} s; it printed "
                            f"{self.seen[-5:]}, stderr: {''.join(self.stderr)[-2000:]}")
            if line is None:
                self.process.wait(timeout=60)
                pytest.fail(f"the child ended (exit {self.process.returncode}) before a "
                            f"{prefix!r} line; it printed {self.seen[-5:]}, stderr: "
                            f"{''.join(self.stderr)[-3000:]}")
            self.seen.append(line)
            if line.startswith(prefix) and (accept is None or accept(line)):
                return arrived, line

    def interrupt(self):
        """Send SIGINT (what Ctrl-C sends); returns when it was sent."""
        sent = time.monotonic()
        os.kill(self.process.pid, signal.SIGINT)
        return sent

    def result(self, timeout=300):
        """The JSON the child prints after its checks, on a 'RESULT ' line."""
        _, line = self.expect("RESULT ", timeout)
        self.process.wait(timeout=60)
        for reader in self.readers:
            reader.join(timeout=60)
        assert self.process.returncode == 0, "".join(self.stderr)[-3000:]
        assert "Traceback" not in "".join(self.stderr), "".join(self.stderr)[-3000:]
        return json.loads(line[len("RESULT "):])


def progress_at_least(epochs, updates=1):
    """accept() for 'PROGRESS <epochs done> <updates in the running epoch>'."""
    def accept(line):
        _, e, u = line.split()
        return int(e) >= epochs and (int(e) > epochs or int(u) >= updates)
    return accept


def report_latency(what, seconds):
    print(f"\nCtrl-C latency, {what}: {1000 * seconds:.1f} ms")


# The children's common part: a synthetic text, the progress printer that
# fit's report hook calls, and the checks of an interrupted model.
PRELUDE = textwrap.dedent('''
    import json, os, signal, sys, time
    import numpy as np
    import fastrnn
    from fastrnn import CharVocab, FastRNN

    def emit(*parts):
        print(*parts, flush=True)

    def synthetic_text(n, seed=0):
        """n characters: words of random letters, spaces and punctuation."""
        rng = np.random.default_rng(seed)
        alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz .,\\n"))
        return "".join(alphabet[rng.integers(0, len(alphabet), n)])

    class Progress:
        """fit's report hook: remembers (epochs done, updates done in the
        running epoch) and prints them, at most every 0.1 s."""
        def __init__(self):
            self.last, self.shown = None, 0.0
        def __call__(self, epochs_done, progress, losses):
            self.last = (int(epochs_done), int(progress[1]))
            now = time.monotonic()
            if now - self.shown >= 0.1:
                emit("PROGRESS", *self.last)
                self.shown = now

    def same(a, b):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    def state_of(model):
        return {"n_iter": model.n_iter_, "curve": len(model.loss_curve_),
                "finite": all(bool(np.isfinite(a).all()) for a in model.params_.values()),
                "handler_restored": signal.getsignal(signal.SIGINT) is signal.default_int_handler}

    def finish(result):
        emit("RESULT " + json.dumps(result))
        sys.stdout.flush()
        os._exit(0)                 # an abandoned worker thread may still be running
''')


STOP_IN_AN_EPOCH = PRELUDE + textwrap.dedent('''
    cell, d, n_chars, backend, epochs_asked = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                               sys.argv[4], int(sys.argv[5]))
    text = synthetic_text(n_chars)
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    X, y = ids[:-1], ids[1:]
    settings = dict(cell=cell, n_hidden=d, bptt=25, optimizer="adagrad", random_state=0,
                    backend=backend)
    FastRNN(epochs=1, **settings).fit(X[:300], y[:300], vocab=vocab)   # compiled
    model = FastRNN(epochs=epochs_asked, **settings)
    progress = Progress()
    emit("READY")
    try:
        model._fit(X, y, vocab=vocab, report=progress)
    except KeyboardInterrupt:
        emit("INTERRUPTED")
    else:
        emit("RESULT " + json.dumps({"error": "fit ended without KeyboardInterrupt"}))
        sys.exit(1)
    result = state_of(model)
    epochs, updates = progress.last
    result.update(epochs=epochs, updates=updates,
                  predicts=list(model.predict_proba(X[:40]).shape) == [40, len(vocab)])
    # The same updates without interruption: the completed epochs, then (one
    # sequence, bptt chunks) the first `updates` chunks of the next epoch are
    # one epoch on the first 25 * updates steps.
    reference = FastRNN(epochs=max(epochs, 1), warm_start=True, **settings)
    if epochs:
        reference.fit(X, y, vocab=vocab)
        result["same_curve"] = reference.loss_curve_ == model.loss_curve_
        if updates:
            reference.set_params(epochs=1).fit(X[:25 * updates], y[:25 * updates], vocab=vocab)
        result["same_params"] = same(reference.params_, model.params_)
    else:
        result["same_curve"] = model.loss_curve_ == []
        if updates:
            reference.fit(X[:25 * updates], y[:25 * updates], vocab=vocab)
            result["same_params"] = same(reference.params_, model.params_)
        else:
            initial = fastrnn.init_params(len(vocab), d, cell=cell, random_state=0)
            result["same_params"] = same(initial, model.params_)
    finish(result)
''')


def run_stop_in_an_epoch(cell, d, n_chars, backend="numba", after_epochs=0, epochs=5):
    with Child(STOP_IN_AN_EPOCH, cell, d, n_chars, backend, epochs) as child:
        child.expect("READY", STARTUP)
        child.expect("PROGRESS", 300, accept=progress_at_least(after_epochs))
        time.sleep(0.3)
        sent = child.interrupt()
        arrived, _ = child.expect("INTERRUPTED", 60)
        result = child.result()
    return arrived - sent, result


def check_stopped_model(result, epochs=None):
    assert "error" not in result, result
    assert result["finite"] and result["predicts"] and result["handler_restored"], result
    assert result["n_iter"] == result["curve"] == result["epochs"], result
    if epochs is not None:
        assert result["epochs"] == epochs, result
    assert result["same_curve"], result
    assert result["same_params"], result


@pytest.mark.slow
@pytest.mark.parametrize("cell,d", [("rnn", 128), ("lstm", 64)])
def test_ctrl_c_stops_within_a_long_epoch(cell, d):
    """400 KB of text with bptt=25: an epoch is 16,000 updates (seconds). A
    Ctrl-C in the first epoch stops fit within LATENCY: KeyboardInterrupt
    reaches the caller, the model has the parameters of the last completed
    update (equal, bit for bit, to training those updates alone), no
    completed epoch (n_iter_ 0, an empty loss curve), and predicts."""
    latency, result = run_stop_in_an_epoch(cell, d, 400_000)
    report_latency(f"{cell} d={d}, 400 KB text, within the first epoch", latency)
    assert latency < LATENCY
    check_stopped_model(result, epochs=0)
    assert result["updates"] > 0


@pytest.mark.slow
def test_ctrl_c_after_some_epochs_keeps_them():
    """The same after two or more completed epochs: n_iter_ and loss_curve_
    are those of the completed epochs, params_ those of the last update."""
    latency, result = run_stop_in_an_epoch("rnn", 32, 40_000, after_epochs=2, epochs=1000)
    report_latency("rnn d=32, 40 KB text, after 2+ epochs", latency)
    assert latency < LATENCY
    check_stopped_model(result)
    assert 2 <= result["epochs"] < 1000


@pytest.mark.slow
def test_ctrl_c_with_the_numpy_backend():
    """The reference twin (Python loops on the worker thread) stops as well."""
    latency, result = run_stop_in_an_epoch("rnn", 16, 200_000, backend="numpy")
    report_latency("numpy backend, rnn d=16, 200 KB text", latency)
    assert latency < LATENCY
    check_stopped_model(result, epochs=0)


TINY_EPOCHS = PRELUDE + textwrap.dedent('''
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3, 4, 2)), rng.integers(0, 2, size=(3, 4))
    settings = dict(n_hidden=3, random_state=0)
    FastRNN(epochs=2, **settings).fit(X, y)
    model = FastRNN(epochs=fastrnn._limits.MAX_EPOCHS, **settings)
    progress = Progress()
    emit("READY")
    try:
        model._fit(X, y, report=progress)
    except KeyboardInterrupt:
        emit("INTERRUPTED")
    result = state_of(model)
    result["epochs"], result["updates"] = progress.last
    # one update per epoch: the model is that of a fit of n_iter_ epochs
    reference = FastRNN(epochs=model.n_iter_, **settings).fit(X, y)
    result["same_params"] = same(reference.params_, model.params_)
    result["same_curve"] = reference.loss_curve_ == model.loss_curve_
    result["predicts"] = model.predict(X).shape == (3, 4)
    finish(result)
''')


@pytest.mark.slow
def test_ctrl_c_with_tiny_epochs_stops_at_a_completed_epoch():
    """Thousands of epochs per second, run in blocks of epochs per compiled
    call: the Ctrl-C is not lost between blocks, and the model is exactly
    that of a fit of n_iter_ epochs."""
    with Child(TINY_EPOCHS) as child:
        child.expect("READY", STARTUP)
        child.expect("PROGRESS", 120, accept=progress_at_least(100, 0))
        time.sleep(0.3)
        sent = child.interrupt()
        arrived, _ = child.expect("INTERRUPTED", 60)
        result = child.result()
    report_latency("tiny epochs (10**8 of them)", arrived - sent)
    assert arrived - sent < LATENCY
    assert result["n_iter"] == result["curve"] >= 100
    # an epoch is one update: none is left half done (its update applied but
    # neither counted in n_iter_ nor its loss in loss_curve_)
    assert result["updates"] == 0, result
    assert result["same_params"] and result["same_curve"] and result["predicts"]
    assert result["finite"] and result["handler_restored"]


LOOP_OF_FITS = PRELUDE + textwrap.dedent('''
    text = synthetic_text(100_000)
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    X, y = ids[:-1], ids[1:]
    model = FastRNN(n_hidden=64, bptt=25, optimizer="adagrad", epochs=1, warm_start=True,
                    random_state=0)
    FastRNN(n_hidden=64, bptt=25, epochs=1).fit(X[:300], y[:300], vocab=vocab)   # compiled
    emit("READY")
    completed = 0
    try:
        while True:                          # a user's loop: one epoch per call
            emit("CALL", completed)
            model.fit(X, y, vocab=vocab)
            completed += 1
    except KeyboardInterrupt:
        emit("INTERRUPTED")
    result = state_of(model)
    result["completed"] = completed
    result["predicts"] = list(model.predict(X[:30]).shape) == [30]
    finish(result)
''')


@pytest.mark.slow
def test_ctrl_c_stops_a_loop_of_warm_fits():
    """A Python loop calling fit(epochs=1, warm_start=True) over and over:
    the KeyboardInterrupt reaches the loop within LATENCY (it is not
    swallowed by fit, so the loop ends), and the model keeps one loss per
    completed call and predicts."""
    with Child(LOOP_OF_FITS) as child:
        child.expect("READY", STARTUP)
        child.expect("CALL 2", 300)
        time.sleep(0.2)
        sent = child.interrupt()
        arrived, _ = child.expect("INTERRUPTED", 60)
        result = child.result()
    report_latency("a loop of warm_start fits of 100 KB", arrived - sent)
    assert arrived - sent < LATENCY
    assert result["completed"] >= 2
    assert result["curve"] == result["completed"]
    assert result["finite"] and result["predicts"] and result["handler_restored"]


SECOND_CTRL_C = PRELUDE + textwrap.dedent('''
    # The reference twin on one sequence of 40,000 steps without truncation:
    # one update takes seconds, so both signals arrive during it.
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 20, 40_000), rng.integers(0, 20, 40_000)
    model = FastRNN(cell="lstm", n_hidden=16, backend="numpy", optimizer="sgd", epochs=1,
                    warm_start=True, n_inputs=20, n_outputs=20, random_state=0)
    model.fit(X[:300], y[:300])
    before = {k: a.copy() for k, a in model.params_.items()}
    curve, n_iter = list(model.loss_curve_), model.n_iter_
    model.set_params(epochs=3)

    waited = []
    def report(epochs_done, progress, losses):
        if not waited:
            waited.append(1)
            emit("WAITING")
    emit("READY")
    start = time.monotonic()
    try:
        model._fit(X, y, report=report)
    except KeyboardInterrupt:
        emit("INTERRUPTED")
    result = state_of(model)
    result.update(same_params=same(before, model.params_), same_curve=model.loss_curve_ == curve,
                  same_n_iter=model.n_iter_ == n_iter,
                  predicts=list(model.predict(X[:30]).shape) == [30])
    finish(result)
''')


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_and_leaves_the_model_as_it_was():
    with Child(SECOND_CTRL_C) as child:
        child.expect("READY", STARTUP)
        child.expect("WAITING", 120)
        time.sleep(0.3)
        first = child.interrupt()
        time.sleep(0.3)
        second = child.interrupt()
        arrived, _ = child.expect("INTERRUPTED", 60)
        result = child.result()
    report_latency("the second Ctrl-C", arrived - second)
    assert arrived > second                       # the first alone did not end the update
    assert arrived - second < 1.0
    assert arrived - first < LATENCY
    assert result["same_params"] and result["same_curve"] and result["same_n_iter"], result
    assert result["finite"] and result["predicts"] and result["handler_restored"], result


# ----------------------------------------------------- in this process
def dense_data(B=4, T=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, T, 5)), rng.integers(0, 3, size=(B, T))


def test_fit_off_the_main_thread_runs_normally():
    """No signal handler can be installed there: fit runs directly, leaves the
    main thread's handler alone (also while it runs), warns nothing, and
    gives the main thread's result."""
    X, y = dense_data()
    before = signal.getsignal(signal.SIGINT)
    seen, result = [], {}

    def report(epochs_done, progress, losses):
        seen.append(signal.getsignal(signal.SIGINT))
        seen.append(threading.current_thread() is not threading.main_thread())

    def work():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                model = FastRNN(n_hidden=4, epochs=40, random_state=0, verbose=0)
                result["model"] = model._fit(X, y, report=report)
                result["regressor"] = FastRNNRegressor(n_hidden=4, epochs=5,
                                                       random_state=0).fit(X, y * 1.0)
        except BaseException as exc:               # handed to the test
            result["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    assert "error" not in result, result.get("error")
    assert seen and all(s is before for s in seen[0::2]) and all(seen[1::2])
    assert result["model"].n_iter_ == 40
    assert signal.getsignal(signal.SIGINT) is before
    main = FastRNN(n_hidden=4, epochs=40, random_state=0).fit(X, y)
    assert main.params_.keys() == result["model"].params_.keys()
    for key in main.params_:
        assert np.array_equal(result["model"].params_[key], main.params_[key])
    assert result["model"].loss_curve_ == main.loss_curve_


def test_the_handler_is_installed_during_fit_only():
    X, y = dense_data()
    before = signal.getsignal(signal.SIGINT)
    during = []
    FastRNN(n_hidden=4, epochs=3, random_state=0)._fit(
        X, y, report=lambda *args: during.append(signal.getsignal(signal.SIGINT)))
    assert during and all(h is not before for h in during)
    assert signal.getsignal(signal.SIGINT) is before


def test_handler_restored_after_a_failed_fit():
    X, y = dense_data()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(FloatingPointError):
        FastRNNRegressor(n_hidden=4, optimizer="sgd", learning_rate=1e200, epochs=50,
                         random_state=0).fit(X, y * 1.0)
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(ValueError):
        FastRNN(n_hidden=4, epochs=1).fit(X, y[:, :2])
    assert signal.getsignal(signal.SIGINT) is before


def test_a_callers_own_handler_is_kept():
    """A program with its own SIGINT handler gets it back after fit."""
    X, y = dense_data()
    calls = []

    def mine(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGINT, mine)
    try:
        FastRNN(n_hidden=4, epochs=3, random_state=0).fit(X, y)
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)
    assert calls == []


def test_a_second_ctrl_c_during_the_bookkeeping_leaves_the_model_as_it_was():
    """A second Ctrl-C may land after a compiled call returned, before the
    loss curve counts its epochs (here: raised by the progress report the
    bookkeeping calls). The updates of that call are then not kept: the model
    is left as it was before the fit, never half counted."""
    X, y = dense_data()
    handler = signal.getsignal(signal.SIGINT)
    model = FastRNN(n_hidden=4, epochs=2, random_state=0, warm_start=True).fit(X, y)
    before = {key: value.copy() for key, value in model.params_.items()}
    curve = list(model.loss_curve_)

    def second_ctrl_c(epochs_done, progress, losses):
        if epochs_done > 0:                       # after the call: its epochs are in losses
            raise KeyboardInterrupt

    model.set_params(epochs=5)
    with pytest.raises(KeyboardInterrupt):
        model._fit(X, y, report=second_ctrl_c)
    assert model.loss_curve_ == curve and model.n_iter_ == 2
    for key, value in before.items():
        assert np.array_equal(model.params_[key], value), key
    assert signal.getsignal(signal.SIGINT) is handler


def test_held_interrupt_keeps_a_ctrl_c_for_after_the_block():
    """What fastrnn train uses while it writes the model file: a Ctrl-C in
    the block does not stop it; ``hit`` says it came; the handler is back."""
    from fastrnn._interrupt import HeldInterrupt
    handler = signal.getsignal(signal.SIGINT)
    with HeldInterrupt() as held:
        assert not held.hit
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)                              # the handler runs here
        finished = True
    assert finished and held.hit
    assert signal.getsignal(signal.SIGINT) is handler
