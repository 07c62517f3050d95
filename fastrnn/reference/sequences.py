"""How B sequences of different lengths are laid out and walked.

The B sequences are packed one after another along the first axis of every
per-step array: sequence b is rows ``offsets[b]:offsets[b + 1]``. A
recurrence runs step by step, and at step t only the sequences with more
than t steps take part; sorted longest first (:func:`longest_first`) they
are a prefix of that order, ``order[:running[t]]``. The reverse direction
of a bidirectional layer counts t from each sequence's own last step, so it
never starts in padding: there are no pads. Twin of
``fastrnn.kernels.sequences``.
"""
import numpy as np


def longest_first(offsets):
    """Sequence indices by decreasing length (ties in input order), and
    running[t], the number of sequences with more than t steps."""
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")
    counts = np.bincount(lengths, minlength=lengths.max() + 1)      # sequences of each length
    running = counts[::-1].cumsum()[::-1][1:]                         # lengths > t
    return order, running


def step_rows(offsets, seqs, t, reverse):
    """The rows of step t of sequences ``seqs``: t steps after each one's
    first row, or, in the reverse direction, before its last."""
    if reverse:
        return offsets[seqs + 1] - 1 - t
    return offsets[seqs] + t


def previous_rows(S, s0, offsets, reverse):
    """s_{t-1} for every row of S (N, ...): the row before in the direction
    of travel, or the initial state s0 (B, ...) at a sequence's first step."""
    S_prev = np.empty_like(S)
    if reverse:
        S_prev[:-1] = S[1:]
        S_prev[offsets[1:] - 1] = s0
    else:
        S_prev[1:] = S[:-1]
        S_prev[offsets[:-1]] = s0
    return S_prev
