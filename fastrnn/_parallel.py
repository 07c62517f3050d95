"""Both cores for a batch: independent sequences in chunks, one per thread.

The kernels release the GIL, so plain threads run them in parallel; no
Numba threading layer is involved (its workqueue layer aborts the process
when two Python threads enter it at once, and parallel kernels have known
trouble with ``cache=True``).

Results do not depend on the number of threads: how a batch is cut into
chunks depends only on its sizes, every chunk writes its own buffers, and
the chunks' gradients are added up afterwards in chunk order.
``FASTRNN_NUM_THREADS`` sets the number of threads (default: the CPUs this
process may run on); 1 runs the chunks one after another, same results.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Below this many multiply-adds a batch is not worth a thread hand-off.
MIN_PARALLEL_WORK = 2_000_000
MAX_CHUNKS = 4
# FastRNN.fit trains on threads (one Python step per update, see
# fastrnn._train_threads) from this many multiply-adds per update on, where
# the Python step costs a few percent of the update; below, the whole
# training loop runs in one compiled call on one core.
MIN_PARALLEL_FIT_WORK = 20_000_000

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


def num_threads():
    value = os.environ.get("FASTRNN_NUM_THREADS")
    if value:
        try:
            threads = int(value)
        except ValueError:
            raise ValueError(f"FASTRNN_NUM_THREADS: expected a positive integer, got {value!r}") from None
        if threads < 1:
            raise ValueError(f"FASTRNN_NUM_THREADS: expected a positive integer, got {value!r}")
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                   # not on Linux
        return os.cpu_count() or 1


def work_per_row(n_gates, k, d, m):
    """Multiply-adds of one step of one sequence, forward: the input
    projection, the recurrence and the output layer."""
    return d * (n_gates * (d + k) + m)


def chunk_bounds(n_sequences, n_rows, work_per_row):
    """Sequence boundaries of the chunks a batch is cut into: a function of
    the batch's sizes only, never of the thread count."""
    if n_sequences < 2 or n_rows * work_per_row < MIN_PARALLEL_WORK:
        return np.array([0, n_sequences])
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


def forward_in_chunks(run, n_states, work):
    """A twin's ``*_forward`` (same signature), run in chunks of whole
    sequences on threads; every chunk writes its own rows of the outputs,
    so the result is the unchunked one exactly."""
    def forward(*args):
        params, (X, offsets) = args[:5], args[5:7]
        states0, outputs = args[7:7 + n_states], args[7 + n_states:]
        bounds = chunk_bounds(len(offsets) - 1, int(offsets[-1]), work)
        if len(bounds) == 2:
            return run(*args)

        def task(c):
            (b0, b1), (r0, r1) = bounds[c:c + 2], offsets[bounds[c:c + 2]]
            run(*params, X[r0:r1], offsets[b0:b1 + 1] - r0, *(s[b0:b1] for s in states0),
                *(out[r0:r1] for out in outputs))
        run_chunks(task, len(bounds) - 1)
    return forward


def loss_and_grad_in_chunks(run, n_states, work):
    """A twin's ``*_loss_and_grad`` (same signature), run in chunks of whole
    sequences on threads.

    Each chunk's twin returns the mean loss over its own B_c sequences and
    gradients carrying 1/B_c; weighting them by B_c/B and adding them in
    chunk order gives the batch's loss and gradients, the same whatever the
    number of threads."""
    def loss_and_grad(*args):
        params, (X, Y, offsets) = args[:5], args[5:8]
        states0 = args[8:8 + n_states]
        outputs = args[8 + n_states:9 + 2 * n_states]           # H (, C), P
        grads, dstates0 = args[9 + 2 * n_states:14 + 2 * n_states], args[14 + 2 * n_states:]
        B = len(offsets) - 1
        bounds = chunk_bounds(B, int(offsets[-1]), work)
        if len(bounds) == 2:
            return run(*args)
        n_chunks = len(bounds) - 1
        chunk_grads = [grads] + [[np.empty_like(g) for g in grads] for _ in range(n_chunks - 1)]

        def task(c):
            (b0, b1), (r0, r1) = bounds[c:c + 2], offsets[bounds[c:c + 2]]
            return run(*params, X[r0:r1], Y[r0:r1], offsets[b0:b1 + 1] - r0,
                       *(s[b0:b1] for s in states0), *(out[r0:r1] for out in outputs),
                       *chunk_grads[c], *(ds[b0:b1] for ds in dstates0))

        losses = run_chunks(task, n_chunks)
        weights = np.diff(bounds) / B
        for g in grads:
            g *= weights[0]
        for c in range(1, n_chunks):
            for g, g_c in zip(grads, chunk_grads[c]):
                g += weights[c] * g_c
        for ds in dstates0:
            for c in range(n_chunks):
                ds[bounds[c]:bounds[c + 1]] *= weights[c]
        return float(sum(w * loss for w, loss in zip(weights, losses)))
    return loss_and_grad
