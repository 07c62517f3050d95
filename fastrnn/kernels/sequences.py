"""How packed sequences are walked: the twin of
``fastrnn.reference.sequences`` (read that module)."""
import numpy as np

from fastrnn._jit import kernel


@kernel
def longest_first(offsets):
    """Sequence indices by decreasing length (ties in input order), and
    running[t], the number of sequences with more than t steps.

    A counting sort by length: stable, O(B + T), and cheap to compile
    (NumPy's argsort is a large function to compile for one call)."""
    B = offsets.shape[0] - 1
    if B < 1:
        raise ValueError("longest_first: offsets must hold at least one sequence")
    longest = 0
    for b in range(B):
        length = offsets[b + 1] - offsets[b]
        if length < 1:
            raise ValueError("longest_first: every sequence needs at least one step")
        longest = max(longest, length)
    counts = np.zeros(longest + 1, dtype=np.int64)       # sequences of each length
    for b in range(B):
        counts[offsets[b + 1] - offsets[b]] += 1
    running = np.empty(longest, dtype=np.int64)
    start = np.empty(longest + 1, dtype=np.int64)        # first place of each length
    above = 0
    for length in range(longest, 0, -1):
        start[length] = above
        above += counts[length]
        running[length - 1] = above
    order = np.empty(B, dtype=np.int64)
    for b in range(B):
        length = offsets[b + 1] - offsets[b]
        order[start[length]] = b
        start[length] += 1
    return order, running


@kernel(inline=True)
def step_row(offsets, b, t, reverse):
    """The row of step t of sequence b (counted from its last step when reverse)."""
    if reverse:
        return offsets[b + 1] - 1 - t
    return offsets[b] + t
