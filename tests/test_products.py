"""The matrix products of fastrnn.kernels._linalg give exactly the sums their
docstring promises: each number of Out is Out + a_0 b_0 + a_1 b_1 + ...,
one product and one addition at a time, in the order of k. NumPy computes
that order itself below (one rank-one update per k, rounded like the
kernels), so the results must be equal bit for bit, for both ways of
computing a product (the loops and the register tiles, whichever precision
each is used for), on shapes that cross every edge of the tiles: rows not a
multiple of 4, columns in panels of 32, 16 and 8 with a remainder (the last
panel overlapping its neighbour) or fewer than 8 columns, more steps of k
than one block (K_BLOCK), and the strides for which the tiles hand the
product to the loops (ALIASING_STRIDE)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastrnn.kernels import _linalg

pytestmark = pytest.mark.kernels

SHAPES = [(1, 1, 1), (3, 7, 5), (4, 8, 8), (5, 9, 61), (1, 100, 100), (7, 300, 45),
          (4, 1, 33), (9, 257, 17), (2, 0, 40), (13, 31, 96), (6, 12, 7), (8, 64, 130),
          (0, 5, 9), (4, 5, 0), (6, 600, 7),
          (5, 20, 1024), (1024, 3, 9)]      # rows of B, columns of Aᵀ, 4 KB apart


def in_order(A, B, Out):
    """Out + Σ_k A[:, k] B[k], one term at a time in the order of k."""
    Out = Out.copy()
    for k in range(A.shape[1]):
        Out = Out + A[:, k:k + 1] * B[k]
    return Out


def arrays(shape, dtype, order, seed):
    R, K, M = shape
    rng = np.random.default_rng(seed)
    A = np.asarray(rng.standard_normal((R, K)), dtype=dtype, order=order)
    return A, rng.standard_normal((K, M)).astype(dtype), rng.standard_normal((R, M)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("order", ["C", "F"])          # F: Aᵀ as add_products_t passes it
@pytest.mark.parametrize("body", [_linalg._add_products_loops, _linalg._add_products_tiles,
                                  _linalg.add_products])
def test_products_add_every_term_in_order(body, order, dtype):
    for seed, shape in enumerate(SHAPES):
        A, B, Out = arrays(shape, dtype, order, seed)
        before = (A.copy(), B.copy())
        expected = in_order(A, B, Out)
        body(A, B, Out)
        np.testing.assert_array_equal(Out, expected, err_msg=f"shape {shape}")
        np.testing.assert_array_equal(A, before[0])
        np.testing.assert_array_equal(B, before[1])


def test_few_row_and_transposed_products_give_the_same_bits():
    """add_products_bt (W as stored) and add_products_t (Aᵀ in place) add the
    same terms in the same order."""
    for seed, (R, K, M) in enumerate(SHAPES):
        for dtype in ("float64", "float32"):
            A, B, Out = arrays((R, K, M), dtype, "C", seed)
            expected = in_order(A, B, Out)
            bt = Out.copy()
            _linalg.add_products_bt(A, np.ascontiguousarray(B.T), bt)
            np.testing.assert_array_equal(bt, expected)
            t = Out.copy()
            _linalg.add_products_t(np.ascontiguousarray(A.T), B, t)
            np.testing.assert_array_equal(t, expected)


def test_the_tiles_compile_to_vector_instructions(tmp_path):
    """The tiles are tuples of numbers that only LLVM's SLP vectoriser packs
    into vectors (``kernel(slp=True)``): without it they compile to scalar
    code, as correct and several times slower, which no other test sees.
    The same function compiled without the option is the yardstick: the
    4x32 tile alone is 128 multiplications that must have been packed.
    Each in a process of its own with a fresh cache (Numba shows the code
    only of what it compiled, and the tuple helpers, compiled once, keep
    the packing of whichever compiled them first)."""
    script = textwrap.dedent("""
        import os, re, sys, numba, numpy as np
        from fastrnn._jit import KERNEL_OPTIONS
        from fastrnn.kernels import _linalg
        A = np.ones((4, 4), dtype=np.float32)
        tiles = _linalg._add_products_tiles
        if sys.argv[1] == "plain":
            tiles = numba.njit(**dict(KERNEL_OPTIONS, cache=False))(tiles.py_func)
            tiles(A, A, A.copy())
        else:
            # as the kernels load them; after a change to a NUMBA_* variable,
            # on which Numba reloads its settings when it next compiles
            _linalg.add_products_bt(A, A, A.copy())
            os.environ["NUMBA_FASTRNN_TEST_UNRELATED"] = "1"
            _linalg.load_products("float32", False)
        (ir,) = tiles.inspect_llvm().values()
        print(len(re.findall(r"fmul float ", ir)))
    """)
    scalar = {}
    for how in ("slp", "plain"):
        # as fastrnn runs for its users, whatever mode this test runs in
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / how), NUMBA_BOUNDSCHECK="0",
                   NUMBA_DISABLE_JIT="0")
        out = subprocess.run([sys.executable, "-c", script, how], capture_output=True,
                             text=True, env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        scalar[how] = int(out.stdout)
    assert scalar["plain"] - scalar["slp"] >= 128, scalar
