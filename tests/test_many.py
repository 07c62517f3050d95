"""fastrnn.fit_many: one model per series, fitted on threads (one thread each
inside), the results those of fitting clones one by one, bit for bit; bad
arguments refused; an exception of one fit reaches the caller; Ctrl-C stops
them all (in a child process, within 3 s)."""
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from fastrnn import CharVocab, FastRNN, FastRNNRegressor, fit_many
from fastrnn import _parallel
from fastrnn._many import clone

K = 3


def series(n=5, seed=0, kind="classifier"):
    """n series of different lengths and batch sizes, with their targets."""
    rng = np.random.default_rng(seed)
    Xs, ys = [], []
    for i in range(n):
        B, T = 2 + i % 3, 4 + 2 * i
        X = rng.normal(size=(B, T, K))
        Xs.append(X)
        if kind == "classifier":
            ys.append(rng.integers(0, 3, size=(B, T)))
        else:
            ys.append(np.cumsum(X[..., 0], axis=1) * 0.1)
    return Xs, ys


def same_models(a, b):
    assert type(a) is type(b)
    assert a.get_params() == b.get_params()
    assert a.params_.keys() == b.params_.keys()
    for key in a.params_:
        assert np.array_equal(a.params_[key], b.params_[key]), key
    assert a.loss_curve_ == b.loss_curve_
    assert a.n_iter_ == b.n_iter_


ESTIMATORS = {
    "classifier": FastRNN(n_hidden=4, epochs=6, batch_size=2, random_state=3),
    "classifier-lstm-2-layers": FastRNN(n_hidden=3, cell="lstm", n_layers=2, dropout=0.3,
                                        epochs=4, batch_size=2, random_state=1),
    "regressor": FastRNNRegressor(n_hidden=4, epochs=6, optimizer="momentum", random_state=3),
    "regressor-gru-bidirectional": FastRNNRegressor(n_hidden=3, cell="gru", bidirectional=True,
                                                    epochs=4, random_state=2),
}


@pytest.mark.parametrize("n_jobs", [1, 2, None])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_results_are_those_of_fitting_clones_one_by_one(name, n_jobs):
    estimator = ESTIMATORS[name]
    Xs, ys = series(kind=name.split("-")[0])
    models = fit_many(estimator, Xs, ys, n_jobs=n_jobs)
    assert isinstance(models, list) and len(models) == len(Xs)
    assert len({id(m) for m in models}) == len(models) and estimator not in models
    for model, X, y in zip(models, Xs, ys):
        alone = type(estimator)(**estimator.get_params()).fit(X, y)
        same_models(model, alone)
        assert np.array_equal(model.predict(X), alone.predict(X))
    # the estimator given is a template: left unfitted and unchanged
    assert not hasattr(estimator, "params_")
    assert estimator.get_params() == ESTIMATORS[name].get_params()


def test_models_come_back_in_the_order_of_the_series():
    """Series of very different sizes finish in another order than they
    start; each model is the one of its own series."""
    rng = np.random.default_rng(5)
    Xs = [rng.normal(size=(2, T, K)) for T in (60, 3, 30, 2)]
    ys = [rng.integers(0, 2, size=(2, T)) for T in (60, 3, 30, 2)]
    models = fit_many(FastRNN(n_hidden=3, epochs=20, random_state=0), Xs, ys, n_jobs=2)
    for model, X, y in zip(models, Xs, ys):
        same_models(model, FastRNN(n_hidden=3, epochs=20, random_state=0).fit(X, y))


def test_sample_weights_are_passed_per_series():
    Xs, ys = series(4)
    rng = np.random.default_rng(1)
    weights = [rng.uniform(0.1, 2.0, size=len(X)) for X in Xs]
    weights[1] = rng.uniform(0.1, 2.0, size=Xs[1].shape[:2])          # per step
    estimator = FastRNN(n_hidden=3, epochs=5, random_state=0)
    for n_jobs in (1, 2):
        models = fit_many(estimator, Xs, ys, weights, n_jobs=n_jobs)
        for model, X, y, w in zip(models, Xs, ys, weights):
            same_models(model, clone(estimator).fit(X, y, sample_weight=w))
            # the weights mattered
            assert not np.array_equal(model.params_["W_h"],
                                      clone(estimator).fit(X, y).params_["W_h"])
    # None for one series: no weights there
    weights[2] = None
    models = fit_many(estimator, Xs, ys, sample_weights=weights, n_jobs=2)
    same_models(models[2], clone(estimator).fit(Xs[2], ys[2]))


def test_fit_params_reach_every_fit():
    text = "abcabcabd" * 4
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    Xs, ys = [ids[:-1], ids[1:-1]], [ids[1:], ids[2:]]
    models = fit_many(FastRNN(n_hidden=3, epochs=3, random_state=0), Xs, ys, n_jobs=2,
                      vocab=vocab)
    for model, X, y in zip(models, Xs, ys):
        assert model.vocab_ == vocab
        same_models(model, FastRNN(n_hidden=3, epochs=3, random_state=0).fit(X, y, vocab=vocab))
        assert len(model.sample_text(5, start="a", random_state=0)) == 5


def test_clone_is_a_new_unfitted_estimator_with_the_same_parameters():
    Xs, ys = series(1)
    fitted = FastRNN(n_hidden=3, epochs=2, n_layers=2, random_state=0).fit(Xs[0], ys[0])
    copy = clone(fitted)
    assert type(copy) is FastRNN and copy is not fitted
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "params_")
    regressor = FastRNNRegressor(n_hidden=5, output="last_step")
    assert type(clone(regressor)) is FastRNNRegressor
    assert clone(regressor).get_params() == regressor.get_params()


def test_mismatched_lengths_are_refused():
    Xs, ys = series(3)
    estimator = FastRNN(n_hidden=3, epochs=1)
    with pytest.raises(ValueError, match=r"^ys\b.*3.*2"):
        fit_many(estimator, Xs, ys[:2])
    with pytest.raises(ValueError, match=r"^ys\b"):
        fit_many(estimator, Xs[:2], ys)
    with pytest.raises(ValueError, match=r"^sample_weights\b.*3.*4"):
        fit_many(estimator, Xs, ys, [None] * 4)
    with pytest.raises(ValueError, match=r"^sample_weights\b"):
        fit_many(estimator, Xs, ys, sample_weights=[None], n_jobs=2)


@pytest.mark.parametrize("n_jobs,error", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                          ("2", TypeError), (True, TypeError)])
def test_bad_n_jobs(n_jobs, error):
    Xs, ys = series(2)
    with pytest.raises(error, match=r"^n_jobs\b"):
        fit_many(FastRNN(n_hidden=3, epochs=1), Xs, ys, n_jobs=n_jobs)


def test_no_series_no_models():
    assert fit_many(FastRNN(), [], []) == []


def test_an_exception_in_one_fit_reaches_the_caller():
    """One fit after the other (n_jobs=1): the first error is raised."""
    Xs, ys = series(4)
    ys[2] = ys[2][:, :-1]                                   # one target short
    with pytest.raises(ValueError, match=r"^y\b"):
        fit_many(FastRNN(n_hidden=3, epochs=2, random_state=0), Xs, ys, n_jobs=1)
    rng = np.random.default_rng(0)
    Xs = [rng.normal(size=(2, 4, K)) for _ in range(3)]
    ys = [np.zeros((2, 4)), np.full((2, 4), 1e200), np.zeros((2, 4))]
    with pytest.raises(FloatingPointError, match="^fit: the (loss|gradient) became non-finite"):
        fit_many(FastRNNRegressor(n_hidden=3, optimizer="sgd", epochs=3, random_state=0), Xs,
                 ys, n_jobs=1)


def test_an_invalid_hyperparameter_fails_every_fit_and_is_raised():
    for n_jobs in (1, 2):
        with pytest.raises(ValueError, match=r"^n_layers\b"):
            fit_many(FastRNN(n_layers=0), *series(3), n_jobs=n_jobs)


# On threads, an error of one fit must also stop the fits still running:
# fit_many waited for them (here, 100,000 epochs) before raising. Run in a
# child process, so that a hang fails the test instead of blocking pytest.
STOP_THE_OTHERS = textwrap.dedent('''
    import sys, time
    import numpy as np
    from fastrnn import FastRNN, FastRNNRegressor, fit_many
    rng = np.random.default_rng(0)
    Xs = [rng.normal(size=(4, 50, 3)), rng.normal(size=(2, 5, 3))]
    if sys.argv[1] == "refused":        # the second series' targets are one step short
        estimator = FastRNN(n_hidden=8, epochs=100_000, random_state=0)
        ys = [rng.integers(0, 2, size=(4, 50)), rng.integers(0, 2, size=(2, 4))]
        expected = ValueError
    else:                               # the second series' loss overflows at once
        estimator = FastRNNRegressor(n_hidden=8, epochs=100_000, optimizer="sgd",
                                     learning_rate=1e-3, random_state=0)
        ys = [np.zeros((4, 50)), np.full((2, 5), 1e200)]
        expected = FloatingPointError
    type(estimator)(n_hidden=8, epochs=2).fit(Xs[0], ys[0])                 # compiled
    start = time.monotonic()
    try:
        fit_many(estimator, Xs, ys, n_jobs=2)
    except expected as exc:
        print(f"{time.monotonic() - start:.3f}", exc)
''')


@pytest.mark.parametrize("error", ["refused", "fault"])
def test_an_exception_in_one_fit_stops_the_others(error):
    """One series fails at once (its targets are refused, or its loss
    overflows) while another's fit has 100,000 epochs to run: the error
    reaches the caller within seconds, the running fit stopped after its
    current update."""
    try:
        result = subprocess.run([sys.executable, "-W", "error", "-c", STOP_THE_OTHERS, error],
                                capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("fit_many did not return within 60 s of the error of one fit")
    assert result.returncode == 0, result.stderr[-3000:]
    seconds, message = result.stdout.split(" ", 1)
    assert message.startswith("y:" if error == "refused" else "fit: the"), result.stdout
    assert float(seconds) < 5.0, result.stdout


@pytest.fixture
def chunk_threads(monkeypatch):
    """Make every batch of two or more sequences big enough to be cut into
    chunks on threads (and every fit train on threads), and record how many
    threads fastrnn may use at each run_chunks call."""
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_WORK", 0)
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_FIT_WORK", 0)
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "2")
    seen = []
    real = _parallel.run_chunks

    def recording(task, n_chunks):
        seen.append((threading.current_thread().name, _parallel.num_threads(), n_chunks))
        return real(task, n_chunks)

    monkeypatch.setattr(_parallel, "run_chunks", recording)
    return seen


def test_each_fit_uses_one_thread_inside(chunk_threads):
    """n_jobs threads in all: inside fit_many every fit's chunks run with
    num_threads() == 1 (no oversubscription), while the same fit alone may
    use two; and the results do not depend on it."""
    Xs, ys = series(4)
    estimator = FastRNN(n_hidden=3, epochs=3, batch_size=4, random_state=0)
    alone = [clone(estimator).fit(X, y) for X, y in zip(Xs, ys)]
    assert chunk_threads and all(threads == 2 for _, threads, _ in chunk_threads)
    assert any(n > 1 for _, _, n in chunk_threads)             # batches were cut into chunks
    del chunk_threads[:]
    models = fit_many(estimator, Xs, ys, n_jobs=2)
    assert chunk_threads, "fit_many's fits never ran in chunks"
    assert all(threads == 1 for _, threads, _ in chunk_threads), chunk_threads[:5]
    assert {name for name, _, _ in chunk_threads} != {threading.main_thread().name}
    for model, reference in zip(models, alone):
        same_models(model, reference)
    # and the limit ends with fit_many: this thread may use two again
    assert _parallel.num_threads() == 2


def test_fits_run_in_parallel_on_n_jobs_threads(monkeypatch):
    """Two fits at once with n_jobs=2 (each waits until the other has
    started, which one thread at a time could never do), at most n_jobs."""
    started, running, most = threading.Barrier(2, timeout=30), [0], [0]
    lock = threading.Lock()
    real_fit = FastRNN.fit

    def fit(self, *args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            if len(calls) < 2:
                calls.append(threading.current_thread().name)
                started.wait()
            return real_fit(self, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    calls = []
    monkeypatch.setattr(FastRNN, "fit", fit)
    Xs, ys = series(5)
    fit_many(FastRNN(n_hidden=3, epochs=2, random_state=0), Xs, ys, n_jobs=2)
    assert len(set(calls)) == 2 and threading.main_thread().name not in calls
    assert most[0] == 2


# ---------------------------------------------------------------- Ctrl-C
CTRL_C_CHILD = textwrap.dedent('''
    import json, signal, sys, threading, time
    import numpy as np
    from fastrnn import FastRNN, fit_many

    def emit(*parts):
        print(*parts, flush=True)

    trained = set()

    class Loud(FastRNN):
        """Prints when its training has visibly started (fit's report hook,
        called after every block of epochs) and notes which fits trained."""
        def fit(self, X, y, sample_weight=None, **kwargs):
            def report(epochs_done, progress, losses):
                if epochs_done or progress[1]:
                    if id(self) not in trained:
                        emit("PROGRESS")
                    trained.add(id(self))
            return self._fit(X, y, sample_weight, report=report, **kwargs)

    n_jobs = int(sys.argv[1])
    rng = np.random.default_rng(0)
    Xs = [rng.integers(0, 30, 100_000) for _ in range(4)]
    ys = [rng.integers(0, 30, 100_000) for _ in range(4)]
    settings = dict(n_hidden=64, bptt=25, optimizer="adagrad", random_state=0)
    FastRNN(epochs=1, **settings).fit(Xs[0][:300], ys[0][:300])        # compiled
    emit("READY")
    try:
        fit_many(Loud(epochs=10_000, **settings), Xs, ys, n_jobs=n_jobs)
    except KeyboardInterrupt:
        emit("INTERRUPTED")
    else:
        emit("RESULT " + json.dumps({"error": "fit_many ended without KeyboardInterrupt"}))
        sys.exit(1)
    time.sleep(0.5)
    emit("RESULT " + json.dumps({
        "trained": len(trained),
        "threads_left": [t.name for t in threading.enumerate() if t.name.startswith("fastrnn")],
        "handler_restored": signal.getsignal(signal.SIGINT) is signal.default_int_handler}))
''')


def lines_of(process, into):
    for line in process.stdout:
        into.put((time.monotonic(), line.rstrip("\n")))
    into.put((time.monotonic(), None))


def expect(lines, prefix, timeout, process, stderr):
    deadline = time.monotonic() + timeout
    while True:
        try:
            arrived, line = lines.get(timeout=max(deadline - time.monotonic(), 0.001))
        except queue.Empty:
            pytest.fail(f"no {prefix!r} line within {timeout} s")
        if line is None:
            process.wait(timeout=60)
            pytest.fail(f"the child ended (exit {process.returncode}) before {prefix!r}: "
                        f"{''.join(stderr)[-3000:]}")
        if line.startswith(prefix):
            return arrived, line


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(SIGINT) ends the process on Windows")
@pytest.mark.parametrize("n_jobs", [2, 1])
def test_ctrl_c_stops_every_fit(n_jobs):
    """Four long fits (10,000 epochs of 100,000 steps each), two at a time: a
    Ctrl-C once training runs stops the running fits after their current
    update and raises KeyboardInterrupt within 3 s; the fits not started are
    not run, and no fastrnn thread is left running."""
    process = subprocess.Popen([sys.executable, "-W", "error", "-u", "-c", CTRL_C_CHILD,
                                str(n_jobs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    lines, stderr = queue.Queue(), []
    readers = [threading.Thread(target=lines_of, args=(process, lines), daemon=True),
               threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        expect(lines, "READY", 600, process, stderr)
        expect(lines, "PROGRESS", 300, process, stderr)
        time.sleep(0.3)
        sent = time.monotonic()
        os.kill(process.pid, signal.SIGINT)
        arrived, _ = expect(lines, "INTERRUPTED", 60, process, stderr)
        _, line = expect(lines, "RESULT ", 60, process, stderr)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
        for reader in readers:
            reader.join(timeout=60)
        process.stdout.close()
        process.stderr.close()
    print(f"\nCtrl-C latency, fit_many n_jobs={n_jobs}: {1000 * (arrived - sent):.1f} ms")
    assert process.returncode == 0, "".join(stderr)[-3000:]
    result = json.loads(line[len("RESULT "):])
    assert "error" not in result, result
    assert arrived - sent < 3.0
    assert result["trained"] == n_jobs, result            # the others never trained
    assert result["threads_left"] == [], result
    assert result["handler_restored"], result
