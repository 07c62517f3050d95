"""Both cores for a batch: independent sequences in chunks, one per thread.

The kernels release the GIL, so plain threads run them in parallel; no
Numba threading layer is involved (its workqueue layer aborts the process
when two Python threads enter it at once, and parallel kernels have known
trouble with ``cache=True``).

Results do not depend on the number of threads: how a batch is cut into
chunks depends only on its sizes, every chunk writes its own buffers, and
the chunks' gradients are added up afterwards in chunk order.

Threads: ``FASTRNN_NUM_THREADS`` if set; otherwise ``OMP_NUM_THREADS`` if
set (joblib's loky workers and Dask's workers set it to the threads they
were given, usually 1); otherwise the CPUs this process may run on. One
thread runs the chunks one after another, with the same results.
"""
import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fastrnn._cells import CELLS

# Below this many multiply-adds a batch is not worth a thread hand-off.
MIN_PARALLEL_WORK = 2_000_000
MAX_CHUNKS = 4
# FastRNN.fit trains on threads (one Python step per update, see
# fastrnn._train_threads) from this many multiply-adds per update on, where
# the Python step costs a few percent of the update (measured on one thread:
# 2.5% on 32 text streams of the simple RNN, 15 million per update, while
# two threads train them 1.5x as fast); below, the whole training loop runs
# in one compiled call on one core.
MIN_PARALLEL_FIT_WORK = 10_000_000

_pools = {}
_pools_lock = threading.Lock()


def _forget_pools():
    """In a forked child: the pools it inherits have no threads there (fork
    copies only the calling thread) and would never run a task."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def _positive_int_from_env(name):
    value = os.environ.get(name)
    if not value:
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return threads


_local = threading.local()


@contextlib.contextmanager
def threads_limited(n):
    """Within this block, fastrnn uses at most ``n`` threads on this thread
    (``fit_many`` runs one fit per thread, each on one)."""
    previous = getattr(_local, "limit", None)
    _local.limit = n
    try:
        yield
    finally:
        _local.limit = previous


def num_threads():
    """Threads fastrnn may use (see the module docstring)."""
    limit = getattr(_local, "limit", None)
    if limit is not None:
        return limit
    for name in ("FASTRNN_NUM_THREADS", "OMP_NUM_THREADS"):
        threads = _positive_int_from_env(name)
        if threads:
            return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                   # not on Linux
        return os.cpu_count() or 1


def work_per_row(net):
    """Multiply-adds of one step of one sequence, forward: the input
    projections, the recurrences and the output layer of every layer."""
    return _work_per_row(net.architecture)


@functools.lru_cache(maxsize=256)
def _work_per_row(a):
    blocks = a.n_directions * CELLS[a.cell].blocks
    d = a.n_hidden
    return sum(blocks * d * (a.layer_input_width(layer) + d) for layer in range(a.n_layers)) \
        + a.n_directions * d * a.n_outputs


def one_chunk(n_sequences, n_rows, work_per_row):
    """Whether a batch is too small to cut (then it runs as it is)."""
    return n_sequences < 2 or n_rows * work_per_row < MIN_PARALLEL_WORK


def chunk_bounds(n_sequences, n_rows, work_per_row):
    """Sequence boundaries of the chunks a batch is cut into: a function of
    the batch's sizes only, never of the thread count."""
    if one_chunk(n_sequences, n_rows, work_per_row):
        return (0, n_sequences)
    n_chunks = min(n_sequences, MAX_CHUNKS)
    return (np.arange(n_chunks + 1) * n_sequences) // n_chunks


def run_chunks(task, n_chunks):
    """[task(0), ..., task(n_chunks - 1)], on up to num_threads() threads."""
    if n_chunks == 1:
        return [task(0)]
    threads = min(num_threads(), n_chunks)
    if threads == 1:
        return [task(c) for c in range(n_chunks)]
    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fastrnn")
        pool = _pools[threads]
    return list(pool.map(task, range(n_chunks)))


def _chunk(bounds, offsets, c):
    (b0, b1), (r0, r1) = bounds[c:c + 2], offsets[bounds[c:c + 2]]
    return int(b0), int(b1), int(r0), int(r1)


def _part(array, start, stop):
    """array[:, :, start:stop] for a kernel: the view itself when it is
    C-contiguous (one layer, one direction), else a buffer that
    :func:`_put_back` copies into the array afterwards."""
    view = array[:, :, start:stop]
    return view if view.flags.c_contiguous else np.empty(view.shape, array.dtype)


def _put_back(array, start, stop, part):
    if not np.may_share_memory(part, array):     # a buffer of _part, not a view
        array[:, :, start:stop] = part


def forward_in_chunks(run, work):
    """A twin's network ``forward`` (same signature), run in chunks of whole
    sequences on threads; each chunk computes into its own buffers, copied
    into the outputs, so the result is the unchunked one exactly."""
    def forward(cell, theta, thetaT, table, X, offsets, state0, loss, last_step, Hs, caches,
                state_last, P):
        bounds = chunk_bounds(len(offsets) - 1, int(offsets[-1]), work)
        if len(bounds) == 2:
            return run(cell, theta, thetaT, table, X, offsets, state0, loss, last_step, Hs,
                       caches, state_last, P)

        def task(c):
            b0, b1, r0, r1 = _chunk(bounds, offsets, c)
            s0 = np.ascontiguousarray(state0[:, :, b0:b1])
            H_c, cache_c, last_c = _part(Hs, r0, r1), _part(caches, r0, r1), \
                _part(state_last, b0, b1)
            run(cell, theta, thetaT, table, X[r0:r1], offsets[b0:b1 + 1] - r0, s0, loss,
                last_step, H_c, cache_c, last_c, P[b0:b1] if last_step else P[r0:r1])
            _put_back(Hs, r0, r1, H_c)
            _put_back(caches, r0, r1, cache_c)
            _put_back(state_last, b0, b1, last_c)
        run_chunks(task, len(bounds) - 1)
    return forward


def loss_and_grad_in_chunks(run, work):
    """A twin's network ``loss_and_grad`` (same signature), run in chunks of
    whole sequences on threads. Every sequence's loss is already weighted by
    its share of the batch (``scale``), so the chunks' losses and gradients
    add up, in chunk order, to the batch's."""
    def loss_and_grad(cell, theta, table, X, Y, offsets, scale, step_weight, state0, loss,
                      last_step, dropout, seed, row0, Hs, caches, state_last, grad, dstate0, dX):
        bounds = chunk_bounds(len(offsets) - 1, int(offsets[-1]), work)
        if len(bounds) == 2:
            return run(cell, theta, table, X, Y, offsets, scale, step_weight, state0, loss,
                       last_step, dropout, seed, row0, Hs, caches, state_last, grad, dstate0,
                       dX)
        n_chunks = len(bounds) - 1
        grads = [grad] + [np.empty_like(grad) for _ in range(n_chunks - 1)]

        def task(c):
            b0, b1, r0, r1 = _chunk(bounds, offsets, c)
            s0 = np.ascontiguousarray(state0[:, :, b0:b1])
            H_c, cache_c = _part(Hs, r0, r1), _part(caches, r0, r1)
            last_c, ds_c = _part(state_last, b0, b1), _part(dstate0, b0, b1)
            value = run(cell, theta, table, X[r0:r1], Y[b0:b1] if last_step else Y[r0:r1],
                        offsets[b0:b1 + 1] - r0, scale[b0:b1],
                        step_weight[r0:r1] if len(step_weight) else step_weight, s0, loss,
                        last_step, dropout, seed, row0 + r0, H_c, cache_c, last_c, grads[c],
                        ds_c, dX[r0:r1] if len(dX) else dX)
            for array, start, stop, part in ((Hs, r0, r1, H_c), (caches, r0, r1, cache_c),
                                             (state_last, b0, b1, last_c),
                                             (dstate0, b0, b1, ds_c)):
                _put_back(array, start, stop, part)
            return value

        losses = run_chunks(task, n_chunks)
        for c in range(1, n_chunks):
            grad += grads[c]
        return float(sum(losses))
    return loss_and_grad
