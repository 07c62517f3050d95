"""Dropout between layers, drawn by a counter-based generator so both twins
make identical masks from a seed, however training is cut into calls.

Element j (a unit of the layer's output, directions side by side) of row n
of the output of layer l (l < L - 1) is kept when u ≥ p, where u in [0, 1)
is the top 53 bits of splitmix64 output number
``((row0 + n) · (L - 1) + l) · W + j`` of the stream started at ``seed``
(W = D·d, row0 the first row's number within the update), and then scaled
by 1 / (1 - p) (inverted dropout). Twin of ``fastrnn.kernels.dropout``.
"""
import numpy as np

GAMMA = np.uint64(0x9E3779B97F4A7C15)       # splitmix64's increment: 2^64 / golden ratio
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(counter, seed):
    """Output number ``counter`` (uint64 array) of splitmix64 started at ``seed``."""
    z = seed + (counter + np.uint64(1)) * GAMMA
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


def dropout_mask(seed, p, layer, n_between, row0, mask):
    """Fill ``mask`` (D, N, d) with 0 or 1/(1 - p) for the output of ``layer``."""
    D, N, d = mask.shape
    rows = np.arange(row0, row0 + N, dtype=np.uint64)
    units = np.arange(D * d, dtype=np.uint64)
    counter = ((rows[:, None] * np.uint64(n_between) + np.uint64(layer)) * np.uint64(D * d)
               + units)
    u = (splitmix64(counter, np.uint64(seed)) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    keep = (u >= p).reshape(N, D, d).transpose(1, 0, 2)
    mask[:] = np.where(keep, 1.0 / (1.0 - p), 0.0)
