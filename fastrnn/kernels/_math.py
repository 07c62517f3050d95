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
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fastrnn._jit import kernel

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


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose IEEE 754 bit pattern is the int64 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@kernel(inline=True)
def exp_nonpositive(y):
    """e^y for y ≤ 0 (softmax's shifted logits), vectorisable; 0 below
    about -745, where e^y is below the smallest float64.

    The power of two is built from its bits, 2^(n+54) times 2^-54, so a
    result in the subnormal range is rounded once, correctly."""
    y = max(y, -746.0)
    n = int(y * _INV_LN2 - 0.5)               # round to nearest, y ≤ 0
    p = _exp_taylor((y - n * _LN2_HI) - n * _LN2_LO)
    return (p * _float_from_bits((n + 54 + 1023) << 52)) * 5.551115123125783e-17


@kernel(inline=True)
def tanh(x):
    """tanh(x), within a few units in the last place of the exact value."""
    ax = abs(x)
    z = x * x
    small = x + x * z * (((-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
                          - 1.61468768441708447952e3)
                         / (((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
                            + 4.84406305325125486048e3))
    large = 1.0 - 2.0 / (_exp_reduced(min(2.0 * ax, 40.0)) + 1.0)
    if x < 0.0:
        large = -large
    return small if ax < 0.625 else large


@kernel(inline=True)
def sigmoid(x):
    """σ(x) = ½(1 + tanh(x/2)): never overflows."""
    return 0.5 * (1.0 + tanh(0.5 * x))
