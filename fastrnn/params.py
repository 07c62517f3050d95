"""Creating parameter dicts."""
from typing import Any

import numpy as np

from fastrnn import _limits
from fastrnn._cells import CELLS
from fastrnn._layout import Architecture, slot_key
from fastrnn._typing import Array, RandomState
from fastrnn._validation import (check_bool, check_cell, check_dtype, check_network_size,
                                 check_positive_int, check_random_state)


def init_params(n_inputs: int, n_hidden: int, n_outputs: int | None = None, cell: str = "rnn",
                random_state: RandomState = None, *, n_layers: int = 1,
                bidirectional: bool = False, dtype: Any = "float64") -> dict[str, Array]:
    """New parameters for a network with k = n_inputs, d = n_hidden and
    m = n_outputs (default: n_inputs, next-symbol prediction as in the notes).

    Returns a dict of C-contiguous arrays of ``dtype`` ("float64", or
    "float32": a network computes in its parameters' precision; the draws are
    the float64 ones, rounded). For one layer and one
    direction: ``W_x`` (G·d, k), ``W_h`` (G·d, d), ``b_h`` (G·d,), ``W_y``
    (m, d), ``b_y`` (m,), where G = 1 for ``cell="rnn"``, 4 for ``"lstm"``
    (gate blocks f, i, o, g) and 3 for ``"gru"`` (r, u, n; the GRU also has
    ``b_hn`` (d,)). With ``n_layers`` > 1 or ``bidirectional=True`` each
    layer and direction has its own W_x, W_h, b_h (, b_hn), keyed with the
    suffixes ``_l1``, ``_l2``, ... and ``_reverse`` (``W_h_l1_reverse``);
    layers above the first read the layer below (d inputs, 2d when
    bidirectional), and W_y is (m, 2d) when bidirectional. See
    ``docs/math.md`` for the equations and layouts.

    Init scheme (PyTorch's for its recurrent layers and nn.Linear, without
    its random biases): every weight is drawn uniformly from [-1/√d, 1/√d];
    the biases are 0, except the LSTM forget-gate bias, which is 1 so that
    the cell starts out remembering (Jozefowicz et al., 2015). The draws are
    made layer by layer, forward before reverse, W_x then W_h, and W_y last,
    from ``np.random.default_rng(random_state)``: the same ``random_state``
    gives the same parameters on every machine.
    """
    k = check_positive_int(n_inputs, "n_inputs", _limits.MAX_SIZE)
    d = check_positive_int(n_hidden, "n_hidden", _limits.MAX_SIZE)
    m = k if n_outputs is None else check_positive_int(n_outputs, "n_outputs", _limits.MAX_SIZE)
    cell = check_cell(cell)
    layers = check_positive_int(n_layers, "n_layers", _limits.MAX_LAYERS)
    architecture = Architecture(cell, k, d, m, layers, check_bool(bidirectional, "bidirectional"))
    check_network_size(architecture)
    dtype = check_dtype(dtype)
    rng = check_random_state(random_state)
    bound = 1.0 / np.sqrt(d)
    params = {}
    for key, shape in architecture.shapes().items():
        if key.startswith("W_") and key != "W_y":
            params[key] = rng.uniform(-bound, bound, size=shape)
        elif key != "W_y":
            params[key] = np.zeros(shape)
    params["W_y"] = rng.uniform(-bound, bound, size=architecture.shapes()["W_y"])
    if cell == "lstm":
        forget = CELLS["lstm"].gates.index("f")
        for _, layer, direction in architecture.slots():
            params[slot_key("b_h", layer, direction)][forget * d:(forget + 1) * d] = 1.0
    return {key: params[key].astype(dtype, copy=False) for key in architecture.shapes()}
