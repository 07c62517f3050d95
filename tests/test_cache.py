"""Numba's on-disk cache of the kernels never supplies the wrong machine
code: it is thrown away after any kernel source changes (Numba would only
notice a change to the kernel's own file), and a process running with
NUMBA_BOUNDSCHECK=1 (Numba's cache ignores the flag) compiles its kernels
itself and never loads unchecked ones, even while another process on the
same cache writes them. Each test runs fresh processes on a cache of its own.

The probe: ``fastrnn.kernels.layers.input_projection`` with a token id of 7
for a W_x of 4 columns. Its own checks (shapes) pass; only Numba's bounds
checks catch the id, with an IndexError. W_x is a view of a larger array,
so the unchecked read stays inside memory that exists.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

OUT_OF_RANGE_ID = """
import numpy as np
from fastrnn.kernels.layers import input_projection
W_x = np.zeros((10, 4))[:3]                 # rows 3..9 are there, columns 4..7 are not
A = np.zeros((1, 3))
try:
    input_projection(np.array([7]), W_x, np.empty((0, 0)), np.zeros(3), A)   # id 7 of 4
    print("unchecked")
except IndexError:
    print("bounds checked")
"""

# The same probe, in a process that waits at a barrier between importing
# fastrnn and calling the kernel (where the stamp check of the old fix ran
# and where another process can write the cache): it touches READY and then
# waits until GO exists.
AT_THE_BARRIER = """
import sys, time
from pathlib import Path
import fastrnn
Path(sys.argv[1]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
""" + OUT_OF_RANGE_ID


def environment(cache_dir, boundscheck):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("NUMBA_BOUNDSCHECK", None)
    env.pop("NUMBA_DISABLE_JIT", None)
    if boundscheck:
        env["NUMBA_BOUNDSCHECK"] = "1"
    return env


def run(code, cache_dir, boundscheck=False):
    result = subprocess.run([sys.executable, "-c", code], env=environment(cache_dir, boundscheck),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def run_with(code, cache_dir, *args):
    process = start(code, cache_dir, False, *args)
    return finish(process)


def start(code, cache_dir, boundscheck, *args):
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                            env=environment(cache_dir, boundscheck), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process):
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return out.strip()


def cached_files(cache_dir):
    return sorted(p.name for p in Path(cache_dir).rglob("*.nb[ic]"))


def test_switching_boundscheck_never_reuses_the_other_machine_code(tmp_path):
    assert run(OUT_OF_RANGE_ID, tmp_path) == "unchecked"
    assert cached_files(tmp_path)
    assert run(OUT_OF_RANGE_ID, tmp_path, boundscheck=True) == "bounds checked"
    assert run(OUT_OF_RANGE_ID, tmp_path) == "unchecked"


def test_a_stale_stamp_deletes_the_cached_kernels_at_import(tmp_path):
    run(OUT_OF_RANGE_ID, tmp_path)
    stamps = list(tmp_path.rglob("fastrnn-sources.sha256"))
    assert len(stamps) == 1 and cached_files(tmp_path)
    stamps[0].write_text("the hash of other kernel sources")
    assert run("import fastrnn", tmp_path) == ""
    assert cached_files(tmp_path) == []
    assert stamps[0].read_text() != "the hash of other kernel sources"
    # and an unchanged stamp keeps them
    run(OUT_OF_RANGE_ID, tmp_path)
    kept = cached_files(tmp_path)
    run("import fastrnn", tmp_path)
    assert cached_files(tmp_path) == kept


def test_bounds_checked_kernels_are_never_written_to_the_cache(tmp_path):
    assert run(OUT_OF_RANGE_ID, tmp_path, boundscheck=True) == "bounds checked"
    assert cached_files(tmp_path) == []


def test_concurrent_checked_and_unchecked_processes_on_one_cache(tmp_path):
    """The issue: the stamp was checked once, at import, so a checked process
    that imported fastrnn before an unchecked one wrote its kernels to the
    shared cache then loaded them, and ran unchecked (2 of 5 pairs started
    together). Pairs of processes, all running at once, each pair on a fresh
    cache directory of its own:

    * interleaved: the checked process imports fastrnn, then waits while the
      unchecked one compiles and caches the kernel, then calls it (the
      interleaving that loaded unchecked code, every time);
    * reversed: the unchecked one imports and waits while the checked one
      runs, then runs on the same cache;
    * free (two pairs): both started together, no barrier.

    The checked process must raise IndexError every time; the unchecked one
    runs the same call to the end."""
    def barrier(name):
        return tmp_path / f"ready-{name}", tmp_path / f"go-{name}"

    interleaved = start(AT_THE_BARRIER, tmp_path / "interleaved", True, *barrier("i"))
    reversed_waiting = start(AT_THE_BARRIER, tmp_path / "reversed", False, *barrier("r"))
    reversed_checked = start(OUT_OF_RANGE_ID, tmp_path / "reversed", True)
    free = [(start(OUT_OF_RANGE_ID, tmp_path / f"free-{i}", False),
             start(OUT_OF_RANGE_ID, tmp_path / f"free-{i}", True)) for i in range(2)]

    ready, go = barrier("i")
    deadline = time.monotonic() + 300
    while not ready.exists():                  # the checked process has imported fastrnn
        assert interleaved.poll() is None, interleaved.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert finish(start(OUT_OF_RANGE_ID, tmp_path / "interleaved", False)) == "unchecked"
    assert cached_files(tmp_path / "interleaved"), "nothing cached: no race was set up"
    go.touch()
    outcomes = {"interleaved": finish(interleaved), "reversed": finish(reversed_checked)}
    barrier("r")[1].touch()
    assert finish(reversed_waiting) == "unchecked"
    for i, (unchecked, checked) in enumerate(free):
        outcomes[f"free-{i}"] = finish(checked)
        assert finish(unchecked) == "unchecked"
    assert outcomes == {kind: "bounds checked" for kind in outcomes}, outcomes


# Which overloads of the products a process holds, after a forward pass and
# after a gradient, on a deep bidirectional float32 network (every product
# path: token ids and dense inputs, several input blocks, dX).
PRODUCT_OVERLOADS = """
import sys
import numpy as np
import fastrnn
from fastrnn import _jit
from fastrnn.kernels import _linalg, network, train

# At each first load, how many overloads the kernels that call these
# products already hold: they must come after.
callers_at_first_load = []
load_first = _linalg.load_first

def recording(key, overloads):
    if key not in _jit._loaded:
        callers = [network.loss_and_grad, train.train_epochs] if key[1] else [network.forward]
        callers_at_first_load.append(sum(len(kernel.overloads) for kernel in callers))
    load_first(key, overloads)
_linalg.load_first = recording

def held():
    return {name: sorted(str(sig) for sig in getattr(_linalg, name).overloads)
            for name in ("_add_products_tiles", "add_products", "add_products_bt",
                         "add_products_t", "set_columns_t")}

def listed(gradients):
    out = {}
    for dispatcher, types in _linalg.product_overloads("float32", gradients):
        out.setdefault(dispatcher.py_func.__name__, []).append(str(tuple(types)))
    return {name: sorted(sigs) for name, sigs in out.items()}

params = fastrnn.init_params(3, 4, 3, n_layers=2, bidirectional=True, dtype="float32",
                             random_state=0)
dense = np.random.default_rng(0).standard_normal((2, 5, 3))
ids = np.array([[0, 1, 2, 1, 0], [2, 2, 1, 0, 1]])
def fit():
    fastrnn.FastRNN(n_hidden=4, n_layers=2, bidirectional=True, dtype="float32", epochs=1,
                    random_state=0).fit(dense, ids)

after = {}
if sys.argv[1] == "fit only":
    fit()
    after["fit"] = held()
else:
    for X in (ids, dense):
        fastrnn.forward(params, X)
    after["forward"] = held()
    for X in (ids, dense):
        fastrnn.loss_and_grad(params, X, ids, return_dX=X is dense)
    fit()
    after["gradients"] = held()
after["callers at first load"] = callers_at_first_load
after["from the cache"] = bool(train.train_epochs.stats.cache_hits)
print(repr((after, listed(False), listed(True))))
"""


def test_the_products_are_loaded_before_their_callers(tmp_path):
    """``_linalg.product_overloads`` lists exactly the overloads of the
    products that the kernels use (a compiling process holds no others), and
    a process that loads every kernel from the cache loads those too, before
    the first call: the calls then bind to the products' own machine code,
    not to the slower copies inside the callers (see ``_jit.load_first``)."""
    compiling = eval(run_with(PRODUCT_OVERLOADS, tmp_path, "all"))
    cached = eval(run_with(PRODUCT_OVERLOADS, tmp_path, "all"))
    assert not compiling[0]["from the cache"] and cached[0]["from the cache"]
    for after, forward_list, gradient_list in (compiling, cached):
        assert after["forward"] == {name: forward_list.get(name, []) for name in after["forward"]}
        assert after["gradients"] == gradient_list
        assert after["callers at first load"] == [0, 0]      # forward's, then the gradients'
    after, _, gradient_list = eval(run_with(PRODUCT_OVERLOADS, tmp_path, "fit only"))
    assert after["fit"] == gradient_list
    assert after["callers at first load"] == [0] and after["from the cache"]
