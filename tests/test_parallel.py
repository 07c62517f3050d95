"""Batches cut into chunks of sequences, run on several threads.

The results must not depend on the number of threads (bit for bit), must
agree with the reference to the SPEC bound, and a chunked forward pass must
equal the unchunked one exactly (chunks share no arithmetic)."""
import multiprocessing
import os
import warnings

import numpy as np
import pytest

import fastrnn
from fastrnn import _parallel

pytestmark = pytest.mark.kernels


def _relative(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / max(np.linalg.norm(b), 1e-300)


def _problem(cell, seed, lengths=(5, 9, 1, 7, 3, 8, 2), k=6, d=5, m=4, ids=False):
    rng = np.random.default_rng(seed)
    params = fastrnn.init_params(k, d, m, cell=cell, random_state=rng)
    if ids:
        X = [rng.integers(0, k, n) for n in lengths]
    else:
        X = [rng.standard_normal((n, k)) for n in lengths]
    y = [rng.integers(0, m, n) for n in lengths]
    B = len(lengths)
    h0 = rng.standard_normal((B, d))
    state = (h0, rng.standard_normal((B, d))) if cell == "lstm" else h0
    return params, X, y, state


def _flatten(result):
    loss, grads, dstate = result
    parts = [np.atleast_1d(loss)] + [grads[key] for key in sorted(grads)]
    parts += list(dstate) if isinstance(dstate, tuple) else [dstate]
    return parts


@pytest.fixture
def always_chunk(monkeypatch):
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_WORK", 0)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("ids", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_chunks_agree_with_reference_and_ignore_thread_count(cell, ids, seed, always_chunk,
                                                             monkeypatch):
    params, X, y, state = _problem(cell, seed, ids=ids)
    assert len(_parallel.chunk_bounds(len(X), 35, 1)) - 1 == _parallel.MAX_CHUNKS
    reference = _flatten(fastrnn.loss_and_grad(params, X, y, h0=state, backend="numpy",
                                               return_dh0=True))
    results = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("FASTRNN_NUM_THREADS", threads)
        results[threads] = _flatten(fastrnn.loss_and_grad(params, X, y, h0=state,
                                                          return_dh0=True))
    for threads, parts in results.items():
        for got, ref, want in zip(parts, reference, results["1"]):
            assert np.array_equal(got, want), f"{threads} threads changed the result"
            assert _relative(got, ref) <= 1e-12


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_chunked_forward_equals_unchunked_exactly(cell, monkeypatch):
    params, X, y, state = _problem(cell, 7)
    whole = fastrnn.forward(params, X, h0=state, return_hidden=True)
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_WORK", 0)
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "2")
    chunked = fastrnn.forward(params, X, h0=state, return_hidden=True)
    flat = lambda out: [np.asarray(a) for a in np.concatenate(out[0])] + \
        [np.concatenate(x) if isinstance(x, list) else x for x in
         (out[1] if isinstance(out[1], tuple) else (out[1],))]
    for a, b in zip(flat(whole), flat(chunked)):
        assert np.array_equal(a, b)


def test_a_batch_large_enough_is_chunked_by_default_and_agrees():
    rng = np.random.default_rng(0)
    B, T, k, d = 8, 40, 32, 64
    params = fastrnn.init_params(k, d, random_state=rng)
    X = rng.standard_normal((B, T, k))
    y = rng.integers(0, k, (B, T))
    work = d * (d + k + k)
    assert len(_parallel.chunk_bounds(B, B * T, work)) - 1 > 1
    loss, grads = fastrnn.loss_and_grad(params, X, y)
    ref_loss, ref_grads = fastrnn.loss_and_grad(params, X, y, backend="numpy")
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    for key in grads:
        assert _relative(grads[key], ref_grads[key]) <= 1e-12, key


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_thread_count_is_named(value, monkeypatch, always_chunk):
    monkeypatch.setenv("FASTRNN_NUM_THREADS", value)
    params, X, y, state = _problem("rnn", 0)
    with pytest.raises(ValueError, match="FASTRNN_NUM_THREADS"):
        fastrnn.loss_and_grad(params, X, y)


# ------------------------------------------------------- training on threads
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_threaded_fit_ignores_thread_count(cell, monkeypatch):
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_FIT_WORK", 0)
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_WORK", 0)
    rng = np.random.default_rng(1)
    X = [rng.standard_normal((n, 6)) for n in (5, 9, 1, 7, 3, 8, 2, 6)]
    y = [rng.integers(0, 4, len(x)) for x in X]
    fits = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("FASTRNN_NUM_THREADS", threads)
        fits[threads] = fastrnn.FastRNN(n_hidden=5, cell=cell, optimizer="adam", epochs=20,
                                        batch_size=6, bptt=4, random_state=0).fit(X, y)
    for threads, model in fits.items():
        assert model.loss_curve_ == fits["1"].loss_curve_, threads
        for key in model.params_:
            assert np.array_equal(model.params_[key], fits["1"].params_[key]), (threads, key)


def test_fit_uses_threads_exactly_for_large_mini_batches():
    from fastrnn import _train_threads
    from fastrnn.cases import CASES
    worth = {name: _train_threads.is_worth_it(c.k, c.d, c.k, 1, c.B, c.T)
             for name, c in CASES.items()}
    assert worth == {"toy": False, "charlm": False, "batch": True, "wide": True, "long": False}
    assert not _train_threads.is_worth_it(64, 256, 64, 4, 1, 1000)   # one sequence: no chunks


def _loss_in_child(params, X, y):
    return fastrnn.loss_and_grad(params, X, y)[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_chunks_run_in_a_forked_child(always_chunk, monkeypatch):
    """multiprocessing's fork start method copies the process without its
    threads: a child must not wait for the parent's pool, which is not there."""
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "2")
    params, X, y, _ = _problem("rnn", 0)
    want = fastrnn.loss_and_grad(params, X, y)[0]          # the parent's pool now has threads
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a multi-threaded process may deadlock:
        # what this test shows fastrnn's own threads do not.
        warnings.filterwarnings("ignore", message=".*multi-threaded.*", category=DeprecationWarning)
        with multiprocessing.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(_loss_in_child, (params, X, y)).get(timeout=120)
    assert got == want
