"""The named benchmark cases, shared by asv (``benchmarks/``) and
``fastrnn bench``: one definition, so both measure the same thing.

Each case is a network size and a batch: k inputs (one-hot vectors, token
ids, or dense random vectors), d hidden units, B sequences of T steps, and
m = k output classes (next-symbol prediction, as in the notes).
"""
from typing import NamedTuple

import numpy as np

from fastrnn.params import init_params


class Case(NamedTuple):
    name: str
    k: int
    d: int
    T: int
    B: int
    inputs: str          # "onehot" (float one-hot rows), "ids" or "dense" (float normal)
    about: str


CASES = {case.name: case for case in (
    Case("toy", 4, 3, 3, 1, "onehot", "the assignment of the lecture notes"),
    Case("charlm", 65, 100, 25, 1, "ids", "min-char-rnn: 65 characters, 25-step chunks"),
    Case("batch", 64, 128, 50, 32, "dense", "a mini-batch of 32 sequences"),
    Case("wide", 64, 256, 50, 32, "dense", "the same with 256 hidden units"),
    Case("long", 8, 32, 1000, 4, "dense", "few units, long sequences"),
)}


def make_case(name, cell="rnn", seed=0, n_layers=1, bidirectional=False):
    """(params, X, y) for a named case; the same seed gives the same arrays.
    ``n_layers`` and ``bidirectional``: a deeper network on the same data."""
    case = CASES[name]
    rng = np.random.default_rng(seed)
    params = init_params(case.k, case.d, cell=cell, random_state=rng, n_layers=n_layers,
                         bidirectional=bidirectional)
    if name == "toy":                              # exactly the notes' arrays
        X = np.eye(4)[[0, 1, 2]]
        y = np.array([1, 2, 3])
        return params, X, y
    shape = (case.T,) if case.B == 1 else (case.B, case.T)
    y = rng.integers(0, case.k, size=shape)
    if case.inputs == "ids":
        X = rng.integers(0, case.k, size=shape)
    elif case.inputs == "onehot":
        X = np.eye(case.k)[rng.integers(0, case.k, size=shape)]
    else:
        X = rng.standard_normal(shape + (case.k,))
    return params, X, y
