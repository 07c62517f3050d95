"""The kernels' own tanh, sigmoid and exp (fastrnn/kernels/_math.py)
against NumPy's and math's, over the whole range the kernels feed them; the
reference's sigmoid; the vectorisable reductions of the training loop."""
import warnings

import numpy as np
import pytest
from numba import njit

from fastrnn.kernels import _checks, _math, optim
from fastrnn.reference import lstm as reference_lstm

pytestmark = pytest.mark.kernels


@njit
def _apply_tanh(x, out):
    for i in range(x.shape[0]):
        out[i] = _math.tanh(x[i])


@njit
def _apply_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = _math.exp_nonpositive(x[i])


def _ulps(got, want):
    return np.abs(got - want) / np.spacing(np.abs(want)).clip(min=np.finfo(float).smallest_subnormal)


def _inputs(rng, *ranges):
    return np.concatenate([rng.uniform(lo, hi, 20_000) for lo, hi in ranges])


def test_tanh_within_two_ulps_and_exact_where_it_saturates():
    rng = np.random.default_rng(0)
    x = _inputs(rng, (-1, 1), (-25, 25), (-1e-6, 1e-6), (0.6, 0.65))
    x = np.concatenate([x, -x, [0.0, 0.625, -0.625, 19.0, 20.0, 40.0, 1e300, -1e300, 5e-324]])
    got = np.empty_like(x)
    _apply_tanh(x, got)
    # NumPy's tanh is itself within about 1 ulp of the exact value.
    assert _ulps(got, np.tanh(x)).max() <= 2.0
    assert np.array_equal(np.sign(got), np.sign(x))
    assert np.array_equal(got[np.abs(x) >= 20.0], np.sign(x[np.abs(x) >= 20.0]))


def test_tanh_loop_matches_scalar_calls_exactly():
    x = np.random.default_rng(1).uniform(-5, 5, 1000)
    vectorised = np.empty_like(x)
    _apply_tanh(x, vectorised)
    assert np.array_equal(vectorised, [_math.tanh(v) for v in x])


def test_exp_within_two_ulps_down_to_the_subnormals():
    rng = np.random.default_rng(2)
    x = -_inputs(rng, (0, 1), (0, 50), (700, 760))
    x = np.concatenate([x, [0.0, -0.5 * np.log(2), -708.39, -745.1, -745.2, -1e300]])
    got = np.empty_like(x)
    _apply_exp(x, got)
    want = np.exp(x)
    assert _ulps(got, want).max() <= 2.0
    assert got[x < -745.2].max() == 0.0
    assert _math.exp_nonpositive(0.0) == 1.0


@pytest.mark.parametrize("x, want", [(-1e308, 0.0), (-1e4, 0.0), (-800.0, 0.0), (0.0, 0.5),
                                     (800.0, 1.0), (1e4, 1.0), (1e308, 1.0)])
def test_sigmoid_saturates_exactly(x, want):
    """σ(x) = ½(1 + tanh(x/2)) in both twins: exactly 0 or 1 far out, and no
    overflow where 1 / (1 + e^{-x}) would overflow (x below about -709)."""
    assert _math.sigmoid(x) == want
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reference_lstm.sigmoid(np.array([x]))[0] == want


def test_sigmoid_agrees_with_its_definition():
    x = np.random.default_rng(3).uniform(-30, 30, 2000)
    want = 1.0 / (1.0 + np.exp(-x))
    got = np.array([_math.sigmoid(v) for v in x])
    assert np.abs(got - want).max() <= 4e-16
    assert np.abs(reference_lstm.sigmoid(x) - want).max() <= 4e-16


# ------------------------------------------ reductions of the training loop
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 8, 31, 1000])
def test_sum_of_squares_agrees_with_dot(n):
    v = np.random.default_rng(n).normal(size=n)
    got = optim.sum_of_squares(v)
    assert abs(got - np.dot(v, v)) <= 1e-14 * max(1.0, np.dot(v, v))
    assert got == optim.sum_of_squares.py_func(v)


@pytest.mark.parametrize("n", [1, 3, 4, 5, 9])
def test_all_finite_finds_inf_and_nan_at_every_position(n):
    v = np.random.default_rng(n).normal(size=n) * 1e300   # large but finite: no false alarm
    assert _checks.all_finite(v)
    for bad in (np.inf, -np.inf, np.nan):
        for i in range(n):
            w = v.copy()
            w[i] = bad
            assert not _checks.all_finite(w), (bad, i)
