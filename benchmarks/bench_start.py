"""First run: how long a fresh Python process takes to import fastrnn and
fit the toy (``import fastrnn; FastRNN(...).fit(toy)``), measured from
outside, in a subprocess:

* ``track_cold_start_seconds``: with a fresh, empty ``NUMBA_CACHE_DIR``, so
  every kernel the fit needs is compiled (what the first run after
  installing costs; tens of seconds);
* ``track_cached_start_seconds``: with that cache filled by a previous run
  (every later run); the median of three.

The subprocess imports the fastrnn this process measures (PYTHONPATH leads
to it) and runs without ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``, as
every subprocess of this suite.

``EXTRA_ENV`` is added to the subprocess's environment. The tests
(tests/test_benchmarks.py) set it to ``{"NUMBA_DISABLE_JIT": "1"}``: the
same subprocess, fit and timing, with the kernels run as plain Python and
nothing compiled, a tiny variant that takes a few seconds instead of a
cold compilation's 20-60.
"""
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from .bench_throughput import subprocess_env

EXTRA_ENV = {}
COLD_TIMEOUT = 900

SCRIPT = """
import numpy as np
import fastrnn
X, y = np.eye(4)[[0, 1, 2]], np.array([1, 2, 3])
model = fastrnn.FastRNN(n_hidden=3, epochs=10, random_state=0).fit(X, y)
model.predict_proba(X)
"""


def _run(cache_dir):
    env = subprocess_env(dict(EXTRA_ENV, NUMBA_CACHE_DIR=cache_dir))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, timeout=COLD_TIMEOUT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"the first-run script failed ({done.returncode}):\n{done.stderr}")
    return seconds


class FirstRun:
    """Seconds from starting ``python`` to a fitted toy model, cold and
    cached (see the module docstring)."""
    timeout = COLD_TIMEOUT + 300
    number = 1
    repeat = 1

    def setup(self):
        self.cache_dir = tempfile.mkdtemp(prefix="fastrnn-bench-cache-")

    def teardown(self):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def track_cold_start_seconds(self):
        return float(f"{_run(self.cache_dir):.3g}")
    track_cold_start_seconds.unit = "s"

    def track_cached_start_seconds(self):
        _run(self.cache_dir)                         # fills the cache
        return float(f"{statistics.median(_run(self.cache_dir) for _ in range(3)):.3g}")
    track_cached_start_seconds.unit = "s"
    track_cached_start_seconds.timeout = COLD_TIMEOUT + 300
