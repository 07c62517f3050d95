"""Converting parameters between fastrnn and PyTorch.

Two functions, plain NumPy (torch is never imported):

* ``to_torch_state_dict(params) -> (rnn_state, linear_state)``: the state
  dicts of a single-layer ``nn.RNN`` (tanh) or ``nn.LSTM`` and of the
  ``nn.Linear`` output layer that compute what ``params`` computes;
* ``from_torch_state_dict(rnn_state, linear_state) -> params``: the inverse.

The cell is read off the shapes (``weight_hh_l0`` is (d, d) for an RNN,
(4d, d) for an LSTM). The state dicts hold NumPy float64 arrays; load them
into torch modules with::

    rnn.load_state_dict({key: torch.from_numpy(value) for key, value in rnn_state.items()})

``from_torch_state_dict`` takes ``module.state_dict()`` as it is (torch
tensors, of any float dtype and device) or dicts of NumPy arrays.

Layouts. PyTorch stacks the LSTM gates as i, f, g, o; fastrnn as f, i, o, g
(SPEC.md). PyTorch adds two biases, ``bias_ih_l0 + bias_hh_l0``, where
fastrnn has one ``b_h``: converting to torch puts all of ``b_h`` in
``bias_ih_l0`` and zeros in ``bias_hh_l0``; converting from torch sums the
two. Only what fastrnn computes converts: one layer, one direction, no
``proj_size``; modules built with ``bias=False`` convert with zero biases.
The output layer is ``nn.Linear(d, m)`` (``weight`` = W_y, ``bias`` = b_y),
followed by a softmax that torch's ``nn.CrossEntropyLoss`` applies itself.

Gradients (the ``.grad`` of each parameter) convert with
``from_torch_state_dict`` too, but leave ``bias_hh_l0``'s out: it equals
``bias_ih_l0``'s, which is already the gradient of b_h, and the sum would
double it.
"""
from collections.abc import Mapping

import numpy as np

from fastrnn._validation import _as_float64, _describe, as_real_array, check_params

# Row blocks of fastrnn's (f, i, o, g) in PyTorch's order (i, f, g, o). The
# permutation is its own inverse, so it also maps PyTorch's blocks to fastrnn's.
_LSTM_BLOCKS = (1, 0, 3, 2)

_RNN_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
_LINEAR_KEYS = ("weight", "bias")


def _swap_gate_blocks(array, d):
    """Reorder the four row blocks of an LSTM array, (4d, ...)."""
    return np.concatenate([array[b * d:(b + 1) * d] for b in _LSTM_BLOCKS])


def to_torch_state_dict(params):
    """The state dicts of torch modules computing what ``params`` computes.

    Returns ``(rnn_state, linear_state)``: ``rnn_state`` for a single-layer
    ``nn.RNN(k, d)`` (tanh) or ``nn.LSTM(k, d)``, with keys ``weight_ih_l0``,
    ``weight_hh_l0``, ``bias_ih_l0`` (all of b_h), ``bias_hh_l0`` (zeros);
    ``linear_state`` for ``nn.Linear(d, m)``, with keys ``weight``, ``bias``.
    Every value is a new C-contiguous float64 NumPy array.
    """
    net = check_params(params)
    W_x, W_h, b_h, W_y, b_y = net.arrays
    if net.cell == "lstm":
        d = net.n_hidden
        W_x, W_h, b_h = (_swap_gate_blocks(a, d) for a in (W_x, W_h, b_h))
    rnn_state = {
        "weight_ih_l0": W_x.copy(),
        "weight_hh_l0": W_h.copy(),
        "bias_ih_l0": b_h.copy(),
        "bias_hh_l0": np.zeros_like(b_h),
    }
    linear_state = {"weight": W_y.copy(), "bias": b_y.copy()}
    return rnn_state, linear_state


def _as_numpy(value, name):
    """A torch tensor (any dtype or device) or array-like as float64 NumPy."""
    if hasattr(value, "detach"):
        value = np.asarray(value.detach().cpu())
    return _as_float64(as_real_array(value, name), name)


def _read_state(state, keys, optional, name, what):
    """The arrays of a state dict, refusing keys fastrnn cannot represent;
    missing optional keys (the biases of ``bias=False`` modules) give None."""
    if not isinstance(state, Mapping):
        hint = "; pass module.state_dict()" if hasattr(state, "state_dict") else ""
        raise TypeError(f"{name}: expected the state dict of {what}, got {_describe(state)}{hint}")
    extra = [key for key in state if key not in keys]
    if extra:
        raise ValueError(f"{name}: unexpected keys {extra}; expected the state dict of {what} "
                         f"(keys {keys}); several layers, bidirectional modules and proj_size "
                         f"have no fastrnn equivalent")
    missing = [key for key in keys if key not in state and key not in optional]
    if missing:
        raise ValueError(f"{name}: missing keys {missing}; expected the state dict of {what} "
                         f"(keys {keys})")
    return {key: _as_numpy(state[key], f"{name}['{key}']") if key in state else None
            for key in keys}


def _check_shape(array, shape, name):
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")


def from_torch_state_dict(rnn_state, linear_state):
    """fastrnn params from the state dicts of torch modules.

    ``rnn_state``: ``state_dict()`` of a single-layer, unidirectional
    ``nn.RNN`` (tanh) or ``nn.LSTM``; ``linear_state``: ``state_dict()`` of
    the ``nn.Linear`` output layer. Values may be torch tensors or arrays.
    Returns a params dict (keys ``W_x``, ``W_h``, ``b_h``, ``W_y``, ``b_y``)
    of new C-contiguous float64 NumPy arrays: b_h = bias_ih_l0 + bias_hh_l0,
    LSTM gate blocks reordered from torch's (i, f, g, o) to (f, i, o, g).
    """
    rnn = _read_state(rnn_state, _RNN_KEYS, ("bias_ih_l0", "bias_hh_l0"), "rnn_state",
                      "an nn.RNN or nn.LSTM")
    linear = _read_state(linear_state, _LINEAR_KEYS, ("bias",), "linear_state", "an nn.Linear")

    W_h = rnn["weight_hh_l0"]
    if W_h.ndim != 2 or W_h.shape[1] < 1 or W_h.shape[0] not in (W_h.shape[1], 4 * W_h.shape[1]):
        raise ValueError(f"rnn_state['weight_hh_l0']: expected shape (d, d) for an nn.RNN or "
                         f"(4d, d) for an nn.LSTM, got {W_h.shape}")
    rows, d = W_h.shape
    W_x = rnn["weight_ih_l0"]
    if W_x.ndim != 2 or W_x.shape[0] != rows or W_x.shape[1] < 1:
        raise ValueError(f"rnn_state['weight_ih_l0']: expected shape ({rows}, k) with k >= 1 "
                         f"(from weight_hh_l0 {W_h.shape}), got {W_x.shape}")
    b_h = np.zeros(rows)
    for key in ("bias_ih_l0", "bias_hh_l0"):
        if rnn[key] is not None:
            _check_shape(rnn[key], (rows,), f"rnn_state['{key}']")
            b_h = b_h + rnn[key]
    W_y = linear["weight"]
    if W_y.ndim != 2 or W_y.shape[1] != d or W_y.shape[0] < 1:
        raise ValueError(f"linear_state['weight']: expected shape (m, {d}) with m >= 1 (d from "
                         f"rnn_state['weight_hh_l0'] {W_h.shape}), got {W_y.shape}")
    m = W_y.shape[0]
    b_y = np.zeros(m) if linear["bias"] is None else linear["bias"]
    _check_shape(b_y, (m,), "linear_state['bias']")

    if rows == 4 * d:
        W_x, W_h, b_h = (_swap_gate_blocks(a, d) for a in (W_x, W_h, b_h))
    params = {"W_x": W_x, "W_h": W_h, "b_h": b_h, "W_y": W_y, "b_y": b_y}
    return {key: np.array(value, dtype=np.float64, order="C") for key, value in params.items()}
