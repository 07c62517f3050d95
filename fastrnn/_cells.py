"""The recurrent cells fastrnn knows: the one place that says what each is.

Everything else (the parameter layout, both twins, the estimators, the
command line) reads a cell's facts from here.

A cell's kernels receive it as ``cell.tag``, a tuple of ``code`` zeros:
Numba types a tuple by its length, so ``len(cell) == LSTM`` is decided
when a kernel is compiled, and the code of the other cells is neither
compiled nor cached for it (a first run compiles only the cell it uses).
"""
from typing import NamedTuple

from fastrnn._codes import GRU, LSTM, RNN


class Cell(NamedTuple):
    name: str
    code: int              # RNN, LSTM or GRU of fastrnn._codes
    gates: tuple           # names of the row blocks stacked in W_x, W_h, b_h
    states: tuple          # what the cell carries from step to step
    extra_bias: bool       # a b_hn (the GRU's recurrent bias of n)
    cache_blocks: int      # d-wide blocks per step kept for backpropagation
    about: str

    @property
    def blocks(self):
        """Row blocks of W_x, W_h and b_h: 1 (the simple RNN's a_t) or one per gate."""
        return max(1, len(self.gates))

    @property
    def tag(self):
        return (0,) * self.code


CELLS = {cell.name: cell for cell in (
    Cell("rnn", RNN, (), ("h",), False, 0,
         "the simple (Elman) RNN of the notes: h_t = tanh(W_H h_{t-1} + W_X x_t + b_h)"),
    # Cache: the four gates, then c_t.
    Cell("lstm", LSTM, ("f", "i", "o", "g"), ("h", "c"), False, 5,
         "LSTM with the notes' gates f, i, o, g"),
    # Cache: the three gates, then W_hn h_{t-1} + b_hn.
    Cell("gru", GRU, ("r", "u", "n"), ("h",), True, 4,
         "GRU in PyTorch's convention (gates r, u, n)"),
)}
CELL_NAMES = tuple(CELLS)
