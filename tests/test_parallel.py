"""Batches cut into chunks of whole sequences, run on several threads
(fastrnn._parallel).

* The results do not depend on the number of threads, bit for bit: how a
  batch is cut depends only on its sizes.
* A chunked call equals the unchunked twin: exactly for everything computed
  per sequence (outputs, hidden states, caches, final states, dstate0, dX);
  the loss and the gradient are sums over sequences, added chunk by chunk,
  so within the twins' bound of them.
* A forked child does not wait for its parent's threads; the thread count
  comes from FASTRNN_NUM_THREADS, else OMP_NUM_THREADS (joblib's and Dask's
  workers set it to 1), else the CPUs; a bad value is a ValueError naming
  the variable.
"""
import multiprocessing
import os
import warnings

import numpy as np
import pytest

import fastrnn
from _metrics import flat, normwise
from _registry import ARCHITECTURES, HEADS, arch_id, make_params
from fastrnn import _parallel, _validation, functional
from fastrnn._cells import CELLS
from fastrnn._layout import transposed
from fastrnn._parallel import forward_in_chunks, loss_and_grad_in_chunks
from fastrnn.kernels import network

pytestmark = pytest.mark.kernels
THREAD_VARIABLES = ("FASTRNN_NUM_THREADS", "OMP_NUM_THREADS")


@pytest.fixture
def always_chunk(monkeypatch):
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_WORK", 0)


@pytest.fixture
def clean_environment(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def ragged_problem(arch, head, seed, ids=False, weights="sequence"):
    """A list of 7 sequences of different lengths (so MAX_CHUNKS chunks of
    different sizes) and an initial state; k = m = 3, d = 4 (the registry's)."""
    rng = np.random.default_rng(seed)
    params = make_params(arch, rng)
    lengths = [5, 9, 1, 7, 3, 8, 2]
    X = [rng.integers(0, 3, T) if ids else rng.normal(0, 1, (T, 3)) for T in lengths]
    last = head[1] == "last_step"
    if head[0] == "cross_entropy":
        y = rng.integers(0, 3, 7) if last else [rng.integers(0, 3, T) for T in lengths]
    else:
        y = rng.normal(0, 1, (7, 3)) if last else [rng.normal(0, 1, (T, 3)) for T in lengths]
    S = arch[1] * (2 if arch[2] else 1)
    deep = arch[1] > 1 or arch[2]
    shape = ((S,) if deep else ()) + (7, 4)
    h0 = rng.normal(0, 0.5, shape)
    h0 = (h0, rng.normal(0, 0.5, shape)) if arch[0] == "lstm" else h0
    kwargs = dict(loss=head[0], output=head[1], h0=h0)
    if weights == "sequence":
        kwargs["sample_weight"] = rng.uniform(0.5, 2, 7)
    elif weights == "step" and not last:
        kwargs["sample_weight"] = [rng.uniform(0, 2, T) for T in lengths]
    return params, X, y, kwargs


CASES = [(arch, HEADS[i % 4], bool(i % 2)) for i, arch in enumerate(ARCHITECTURES)]


@pytest.mark.parametrize("arch,head,ids", CASES,
                         ids=[f"{arch_id(a)}-{h[0][:2]}-{h[1][:4]}-{'ids' if i else 'dense'}"
                              for a, h, i in CASES])
def test_results_do_not_depend_on_the_thread_count(arch, head, ids, always_chunk,
                                                   monkeypatch):
    params, X, y, kwargs = ragged_problem(arch, head, CASES.index((arch, head, ids)), ids)
    assert len(_parallel.chunk_bounds(len(X), 35, 1)) - 1 == _parallel.MAX_CHUNKS
    results = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("FASTRNN_NUM_THREADS", threads)
        assert _parallel.num_threads() == int(threads)
        results[threads] = flat(
            (fastrnn.loss_and_grad(params, X, y, return_dh0=True, return_dX=not ids, **kwargs),
             fastrnn.forward(params, X, return_hidden=True,
                             **{k: v for k, v in kwargs.items() if k != "sample_weight"})))
    for threads, parts in results.items():
        assert len(parts) == len(results["1"])
        for i, (got, want) in enumerate(zip(parts, results["1"])):
            assert np.array_equal(got, want), f"{threads} threads changed output {i}"


def kernel_arguments(params, X, y, kwargs):
    net = _validation.check_params(params)
    head = _validation.check_head(kwargs["loss"], kwargs["output"])
    seqs = _validation.check_inputs(X, net.n_inputs)
    Y = _validation.check_targets(y, seqs, net.n_outputs, head)
    seq_weight, step_weight = _validation.check_sample_weight(kwargs.get("sample_weight"),
                                                              seqs, head)
    state0 = _validation.check_states(kwargs.get("h0"), net, seqs)
    return net, head, seqs, Y, _validation.sequence_scale(seq_weight), step_weight, state0


def run_forward(run, net, head, seqs, state0, thetaT=None):
    a = net.architecture
    thetaT = net.theta[:0] if thetaT is None else thetaT
    N, B = seqs.n_rows, seqs.n_sequences
    Hs = np.full((a.n_layers, a.n_directions, N, a.n_hidden), np.nan)
    caches = np.full((a.n_layers, a.n_directions, N, CELLS[a.cell].cache_blocks * a.n_hidden),
                     np.nan)
    state_last = np.full_like(state0, np.nan)
    P = np.full((B if head.last_step else N, a.n_outputs), np.nan)
    run(CELLS[a.cell].tag, net.theta, thetaT, net.table, seqs.data, seqs.offsets, state0,
        head.loss, head.last_step, Hs, caches, state_last, P)
    return Hs, caches, state_last, P


def run_loss_and_grad(run, net, head, seqs, Y, scale, step_weight, state0, dropout):
    a = net.architecture
    N = seqs.n_rows
    Hs = np.full((a.n_layers, a.n_directions, N, a.n_hidden), np.nan)
    caches = np.full((a.n_layers, a.n_directions, N, CELLS[a.cell].cache_blocks * a.n_hidden),
                     np.nan)
    state_last, dstate0 = np.full_like(state0, np.nan), np.full_like(state0, np.nan)
    grad = np.full_like(net.theta, np.nan)
    dX = np.full((N if seqs.data.ndim == 2 else 0, a.n_inputs), np.nan)
    loss = run(CELLS[a.cell].tag, net.theta, net.table, seqs.data, Y, seqs.offsets, scale,
               step_weight, state0, head.loss, head.last_step, dropout, np.uint64(99), 5, Hs,
               caches, state_last, grad, dstate0, dX)
    return loss, grad, (Hs, caches, state_last, dstate0, dX)


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("arch,head,ids", CASES,
                         ids=[f"{arch_id(a)}-{h[0][:2]}-{h[1][:4]}-{'ids' if i else 'dense'}"
                              for a, h, i in CASES])
def test_chunks_equal_the_unchunked_kernel(arch, head, ids, threads, always_chunk,
                                           monkeypatch):
    monkeypatch.setenv("FASTRNN_NUM_THREADS", threads)
    params, X, y, kwargs = ragged_problem(arch, head, 40 + CASES.index((arch, head, ids)), ids,
                                          weights="step")
    net, head_, seqs, Y, scale, step_weight, state0 = kernel_arguments(params, X, y, kwargs)
    work = _parallel.work_per_row(net)
    assert len(_parallel.chunk_bounds(seqs.n_sequences, seqs.n_rows, work)) - 1 > 1
    whole = run_forward(network.forward, net, head_, seqs, state0)
    for thetaT in (None, transposed(net.theta, net.architecture)):    # given: the same bits
        chunked = run_forward(forward_in_chunks(network.forward, work), net, head_, seqs,
                              state0, thetaT)
        for name, a, b in zip(("Hs", "caches", "state_last", "P"), chunked, whole):
            assert np.isfinite(a).all(), f"forward {name}: an entry left unwritten"
            assert np.array_equal(a, b), f"forward {name}"
    dropout = 0.25 if arch[1] > 1 else 0.0        # the masks follow the rows (row0)
    loss_w, grad_w, per_seq_w = run_loss_and_grad(network.loss_and_grad, net, head_, seqs, Y,
                                                  scale, step_weight, state0, dropout)
    loss_c, grad_c, per_seq_c = run_loss_and_grad(loss_and_grad_in_chunks(
        network.loss_and_grad, work), net, head_, seqs, Y, scale, step_weight, state0, dropout)
    for name, a, b in zip(("Hs", "caches", "state_last", "dstate0", "dX"), per_seq_c,
                          per_seq_w):
        assert np.isfinite(a).all(), f"loss_and_grad {name}: an entry left unwritten"
        assert np.array_equal(a, b), f"loss_and_grad {name}"
    # sums over sequences, added chunk by chunk: round-off apart
    assert abs(loss_c - loss_w) <= 1e-14 * abs(loss_w)
    assert np.isfinite(grad_c).all() and normwise(grad_c, grad_w) <= 1e-14


def test_a_batch_large_enough_is_chunked_by_default_and_agrees():
    rng = np.random.default_rng(0)
    B, T, k, d = 8, 40, 32, 64
    params = fastrnn.init_params(k, d, random_state=rng)
    X = rng.standard_normal((B, T, k))
    y = rng.integers(0, k, (B, T))
    net = _validation.check_params(params)
    assert len(_parallel.chunk_bounds(B, B * T, _parallel.work_per_row(net))) - 1 > 1
    loss, grads = fastrnn.loss_and_grad(params, X, y)
    ref_loss, ref_grads = fastrnn.loss_and_grad(params, X, y, backend="numpy")
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    for key in grads:
        assert normwise(grads[key], ref_grads[key]) <= 1e-12, key


def test_forward_and_loss_and_grad_run_a_large_batch_in_chunks(monkeypatch):
    """The public functions take the chunked path exactly when the batch is
    large enough; a forward step goes straight to the kernel, not even
    through the chunking wrapper."""
    calls, wrapped = [], []
    run_chunks, wrap = _parallel.run_chunks, functional.forward_in_chunks

    def counted(task, n_chunks):
        calls.append(n_chunks)
        return run_chunks(task, n_chunks)

    def counted_wrap(run, work):
        wrapped.append(work)
        return wrap(run, work)
    monkeypatch.setattr(_parallel, "run_chunks", counted)
    monkeypatch.setattr(functional, "forward_in_chunks", counted_wrap)
    rng = np.random.default_rng(0)
    B, T, k, d = 8, 40, 32, 64
    params = fastrnn.init_params(k, d, random_state=rng)
    X, y = rng.standard_normal((B, T, k)), rng.integers(0, k, (B, T))
    net = _validation.check_params(params)
    assert not _parallel.one_chunk(B, B * T, _parallel.work_per_row(net))
    fastrnn.forward(params, X)
    fastrnn.loss_and_grad(params, X, y)
    assert calls == [_parallel.MAX_CHUNKS] * 2 and len(wrapped) == 1
    fastrnn.forward(params, X[0, :1])
    fastrnn.loss_and_grad(params, X[0, :1], y[0, :1])
    assert calls == [_parallel.MAX_CHUNKS] * 2 and len(wrapped) == 1


def test_small_batches_are_not_chunked():
    """Below MIN_PARALLEL_WORK a thread hand-off costs more than it saves."""
    assert len(_parallel.chunk_bounds(7, 35, 100)) == 2
    assert len(_parallel.chunk_bounds(1, 10**9, 10**9)) == 2        # one sequence: one chunk
    bounds = _parallel.chunk_bounds(10, 10**6, 10**6)
    assert bounds[0] == 0 and bounds[-1] == 10 and len(bounds) - 1 == _parallel.MAX_CHUNKS
    assert np.all(np.diff(bounds) >= 1)


# ------------------------------------------------------------- thread counts
def test_omp_num_threads_sets_the_thread_count(clean_environment, monkeypatch):
    """joblib's loky workers and Dask's workers set OMP_NUM_THREADS=1: one
    thread each, not one per CPU in every worker."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _parallel.num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert _parallel.num_threads() == 3


def test_fastrnn_num_threads_wins_over_omp_num_threads(clean_environment, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "2")
    assert _parallel.num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "1")
    assert _parallel.num_threads() == 1


def test_without_either_variable_the_cpus_this_process_may_use(clean_environment):
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    assert _parallel.num_threads() == expected >= 1


def test_an_empty_variable_counts_as_unset(clean_environment, monkeypatch):
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert _parallel.num_threads() == 2


@pytest.mark.parametrize("variable", THREAD_VARIABLES)
@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", "0x2"])
def test_a_bad_thread_count_is_named(variable, value, clean_environment, monkeypatch,
                                     always_chunk):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=rf"^{variable}: expected a positive integer, "
                                         rf"got '{value}'"):
        _parallel.num_threads()
    params, X, y, kwargs = ragged_problem(ARCHITECTURES[0], HEADS[0], 0)
    with pytest.raises(ValueError, match=rf"^{variable}:"):
        fastrnn.loss_and_grad(params, X, y, **kwargs)


# ------------------------------------------------------- training on threads
@pytest.mark.parametrize("arch", [("rnn", 1, False), ("lstm", 2, False), ("gru", 1, True)],
                         ids=arch_id)
def test_threaded_fit_ignores_thread_count(arch, monkeypatch):
    """FastRNN.fit's threaded loop (fastrnn._train_threads, one Python step
    per update) gives the same model for 1, 2 or 3 threads."""
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_FIT_WORK", 0)
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_WORK", 0)
    rng = np.random.default_rng(1)
    X = [rng.standard_normal((n, 6)) for n in (5, 9, 1, 7, 3, 8, 2, 6)]
    y = [rng.integers(0, 4, len(x)) for x in X]
    cell, layers, bidirectional = arch
    fits = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("FASTRNN_NUM_THREADS", threads)
        fits[threads] = fastrnn.FastRNN(
            n_hidden=5, cell=cell, n_layers=layers, bidirectional=bidirectional,
            dropout=0.2 if layers > 1 else 0.0, optimizer="adam", epochs=6, batch_size=6,
            bptt=None if bidirectional else 4, random_state=0).fit(X, y)
    for threads, model in fits.items():
        assert model.loss_curve_ == fits["1"].loss_curve_, threads
        for key in model.params_:
            assert np.array_equal(model.params_[key], fits["1"].params_[key]), (threads, key)


def test_fit_uses_threads_exactly_for_large_updates():
    """The threaded loop pays from MIN_PARALLEL_FIT_WORK multiply-adds per
    update on, with more than one sequence to share out."""
    from fastrnn import _train_threads
    from fastrnn.cli.cases import make_case
    works = {}
    for name in ("toy", "charlm", "batch", "wide", "long"):
        params = make_case(name)[0]
        works[name] = _parallel.work_per_row(_validation.check_params(params))
    # min-char-rnn's updates (one sequence of 25 steps) never; a mini-batch of
    # 32 sequences of 50 steps with 128 hidden units (about 50 million) does
    assert not _train_threads.is_worth_it(works["toy"], 1, 3)
    assert not _train_threads.is_worth_it(works["charlm"], 1, 25)
    assert _train_threads.is_worth_it(works["batch"], 32, 50)
    assert _train_threads.is_worth_it(works["wide"], 32, 50)
    # 32 text streams of char-rnn's simple RNN (d=100, 45 characters, bptt 25)
    text_rnn = 100 * (45 + 100) + 100 * 45
    assert _train_threads.is_worth_it(text_rnn, 32, 25)
    assert not _train_threads.is_worth_it(works["long"], 4, 1000)
    assert not _train_threads.is_worth_it(64 * 256 * 4, 1, 1000)      # one sequence: no chunks


def _loss_in_child(params, X, y):
    return fastrnn.loss_and_grad(params, X, y)[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_chunks_run_in_a_forked_child(always_chunk, monkeypatch):
    """multiprocessing's fork start method copies the process without its
    threads: a child must not wait for the parent's pool, which is not there."""
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "2")
    params, X, y, _ = ragged_problem(ARCHITECTURES[0], HEADS[0], 0)
    want = fastrnn.loss_and_grad(params, X, y)[0]          # the parent's pool now has threads
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a multi-threaded process may deadlock:
        # what this test shows fastrnn's own threads do not.
        warnings.filterwarnings("ignore", message=".*multi-threaded.*", category=DeprecationWarning)
        with multiprocessing.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(_loss_in_child, (params, X, y)).get(timeout=120)
    assert got == want
