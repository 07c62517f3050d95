"""Converting parameters (and gradients) between fastrnn and PyTorch.

Two functions, plain NumPy (torch is never imported):

* ``to_torch_state_dict(params, gradients=False) -> (rnn_state, linear_state)``:
  the state dicts of an ``nn.RNN`` (tanh), ``nn.LSTM`` or ``nn.GRU`` (with
  its ``num_layers`` and ``bidirectional``) and of the ``nn.Linear`` output
  layer that compute what ``params`` computes;
* ``from_torch_state_dict(rnn_state, linear_state, gradients=False) -> params``:
  the inverse.

The cell, the layers and the directions are read off the keys and shapes
(``weight_hh_l0`` is (d, d) for an RNN, (3d, d) for a GRU, (4d, d) for an
LSTM; ``_l{k}`` and ``_reverse`` keys for layers and directions). State
dicts hold NumPy float64 arrays; load them into torch modules with::

    rnn.load_state_dict({key: torch.from_numpy(value) for key, value in rnn_state.items()})

``from_torch_state_dict`` takes ``module.state_dict()`` as it is (torch
tensors of any float dtype and device) or dicts of NumPy arrays.

Layouts (``docs/math.md``). PyTorch stacks the LSTM gates as i, f, g, o;
fastrnn as f, i, o, g. The GRU's r, u (PyTorch's z), n are the same in
both. PyTorch has two biases, ``bias_ih + bias_hh``, where fastrnn has one
``b_h``, except in the GRU's n block, where PyTorch's ``bias_hh`` is
fastrnn's ``b_hn``: converting to torch puts all of b_h in ``bias_ih`` and
zeros (or the GRU's b_hn) in ``bias_hh``; converting from torch adds them.
The output layer is ``nn.Linear(D·d, m)`` (``weight`` = W_y, ``bias`` =
b_y), followed by the softmax that ``nn.CrossEntropyLoss`` applies itself.

Gradients convert with ``gradients=True``. In PyTorch, the gradient of
``bias_hh`` equals that of ``bias_ih`` (they are added), except in the
GRU's n block, where it is ∂L/∂b_hn = Σ_t r_t ⊙ dn_t; so from torch b_h's
gradient is ``bias_ih``'s alone (adding ``bias_hh``'s would double it) and
b_hn's is ``bias_hh``'s n block; to torch, both get what PyTorch's would
hold. Only what fastrnn computes converts: no ``proj_size``; modules built
with ``bias=False`` convert with zero biases.
"""
import re
from collections.abc import Mapping

import numpy as np

from fastrnn._cells import CELLS
from fastrnn._layout import Architecture, slot_key
from fastrnn._validation import as_float64, as_real_array, check_params, describe

# Row blocks of fastrnn's LSTM (f, i, o, g) in PyTorch's order (i, f, g, o). The
# permutation is its own inverse, so it also maps PyTorch's blocks to fastrnn's.
_LSTM_BLOCKS = (1, 0, 3, 2)
_TORCH_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l([0-9]+)(_reverse)?$")
_LINEAR_KEYS = ("weight", "bias")


def _torch_key(name, layer, direction):
    return f"{name}_l{layer}" + ("_reverse" if direction else "")


def _swap_gate_blocks(array, cell, d):
    """fastrnn's gate blocks in PyTorch's order, or back (an involution)."""
    if cell != "lstm":
        return array.copy()
    return np.concatenate([array[b * d:(b + 1) * d] for b in _LSTM_BLOCKS])


def to_torch_state_dict(params, gradients=False):
    """The state dicts of torch modules computing what ``params`` computes
    (with ``gradients=True``: what their ``.grad`` would hold for the
    gradients ``params``).

    Returns ``(rnn_state, linear_state)``: ``rnn_state`` for ``nn.RNN(k, d)``
    (tanh), ``nn.LSTM(k, d)`` or ``nn.GRU(k, d)`` with the network's
    ``num_layers`` and ``bidirectional``, with keys ``weight_ih_l{k}``,
    ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and ``_reverse``);
    ``linear_state`` for ``nn.Linear(D·d, m)``, keys ``weight``, ``bias``.
    Every value is a new C-contiguous float64 NumPy array."""
    net = check_params(params)
    a = net.architecture
    d = a.n_hidden
    rnn_state = {}
    for _, layer, direction in a.slots():
        get = {name: net.params.get(slot_key(name, layer, direction))
               for name in ("W_x", "W_h", "b_h", "b_hn")}
        b_h = get["b_h"]
        if gradients:
            bias_hh = b_h.copy()
            if a.cell == "gru":
                bias_hh[2 * d:] = get["b_hn"]
        else:
            bias_hh = np.zeros_like(b_h)
            if a.cell == "gru":
                bias_hh[2 * d:] = get["b_hn"]
        arrays = {"weight_ih": get["W_x"], "weight_hh": get["W_h"], "bias_ih": b_h,
                  "bias_hh": bias_hh}
        for name, array in arrays.items():
            rnn_state[_torch_key(name, layer, direction)] = _swap_gate_blocks(array, a.cell, d)
    linear_state = {"weight": net.params["W_y"].copy(), "bias": net.params["b_y"].copy()}
    return rnn_state, linear_state


def _as_numpy(value, name):
    """A torch tensor (any dtype or device) or array-like as float64 NumPy."""
    if hasattr(value, "detach"):
        value = np.asarray(value.detach().cpu().double())
    return as_float64(as_real_array(value, name), name)


def _mapping(state, name, what):
    if not isinstance(state, Mapping):
        hint = "; pass module.state_dict()" if hasattr(state, "state_dict") else ""
        raise TypeError(f"{name}: expected the state dict of {what}, got {describe(state)}{hint}")
    return state


def _check_shape(array, shape, name):
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")


def from_torch_state_dict(rnn_state, linear_state, gradients=False):
    """fastrnn params (or, with ``gradients=True``, fastrnn gradients) from
    the state dicts (or the ``.grad`` of the parameters, by the same keys)
    of torch modules.

    ``rnn_state``: ``state_dict()`` of an ``nn.RNN`` (tanh), ``nn.LSTM`` or
    ``nn.GRU`` of any ``num_layers``, either direction; ``linear_state``:
    ``state_dict()`` of the ``nn.Linear`` output layer. Values may be torch
    tensors or arrays. Returns a dict with fastrnn's keys (``docs/math.md``)
    of new C-contiguous float64 NumPy arrays."""
    rnn = _mapping(rnn_state, "rnn_state", "an nn.RNN, nn.LSTM or nn.GRU")
    linear = _mapping(linear_state, "linear_state", "an nn.Linear")
    found = {}
    for key in rnn:
        match = _TORCH_KEY.match(key) if isinstance(key, str) else None
        if not match:
            raise ValueError(f"rnn_state: unexpected key {key!r}; expected weight_ih_l0, "
                             f"weight_hh_l0, bias_ih_l0, bias_hh_l0 (and the same for further "
                             f"layers and _reverse); proj_size has no fastrnn equivalent")
        found[match.group(1), int(match.group(2)), bool(match.group(3))] = key
    extra = [key for key in linear if key not in _LINEAR_KEYS]
    if extra:
        raise ValueError(f"linear_state: unexpected keys {extra}; expected {_LINEAR_KEYS}")
    first = [key for key in ("weight_ih", "weight_hh") if (key, 0, False) not in found]
    if first:
        raise ValueError(f"rnn_state: missing keys {[key + '_l0' for key in first]}; expected "
                         f"the state dict of an nn.RNN, nn.LSTM or nn.GRU")
    if "weight" not in linear:
        raise ValueError("linear_state: missing key 'weight'")
    W_h0 = _as_numpy(rnn[found["weight_hh", 0, False]], "rnn_state['weight_hh_l0']")
    blocks = {cell.blocks: cell.name for cell in CELLS.values()}
    if W_h0.ndim != 2 or W_h0.shape[1] < 1 or W_h0.shape[0] % W_h0.shape[1] or \
            W_h0.shape[0] // W_h0.shape[1] not in blocks:
        raise ValueError(f"rnn_state['weight_hh_l0']: expected shape (d, d) for an nn.RNN, "
                         f"(3d, d) for an nn.GRU or (4d, d) for an nn.LSTM, got {W_h0.shape}")
    rows, d = W_h0.shape
    cell = blocks[rows // d]
    n_layers = 1 + max(layer for _, layer, _ in found)
    bidirectional = any(reverse for _, _, reverse in found)
    W_x0 = _as_numpy(rnn[found["weight_ih", 0, False]], "rnn_state['weight_ih_l0']")
    if W_x0.ndim != 2 or W_x0.shape[0] != rows or W_x0.shape[1] < 1:
        raise ValueError(f"rnn_state['weight_ih_l0']: expected shape ({rows}, k) with k >= 1 "
                         f"(from weight_hh_l0 {W_h0.shape}), got {W_x0.shape}")
    W_y = _as_numpy(linear["weight"], "linear_state['weight']")
    D = 2 if bidirectional else 1
    if W_y.ndim != 2 or W_y.shape[1] != D * d or W_y.shape[0] < 1:
        raise ValueError(f"linear_state['weight']: expected shape (m, {D * d}) with m >= 1, "
                         f"got {W_y.shape}")
    a = Architecture(cell, W_x0.shape[1], d, W_y.shape[0], n_layers, bidirectional)
    expected = {(name, layer, bool(direction))
                for _, layer, direction in a.slots() for name in ("weight_ih", "weight_hh")}
    missing = sorted(_torch_key(n, layer, r) for n, layer, r in expected - set(found))
    unexpected = sorted(key for (n, layer, r), key in found.items()
                        if (n, layer, r) not in expected and n.startswith("weight")
                        or layer >= n_layers)
    if missing or unexpected:
        raise ValueError(f"rnn_state: missing keys {missing}, unexpected {unexpected}; the keys "
                         f"of a {n_layers}-layer{' bidirectional' if bidirectional else ''} "
                         f"module")
    params = {}
    for _, layer, direction in a.slots():
        def get(name, shape, optional=False):
            key = found.get((name, layer, bool(direction)))
            if key is None:
                if optional:
                    return np.zeros(shape)
                raise ValueError(f"rnn_state: missing key {_torch_key(name, layer, direction)!r}")
            array = _as_numpy(rnn[key], f"rnn_state[{key!r}]")
            _check_shape(array, shape, f"rnn_state[{key!r}]")
            return _swap_gate_blocks(array, cell, d)
        width = a.layer_input_width(layer)
        W_x, W_h = get("weight_ih", (rows, width)), get("weight_hh", (rows, d))
        bias_ih, bias_hh = get("bias_ih", (rows,), True), get("bias_hh", (rows,), True)
        if gradients:
            b_h = bias_ih
        else:
            b_h = bias_ih + bias_hh
        if cell == "gru":
            b_h[2 * d:] = bias_ih[2 * d:]                # b_xn; PyTorch's b_hn is fastrnn's
            params[slot_key("b_hn", layer, direction)] = bias_hh[2 * d:].copy()
        params[slot_key("W_x", layer, direction)] = W_x
        params[slot_key("W_h", layer, direction)] = W_h
        params[slot_key("b_h", layer, direction)] = b_h
    m = W_y.shape[0]
    b_y = np.zeros(m) if "bias" not in linear else _as_numpy(linear["bias"], "linear_state['bias']")
    _check_shape(b_y, (m,), "linear_state['bias']")
    params["W_y"], params["b_y"] = W_y, b_y
    return {key: np.array(params[key], dtype=np.float64, order="C") for key in a.shapes()}
