"""tanh, the logistic sigmoid and exp as plain arithmetic that LLVM vectorises.

The C library's tanh is a scalar call (about 20 ns, the largest single cost
of a forward pass measured on this project's machines); written as straight
arithmetic, a loop over hidden units computes four at a time. The result is
also the same on every machine: it depends on no C library.

    |x| < 0.625:  tanh x = x + x·z·P(z)/Q(z), z = x²   (Cephes' rational
                  approximation, relative error below 3e-16)
    otherwise:    tanh |x| = 1 - 2/(e^{2|x|} + 1), e^y by y = n ln2 + r,
                  |r| ≤ ln2/2, a degree-13 Taylor polynomial for e^r and an
                  exact power of two for 2^n. For |x| ≥ 20, tanh x = ±1 in
                  float64, so y is capped at 40.

Each function has a float64 and a float32 body (``fastrnn._jit.by_precision``).
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fastrnn._jit import by_precision, kernel, python_fallback

_LN2_HI = 6.93147180369123816490e-01     # ln 2 split in two so n·ln2 is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00


@kernel(inline=True)
def _exp_taylor(r):
    """e^r for |r| ≤ ln2/2, to a unit in the last place."""
    p = 1.0 / 6227020800.0                # Taylor coefficients 1/13! ... 1/0!
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    return p * r + 1.0


@kernel(inline=True)
def _exp_reduced(y):
    """e^y for 0 ≤ y ≤ 40."""
    n = int(y * _INV_LN2 + 0.5)
    return _exp_taylor((y - n * _LN2_HI) - n * _LN2_LO) * float(1 << n)


@python_fallback(lambda bits: np.int64(bits).view(np.float64))
@intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose IEEE 754 bit pattern is the int64 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@kernel(inline=True)
def _exp_nonpositive64(x):
    """e^x for x ≤ 0 (softmax's shifted logits), vectorisable; 0 below
    about -745, where e^x is below the smallest float64.

    The power of two is built from its bits, 2^(n+54) times 2^-54, so a
    result in the subnormal range is rounded once, correctly."""
    y = max(x, -746.0)
    n = int(y * _INV_LN2 - 0.5)               # round to nearest, y ≤ 0
    p = _exp_taylor((y - n * _LN2_HI) - n * _LN2_LO)
    return (p * _float_from_bits((n + 54 + 1023) << 52)) * 5.551115123125783e-17


@kernel(inline=True)
def _tanh64(x):
    """tanh(x), within a few units in the last place of the exact value."""
    ax = abs(x)
    z = x * x
    small = x + x * z * (((-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
                          - 1.61468768441708447952e3)
                         / (((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
                            + 4.84406305325125486048e3))
    t = 1.0 - 2.0 / (_exp_reduced(min(2.0 * ax, 40.0)) + 1.0)
    large = t if x >= 0.0 else -t
    return small if ax < 0.625 else large


# float32: the same algorithms with float32 constants and shorter
# polynomials (measured over the reduced ranges: e^r within 1.03 ulp,
# Cephes' tanhf polynomial within 0.74 ulp), so nothing widens to float64.
_F32 = np.float32
_LN2_HI_32 = _F32(0.693359375)            # few bits: n·ln2_hi is exact in float32
_LN2_LO_32 = _F32(-2.12194440e-4)
_INV_LN2_32 = _F32(1.44269504)
_TANH32 = tuple(_F32(c) for c in (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                                  1.33314422036e-1, -3.33332819422e-1))
_TAYLOR32 = tuple(_F32(c) for c in (1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1.0, 1.0))
_ZERO32, _ONE32, _TWO32, _HALF32 = _F32(0.0), _F32(1.0), _F32(2.0), _F32(0.5)
_TWO_POW_M24_32 = _F32(2.0 ** -24)


@kernel(inline=True)
def _exp_taylor32(r):
    """e^r for |r| ≤ ln2/2 in float32: degree 7 of the Taylor series."""
    c0, c1, c2, c3, c4, c5, c6, c7 = _TAYLOR32
    return ((((((c0 * r + c1) * r + c2) * r + c3) * r + c4) * r + c5) * r + c6) * r + c7


@python_fallback(lambda bits: np.int32(bits).view(np.float32))
@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE 754 bit pattern is the int32 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@kernel(inline=True)
def _pow2_32(n):
    """2^n in float32 for -150 < n < 104, as 2^(n+24) from its bits times
    2^-24, so a subnormal result is rounded once."""
    return _float32_from_bits(np.int32((n + 24 + 127) << 23)) * _TWO_POW_M24_32


@kernel(inline=True)
def _exp_nonpositive32(x):
    """e^x for x ≤ 0 in float32; 0 below about -104."""
    y = max(x, _F32(-104.0))
    n = int(y * _INV_LN2_32 - _HALF32)       # round to nearest, y ≤ 0
    fn = _F32(n)
    return _exp_taylor32((y - fn * _LN2_HI_32) - fn * _LN2_LO_32) * _pow2_32(n)


@kernel(inline=True)
def _tanh32(x):
    """tanh(x) in float32 (Cephes' tanhf): within about an ulp."""
    ax = abs(x)
    z = x * x
    c0, c1, c2, c3, c4 = _TANH32
    small = ((((c0 * z + c1) * z + c2) * z + c3) * z + c4) * z * x + x
    y = min(_TWO32 * ax, _F32(18.0))         # tanh(9) rounds to 1 in float32
    n = int(y * _INV_LN2_32 + _HALF32)
    fn = _F32(n)
    e = _exp_taylor32((y - fn * _LN2_HI_32) - fn * _LN2_LO_32) * _pow2_32(n)
    t = _ONE32 - _TWO32 / (e + _ONE32)
    large = t if x >= _ZERO32 else -t
    return small if ax < _F32(0.625) else large


@kernel(inline=True)
def _sigmoid64(x):
    """σ(x) = ½(1 + tanh(x/2)): never overflows."""
    return 0.5 * (1.0 + tanh(0.5 * x))


@kernel(inline=True)
def _sigmoid32(x):
    """σ(x) = ½(1 + tanh(x/2)) in float32."""
    return _HALF32 * (_ONE32 + tanh(_HALF32 * x))


exp_nonpositive = by_precision(_exp_nonpositive64, _exp_nonpositive32)
tanh = by_precision(_tanh64, _tanh32)
sigmoid = by_precision(_sigmoid64, _sigmoid32)
