"""Dropout masks between layers as kernels: the twin of
``fastrnn.reference.dropout`` (read that module for the generator)."""
import numpy as np

from fastrnn._jit import kernel, python_fallback

GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64_python(counter, seed):
    """splitmix64 on Python integers, wrapped to 64 bits by hand."""
    mask = (1 << 64) - 1
    z = (int(seed) + (int(counter) + 1) * int(GAMMA)) & mask
    z = ((z ^ (z >> 30)) * int(MIX1)) & mask
    z = ((z ^ (z >> 27)) * int(MIX2)) & mask
    return np.uint64(z ^ (z >> 31))


@python_fallback(_splitmix64_python)
@kernel(inline=True)
def splitmix64(counter, seed):
    """Output number ``counter`` (uint64) of splitmix64 started at ``seed``."""
    z = seed + (counter + np.uint64(1)) * GAMMA
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


@kernel
def dropout_mask(seed, p, layer, n_between, row0, mask):
    """Fill ``mask`` (D, N, d) with 0 or 1/(1 - p) for the output of ``layer``."""
    D, N, d = mask.shape
    width = np.uint64(D * d)
    kept = mask.dtype.type(1.0 / (1.0 - p))
    seed = np.uint64(seed)
    for n in range(N):
        base = (np.uint64(row0 + n) * np.uint64(n_between) + np.uint64(layer)) * width
        for j in range(D):
            for i in range(d):
                bits = splitmix64(base + np.uint64(j * d + i), seed)
                u = float(bits >> np.uint64(11)) * 2.0 ** -53
                mask[j, n, i] = kept if u >= p else 0.0
