"""The parameter layout: the one definition of which arrays a network has,
their keys and shapes, and where each sits in the flat vector ``theta``
that the kernels, the optimizers and the model files use.

Layers are numbered from 0; each has one direction, or two when
bidirectional (the second runs from each sequence's last step to its
first). A slot is one direction of one layer, numbered as PyTorch numbers
its initial states: layer by layer, forward before reverse. Slot keys:
``W_x``, ``W_h``, ``b_h`` (and the GRU's ``b_hn``), with the suffix
``_l{layer}`` for layers after the first and ``_reverse`` for the reverse
direction (``W_h_l1_reverse``); then ``W_y`` and ``b_y`` once. A one-layer,
one-direction network has exactly the keys W_x, W_h, b_h, W_y, b_y.

``theta`` holds the slots in order, each as W_x, W_h, b_h (, b_hn), then
W_y, b_y; every array C-ordered. Both twins find the arrays through
:meth:`Architecture.table`, never by computing offsets themselves.
"""
import functools
from typing import NamedTuple

import numpy as np

from fastrnn._cells import CELLS

SLOT_NAMES = ("W_x", "W_h", "b_h", "b_hn")
OUTPUT_NAMES = ("W_y", "b_y")


def slot_key(name, layer, direction):
    """The params key of array ``name`` of a slot: W_x, W_x_l1, W_x_reverse, ..."""
    return name + (f"_l{layer}" if layer else "") + ("_reverse" if direction else "")


class Architecture(NamedTuple):
    """A network's sizes: everything its parameter layout depends on."""
    cell: str
    n_inputs: int          # k
    n_hidden: int          # d
    n_outputs: int         # m
    n_layers: int = 1
    bidirectional: bool = False

    @property
    def n_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def n_slots(self):
        return self.n_layers * self.n_directions

    @property
    def is_deep(self):
        """Whether states carry a leading slot axis (PyTorch's h_0 shape)."""
        return self.n_layers > 1 or self.bidirectional

    def slots(self):
        """(slot, layer, direction) in theta order."""
        for layer in range(self.n_layers):
            for direction in range(self.n_directions):
                yield layer * self.n_directions + direction, layer, direction

    def layer_input_width(self, layer):
        return self.n_inputs if layer == 0 else self.n_directions * self.n_hidden

    def shapes(self):
        """{key: shape} of every array, in theta order (a shared dict: do not modify)."""
        return _shapes(self)

    @property
    def n_params(self):
        return _n_params(self)

    def table(self):
        """int64 (4 · n_slots + 2, 3): for each array, [offset in theta,
        rows, columns]. Rows 4s..4s+3 are slot s's W_x, W_h, b_h, b_hn (a
        vector has 1 column; a cell without b_hn has 0 rows there); the last
        two rows are W_y and b_y. (A shared array: do not modify.)"""
        return _table(self)


# Computed once per architecture: validation runs on every call of the API.
@functools.lru_cache(maxsize=256)
def _shapes(self):
    info = CELLS[self.cell]
    d = self.n_hidden
    rows = info.blocks * d
    shapes = {}
    for _, layer, direction in self.slots():
        arrays = {"W_x": (rows, self.layer_input_width(layer)), "W_h": (rows, d),
                  "b_h": (rows,)}
        if info.extra_bias:
            arrays["b_hn"] = (d,)
        for name, shape in arrays.items():
            shapes[slot_key(name, layer, direction)] = shape
    shapes["W_y"] = (self.n_outputs, self.n_directions * d)
    shapes["b_y"] = (self.n_outputs,)
    return shapes


@functools.lru_cache(maxsize=256)
def _n_params(self):
    return sum(int(np.prod(shape)) for shape in _shapes(self).values())


@functools.lru_cache(maxsize=256)
def _table(self):
    shapes = self.shapes()
    table = np.zeros((4 * self.n_slots + 2, 3), dtype=np.int64)
    offsets, at = {}, 0
    for key, shape in shapes.items():
        offsets[key] = at
        at += int(np.prod(shape))
    entries = [(slot_key(name, layer, direction), 4 * slot + i)
               for slot, layer, direction in self.slots()
               for i, name in enumerate(SLOT_NAMES)]
    entries += [(name, 4 * self.n_slots + i) for i, name in enumerate(OUTPUT_NAMES)]
    for key, row in entries:
        if key in shapes:
            shape = shapes[key]
            table[row] = (offsets[key], shape[0], shape[1] if len(shape) == 2 else 1)
        else:                                # no b_hn: an empty vector
            table[row] = (0, 0, 1)
    return table


@functools.lru_cache(maxsize=256)
def _segments(self):
    """(key, start, stop, shape) of every array in theta."""
    segments, at = [], 0
    for key, shape in _shapes(self).items():
        size = int(np.prod(shape))
        segments.append((key, at, at + size, shape))
        at += size
    return tuple(segments)


def flatten(params, architecture, dtype=np.float64):
    """theta: the arrays of ``params`` one after another, in theta order."""
    theta = np.empty(architecture.n_params, dtype=dtype)
    for key, start, stop, _ in _segments(architecture):
        theta[start:stop] = np.ravel(params[key])
    return theta


def transposed(theta, architecture):
    """thetaT: theta with every matrix stored transposed at its own place
    (W (r, c) as Wᵀ (c, r)), the vectors as they are. The kernels' forward
    pass multiplies with these instead of transposing the weights itself
    (see ``fastrnn.reference.network``)."""
    out = theta.copy()
    for _, start, stop, shape in _segments(architecture):
        if len(shape) == 2:
            out[start:stop] = theta[start:stop].reshape(shape).T.ravel()
    return out


def unflatten(theta, architecture):
    """{key: view into theta} for every array of the architecture."""
    return {key: theta[start:stop].reshape(shape)
            for key, start, stop, shape in _segments(architecture)}
