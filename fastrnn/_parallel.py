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

_pools = {}
_pools_lock = threading.Lock()


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
