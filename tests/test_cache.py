"""Numba's on-disk cache of the kernels is thrown away when it could hold
the wrong machine code: after any kernel source changes (Numba would only
notice a change to the kernel's own file) and when NUMBA_BOUNDSCHECK is
switched (Numba's cache ignores it). Each step runs in a fresh process on
a cache of its own."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

OUT_OF_RANGE_ID = """
import numpy as np
from fastrnn.kernels.rnn import input_projection
A = np.zeros((1, 3))
try:
    input_projection(np.array([7]), np.zeros((3, 4)), np.zeros(3), A)   # id 7 of 4
    print("unchecked")
except IndexError:
    print("bounds checked")
"""


def run(code, cache_dir, boundscheck=False):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("NUMBA_BOUNDSCHECK", None)
    if boundscheck:
        env["NUMBA_BOUNDSCHECK"] = "1"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


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
