"""Convert once: every public entry point passes its arguments through here.

What comes out is what the kernels may assume (Numba checks no bounds, so a
bad id here would read or corrupt memory there): C-contiguous float64 arrays
with finite values, int64 ids inside their range, shapes that agree with
each other. Every error names the argument, says what was expected and what
was given. Nothing here writes into a caller's array: conversion copies when
it must and never otherwise.
"""
import numbers
import re
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from fastrnn import _limits
from fastrnn._cells import CELL_NAMES, CELLS
from fastrnn._codes import CROSS_ENTROPY, LOSSES, OUTPUTS
from fastrnn._layout import Architecture, flatten, slot_key, unflatten
from fastrnn._sklearn import InputError
from fastrnn.kernels._checks import all_finite, first_bad_distribution, ids_within


# ------------------------------------------------------------------ scalars
def describe(value):
    """A short description of a value for an error message."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return f"{type(value).__name__} {value!r}"[:120]


def check_positive_int(value, name, maximum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive integer, got {describe(value)}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected a positive integer of at most {maximum:,}, "
                         f"got {value}")
    return int(value)


def check_choice(value, choices, name):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")
    return value


def check_cell(cell):
    return check_choice(cell, CELL_NAMES, "cell")


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {describe(value)}")
    return bool(value)


def check_random_state(random_state, name="random_state", make=True):
    """``np.random.default_rng(random_state)`` for None, an int >= 0 or a
    Generator (returned as it is); ``make=False`` only checks the type."""
    if random_state is not None and not isinstance(random_state, np.random.Generator) and (
            isinstance(random_state, (bool, np.bool_))
            or not isinstance(random_state, numbers.Integral) or random_state < 0):
        raise TypeError(f"{name}: expected None, a non-negative integer or a "
                        f"numpy.random.Generator, got {describe(random_state)}")
    if not make:
        return None
    if isinstance(random_state, numbers.Integral):
        random_state = int(random_state)
    return np.random.default_rng(random_state)


# ------------------------------------------------------------------- arrays
def _is_sparse(value):
    """A SciPy sparse matrix or array (told without importing SciPy)."""
    return type(value).__module__.startswith("scipy.sparse") and hasattr(value, "toarray")


def _refuse_sparse(value, name):
    if _is_sparse(value):
        raise TypeError(f"{name}: sparse input is not supported, got a {type(value).__name__}; "
                        f"pass a dense array ({name}.toarray())")


def as_array_like(value, name):
    """An array-like that is not a list or tuple (a pandas object, anything
    with ``__array__``) as an ndarray, so that the shape rules of y and
    sample_weight read its shape; lists, tuples, None and ndarrays as given.
    Sparse input is refused."""
    _refuse_sparse(value, name)
    if hasattr(value, "__array__") and not isinstance(value, np.ndarray):
        return np.asarray(value)
    return value


def shape_of(value):
    """np.shape, or None for a ragged nesting NumPy cannot give a shape
    (NumPy's own error would name no argument)."""
    try:
        return np.shape(value)
    except ValueError:
        return None


def as_real_array(value, name):
    """np.asarray for numeric data, refusing what cannot be a real number."""
    if type(value) is np.ndarray:                # nothing to convert (a streaming step's cost)
        array = value
    else:
        if value is None:
            raise TypeError(f"{name}: expected an array, got None")
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{name}: expected an array of numbers, got a string "
                            f"{value!r:.60}")
        _refuse_sparse(value, name)
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name}: expected an array of numbers, could not convert "
                            f"{type(value).__name__}: {exc}") from None
    kind = array.dtype.kind
    if kind == "b":
        raise TypeError(f"{name}: expected float or integer numbers, got booleans; "
                        f"convert with .astype(float) or .astype(int)")
    if kind == "c":
        raise InputError(f"{name}: Complex data not supported; expected float or integer "
                         f"numbers, got dtype {array.dtype}")
    if kind not in "fiu":
        raise TypeError(f"{name}: expected float or integer numbers, got dtype {array.dtype}")
    return array


def _writeable(array):
    """A read-only array is a different type to Numba, which would compile
    every kernel again for it (seconds); the copy costs microseconds."""
    return array if array.flags.writeable else array.copy()


FLOAT_DTYPES = ("float64", "float32")


def check_dtype(value, name="dtype"):
    """float64 or float32, given as anything np.dtype takes ("float32",
    np.float32, np.dtype("float32")); the np.dtype."""
    try:
        dtype = np.dtype(value) if value is not None else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.name not in FLOAT_DTYPES:
        raise ValueError(f"{name}: expected float64 or float32, got {value!r}")
    if not dtype.isnative:                  # the kernels compute in the machine's byte order
        raise ValueError(f"{name}: expected float64 or float32 in the machine's byte "
                         f"order, got {value!r}")
    return dtype


def as_float64(array, name, dtype=np.float64):
    """C-contiguous ``dtype`` (float64 or float32) with finite values (a copy
    only when needed)."""
    if type(array) is np.ndarray and array.dtype == dtype:    # nothing to convert
        out = _writeable(np.ascontiguousarray(array))
    else:
        with np.errstate(over="ignore"):           # a huge value: refused below
            out = _writeable(np.ascontiguousarray(array, dtype=dtype))
    if not all_finite(out.reshape(-1)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        given = array[bad] if isinstance(array, np.ndarray) and array.shape == out.shape else out[bad]
        limit = f" (float32 holds at most {np.finfo(np.float32).max:.3g})" \
            if out.dtype == np.float32 and np.isfinite(given) else ""
        raise ValueError(f"{name}: expected finite numbers (no NaN or inf){limit}, found {given} "
                         f"at index {bad}")
    return out


def as_ids(array, n_classes, name, what):
    """int64 ids in [0, n_classes). ``n_classes=None``: the ids decide it
    (largest + 1), up to ``_limits.MAX_LEARNED_CLASSES``.

    The range is checked on the caller's values, before any conversion: an
    unsigned id of 2**63 or more would wrap to a negative int64."""
    bound = n_classes if n_classes is not None else _limits.MAX_LEARNED_CLASSES
    flat = array.reshape(-1)
    if not flat.dtype.isnative:                  # the compiled check reads native integers
        flat = flat.astype(flat.dtype.newbyteorder("="))
    if array.size and not ids_within(flat, bound):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= bound:
            bad = low if low < 0 else high
            where = tuple(int(i) for i in np.argwhere(array == array.dtype.type(bad))[0])
            if n_classes is None and low >= 0:
                raise ValueError(
                    f"{name}: {what} are learned from the data up to "
                    f"{_limits.MAX_LEARNED_CLASSES - 1}, found {bad} at index {where}; "
                    f"for more classes give their number explicitly "
                    f"({'n_inputs' if what == 'token ids' else 'n_outputs'}=...)")
            raise ValueError(f"{name}: {what} must lie in [0, {bound - 1}], "
                             f"found {bad} at index {where}")
    return _writeable(np.ascontiguousarray(array, dtype=np.int64))


# --------------------------------------------------------------- parameters
class Network(NamedTuple):
    """Validated parameters: the architecture, the flat vector theta and the
    layout table the kernels read it with, and ``params``, views of theta
    under the keys of ``fastrnn._layout``."""
    architecture: Architecture
    theta: np.ndarray
    table: np.ndarray
    params: dict

    @property
    def cell(self):
        return self.architecture.cell

    @property
    def n_inputs(self):
        return self.architecture.n_inputs

    @property
    def n_hidden(self):
        return self.architecture.n_hidden

    @property
    def n_outputs(self):
        return self.architecture.n_outputs

    @property
    def n_states(self):
        return len(CELLS[self.cell].states)

    @property
    def dtype(self):
        """float64, or float32: the precision everything is computed in."""
        return self.theta.dtype

    @property
    def dims(self):
        """int64 [n_layers, n_directions, n_states, cache_blocks] for the kernels."""
        a = self.architecture
        return np.array([a.n_layers, a.n_directions, self.n_states,
                         CELLS[a.cell].cache_blocks], dtype=np.int64)


def network_from_theta(theta, architecture):
    """A Network around an existing theta (not copied)."""
    return Network(architecture, theta, architecture.table(), unflatten(theta, architecture))


_LAYER_KEY = re.compile(r"^(W_x|W_h|b_h|b_hn)(?:_l([1-9][0-9]*))?(_reverse)?$")


def infer_architecture(params, name="params"):
    """The Architecture that a dict of arrays describes, from its keys and
    the shapes of W_h and W_y (``params`` holds arrays, not yet checked)."""
    if "W_h" not in params or "W_y" not in params:
        raise ValueError(f"{name}: expected the keys W_x, W_h, b_h, W_y, b_y (and for deeper "
                         f"or bidirectional networks the same per layer and direction), "
                         f"got {sorted(params)}")
    layers, reverse = 0, False
    for key in params:
        match = _LAYER_KEY.match(key)
        if match:
            layers = max(layers, int(match.group(2) or 0) + 1)
            reverse = reverse or bool(match.group(3))
    W_h, W_y = params["W_h"], params["W_y"]
    for key, array in (("W_h", W_h), ("W_y", W_y)):
        if array.ndim != 2:
            raise ValueError(f"{name}['{key}']: expected 2 dimensions, got shape {array.shape}")
    rows, d = W_h.shape
    blocks = {cell.blocks: cell.name for cell in CELLS.values()}
    if d < 1 or rows % d or rows // d not in blocks:
        raise ValueError(f"{name}['W_h']: expected shape (d, d) for a simple RNN, (3d, d) for "
                         f"a GRU or (4d, d) for an LSTM, with d >= 1, got {W_h.shape}")
    cell = blocks[rows // d]
    W_x = params.get("W_x")
    k = W_x.shape[1] if W_x is not None and W_x.ndim == 2 else None   # else: refused below
    if k == 0:
        raise ValueError(f"{name}['W_x']: expected at least one input column, got shape "
                         f"{W_x.shape}")
    m = W_y.shape[0]
    if m < 1:
        raise ValueError(f"{name}['W_y']: expected at least one output row, got shape "
                         f"{W_y.shape}")
    return Architecture(cell, k or 1, d, m, layers, reverse)


def check_params(params, name="params"):
    """Validate a parameter dict; infer the architecture from its keys and
    shapes. Returns a Network holding a new flat theta: float32 when every
    array is float32 (the network then computes in float32), else float64."""
    if not isinstance(params, Mapping):
        raise TypeError(f"{name}: expected a dict of arrays (keys W_x, W_h, b_h, W_y, b_y), "
                        f"got {describe(params)}")
    arrays = {key: as_real_array(value, f"{name}['{key}']") for key, value in params.items()}
    architecture = infer_architecture(arrays, name)
    shapes = architecture.shapes()
    missing = [key for key in shapes if key not in arrays]
    extra = [key for key in arrays if key not in shapes]
    if missing or extra:
        raise ValueError(f"{name}: a {_describe_architecture(architecture)} has exactly the keys "
                         f"{list(shapes)}; missing {missing}, unexpected {extra}")
    for key, shape in shapes.items():
        if arrays[key].shape != shape:
            raise ValueError(f"{name}['{key}']: expected shape {shape} for a "
                             f"{_describe_architecture(architecture)}, got {arrays[key].shape}")
    check_network_size(architecture, name)
    single = [arrays[key].dtype == np.float32 for key in shapes]
    if any(single) and not all(single):
        mixed = sorted({f"{key}: {arrays[key].dtype}" for key in shapes})
        raise ValueError(f"{name}: expected every array in float32 (to compute in float32) or "
                         f"none, got a mix ({', '.join(mixed[:6])}{', ...' if len(mixed) > 6 else ''})")
    dtype = np.float32 if all(single) else np.float64
    with np.errstate(over="ignore"):              # a huge value: refused as non-finite below
        theta = flatten(arrays, architecture, dtype)
    if not all_finite(theta):
        for key in shapes:                        # which one: as_float64 says
            as_float64(arrays[key], f"{name}['{key}']", dtype)
    return network_from_theta(theta, architecture)


def check_network_size(architecture, name="the network"):
    """Refuse sizes that no machine could hold before anything is allocated."""
    n = architecture.n_params
    if n > _limits.MAX_PARAMETERS:
        raise ValueError(f"{name}: {n:,} parameters ({n * 8 / 2**30:,.0f} GiB in float64), "
                         f"more than fastrnn's bound of {_limits.MAX_PARAMETERS:,}")
    return n


def _describe_architecture(a):
    layers = f"{a.n_layers}-layer " if a.n_layers > 1 else ""
    direction = "bidirectional " if a.bidirectional else ""
    return (f"{layers}{direction}{a.cell} network with k={a.n_inputs}, d={a.n_hidden}, "
            f"m={a.n_outputs}")


# ------------------------------------------------------------------- inputs
class Sequences(NamedTuple):
    """B sequences packed one after another along the first axis."""
    data: np.ndarray                 # (N, k) float64 inputs or (N,) int64 ids
    offsets: np.ndarray              # (B + 1,) int64: sequence b is rows offsets[b]:offsets[b+1]
    form: str                        # "single" (T, ...), "batch" (B, T, ...) or "list"

    @property
    def n_sequences(self):
        return len(self.offsets) - 1

    @property
    def n_rows(self):
        return int(self.offsets[-1])

    @property
    def is_ids(self):
        return self.data.ndim == 1


def _features(n_inputs):
    return "k" if n_inputs is None else str(n_inputs)


def _one_hot_warning(array, n_inputs, name):
    """Integer arrays are token ids; one-hot rows stored as integers are the
    classic way to get that wrong, and they would silently train on garbage."""
    # k >= 3: with two symbols, rows like [0, 1] are as likely to be real ids.
    if array.ndim == 2 and array.shape[1] == n_inputs >= 3 and array.size and \
            ((array == 0) | (array == 1)).all() and (array.sum(axis=1) == 1).all():
        warnings.warn(f"{name}: an integer array of shape {array.shape} whose rows look one-hot; "
                      f"integer arrays are read as token ids ({array.shape[0]} sequences of "
                      f"{array.shape[1]} ids). Pass one-hot vectors as floats "
                      f"(X.astype(float)), or ids as X.argmax(axis=-1).", UserWarning,
                      stacklevel=4)


def _check_sequence(array, n_inputs, name, dtype=np.float64):
    """One sequence of a list: int (T,) ids or real (T, k) vectors
    (n_inputs=None: any k, checked for agreement by the caller)."""
    ids = array.dtype.kind in "iu"
    if array.ndim == 1 and ids:
        if array.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one time step, got an empty sequence")
        return as_ids(array, n_inputs, name, "token ids")
    if array.ndim == 2 and ids:
        raise ValueError(f"{name}: an integer array of shape {array.shape} in a list of "
                         f"sequences; integer arrays are token ids, and one sequence of ids is "
                         f"1-D (T,). Pass input vectors as floats ({name}.astype(float)), or a "
                         f"batch of id sequences as one (B, T) array, not inside a list")
    if array.ndim == 2:
        if array.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one time step, got shape {array.shape}")
        if n_inputs is not None and array.shape[1] != n_inputs:
            raise ValueError(f"{name}: expected {n_inputs} input features per step "
                             f"(shape (T, {n_inputs})), got shape {array.shape}")
        return as_float64(array, name, dtype)
    raise ValueError(f"{name}: expected a sequence of integer token ids (T,) or of input "
                     f"vectors (T, {_features(n_inputs)}), got {describe(array)}")


def check_inputs(X, n_inputs, name="X", dtype=np.float64):
    """Accepted forms: one sequence, float (T, k) or int ids (T,); a batch,
    float (B, T, k) or int ids (B, T); a list of sequences of any lengths.

    ``n_inputs=None`` accepts any k (an estimator learning it from the data:
    the feature count, or the largest id + 1); see :func:`n_inputs_of`. Float
    inputs are converted to ``dtype``, the network's."""
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(f"{name}: expected at least one sequence, got an empty "
                             f"{type(X).__name__}")
        seqs = [_check_sequence(as_real_array(x, f"{name}[{i}]"), n_inputs, f"{name}[{i}]",
                                dtype) for i, x in enumerate(X)]
        kinds = {s.ndim for s in seqs}
        widths = {s.shape[1] for s in seqs if s.ndim == 2}
        if len(widths) > 1:
            raise ValueError(f"{name}: expected every sequence to have the same number of "
                             f"input features, got {sorted(widths)}")
        if len(kinds) > 1:
            raise ValueError(f"{name}: expected every sequence to be token ids (T,) or every one "
                             f"to be vectors (T, {_features(n_inputs)}), got a mix")
        lengths = [len(s) for s in seqs]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        data = seqs[0] if len(seqs) == 1 else np.concatenate(seqs)
        return Sequences(data, offsets, "list")

    array = as_real_array(X, name)
    ids = array.dtype.kind in "iu"
    if array.ndim >= 2 and array.shape[-1] == 0 and not ids:
        raise ValueError(f"{name}: found an array with 0 feature(s) (shape={array.shape}) while "
                         f"a minimum of 1 is required: input vectors need at least one feature")
    if array.size == 0:
        raise ValueError(f"{name}: expected at least one sequence of at least one step, "
                         f"got shape {array.shape}")
    if ids and array.ndim in (1, 2):
        data = as_ids(array, n_inputs, name, "token ids")
        if array.ndim == 2:
            if n_inputs is not None:
                _one_hot_warning(array, n_inputs, name)
            data = data.reshape(-1)
    elif array.ndim in (2, 3) and not ids:
        if n_inputs is not None and array.shape[-1] != n_inputs:
            raise ValueError(f"{name}: expected {n_inputs} input features in the last axis, "
                             f"got shape {array.shape} ({name} has {array.shape[-1]} features, "
                             f"but it is expecting {n_inputs} features as input)")
        data = as_float64(array, name, dtype).reshape(-1, array.shape[-1])
    elif array.ndim == 1:
        raise ValueError(f"{name}: a 1-D array must hold integer token ids, got dtype "
                         f"{array.dtype}; one sequence of input vectors has shape "
                         f"(T, {_features(n_inputs)}). Reshape your data: {name}.reshape(-1, 1) "
                         f"is one sequence of a single feature")
    else:
        k = _features(n_inputs)
        raise ValueError(f"{name}: expected shape (T, {k}) or (B, T, {k}) for input "
                         f"vectors, or (T,) or (B, T) for token ids, got shape {array.shape}")
    if array.ndim == (1 if ids else 2):
        return Sequences(data, np.array((0, array.shape[0]), np.int64), "single")
    B, T = array.shape[:2]
    return Sequences(data, np.arange(B + 1, dtype=np.int64) * T, "batch")


def n_inputs_of(seqs):
    """The k that validated inputs imply: feature count, or largest id + 1."""
    return int(seqs.data.max()) + 1 if seqs.is_ids else seqs.data.shape[1]


def step_shape(seqs):
    """The leading shape of X: what every per-step output is shaped like."""
    if seqs.form == "single":
        return (seqs.n_rows,)
    return (seqs.n_sequences, seqs.n_rows // seqs.n_sequences)


def sequence_shape(seqs):
    """The leading shape of a per-sequence output: () for one sequence, (B,)."""
    return () if seqs.form == "single" else (seqs.n_sequences,)


# ------------------------------------------------------------------ targets
class Head(NamedTuple):
    """The output layer's options, as the kernels take them."""
    loss: int                        # CROSS_ENTROPY or SQUARED_ERROR
    last_step: bool

    @property
    def loss_name(self):
        return LOSSES[self.loss]

    @property
    def output_name(self):
        return OUTPUTS[int(self.last_step)]


def check_head(loss, output):
    loss = check_choice(loss, LOSSES, "loss")
    output = check_choice(output, OUTPUTS, "output")
    return Head(LOSSES.index(loss), output == "last_step")


def _shape_text(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _check_distributions(Y, name):
    if first_bad_distribution(Y, 1e-6) >= 0:
        if (Y < 0).any():
            raise ValueError(f"{name}: target distributions must be non-negative, "
                             f"found {Y.min()}")
        sums = Y.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
        raise ValueError(f"{name}: each target distribution must sum to 1, "
                         f"row {bad[0]} sums to {sums[bad[0]]}")
    return Y


def _check_target_array(array, lead, n_outputs, head, name, dtype=np.float64):
    """Targets of one array: ``lead`` is the shape of the outputs (the steps
    of X, or its sequences with last_step). Returns (R,) int64 ids or (R, m)."""
    if head.loss == CROSS_ENTROPY:
        if array.dtype.kind in "iu":
            if array.shape != lead:
                hint = ("; one-hot targets must be float" if n_outputs is not None and
                        array.shape == lead + (n_outputs,) else "")
                raise ValueError(f"{name}: expected integer class ids of shape "
                                 f"{_shape_text(lead)}, got shape {array.shape}{hint}")
            return as_ids(array, n_outputs, name, "class ids").reshape(-1)
        if n_outputs is None and array.ndim == len(lead) + 1 and array.shape[-1] > 0:
            n_outputs = array.shape[-1]             # an estimator learning m from the data
        if n_outputs is None or array.shape != lead + (n_outputs,):
            m = "m" if n_outputs is None else n_outputs
            raise ValueError(f"{name}: expected float target distributions of shape "
                             f"{_shape_text(lead + (m,))} or integer class ids of shape "
                             f"{_shape_text(lead)}, got {describe(array)}")
        return _check_distributions(as_float64(array, name, dtype).reshape(-1, n_outputs), name)
    # squared error: real values, a trailing axis of m (which may be left out when m = 1)
    if n_outputs is None:
        n_outputs = array.shape[-1] if array.ndim == len(lead) + 1 else 1
    if array.shape == lead and n_outputs == 1:
        array = array.reshape(lead + (1,))
    if array.shape != lead + (n_outputs,):
        shapes = f"{_shape_text(lead + (n_outputs,))}" + \
            (f" or {_shape_text(lead)}" if n_outputs == 1 else "")
        raise ValueError(f"{name}: expected real target values of shape {shapes}, "
                         f"got {describe(array)}")
    return as_float64(array, name, dtype).reshape(-1, n_outputs)


def check_targets(y, seqs, n_outputs, head=Head(CROSS_ENTROPY, False), name="y",
                  dtype=np.float64):
    """Targets for every output row, as the kernels take them: (R,) int64
    class ids or (R, m) floats, R the number of steps (or of sequences with
    last_step). ``n_outputs=None`` accepts any m (see :func:`n_outputs_of`).

    Every step: class ids shaped like X's steps, float distributions with a
    trailing axis of m, or real values (squared error); a list of them when
    X is a list. Last step: one target per sequence, (B,) or (B, m) (a list
    X included), or for one sequence () or (m,)."""
    if head.last_step:
        lead = sequence_shape(seqs)
        if isinstance(y, (list, tuple)) and seqs.form == "list" and len(y) != seqs.n_sequences:
            raise ValueError(f"{name}: X is a list of {seqs.n_sequences} sequences, so expected "
                             f"one target per sequence ({seqs.n_sequences}), got {len(y)}")
        return _check_target_array(as_real_array(y, name), lead, n_outputs, head, name, dtype)
    if seqs.form == "list":
        if not isinstance(y, (list, tuple)) or len(y) != seqs.n_sequences:
            raise ValueError(f"{name}: X is a list of {seqs.n_sequences} sequences, so expected "
                             f"a list of {seqs.n_sequences} target sequences, got {describe(y)}")
        lengths = np.diff(seqs.offsets)
        parts = []
        for i, t in enumerate(y):
            part = _check_target_array(as_real_array(t, f"{name}[{i}]"), (int(lengths[i]),),
                                       n_outputs, head, f"{name}[{i}]", dtype)
            if n_outputs is None and part.ndim == 2:
                n_outputs = part.shape[1]        # the first one fixes m
            parts.append(part)
        if len({p.ndim for p in parts}) > 1:
            raise ValueError(f"{name}: expected every sequence of targets to be class ids or "
                             f"every one to be distributions, got a mix")
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    if isinstance(y, (list, tuple)) and len(y) and isinstance(y[0], np.ndarray) and \
            len({shape_of(t) for t in y}) > 1:
        raise ValueError(f"{name}: X is one array, so expected one array of targets, "
                         f"got a list of arrays of different shapes")
    return _check_target_array(as_real_array(y, name), step_shape(seqs), n_outputs, head, name,
                               dtype)


def n_outputs_of(Y):
    """The m that validated targets imply: trailing size, or largest id + 1."""
    return int(Y.max()) + 1 if Y.ndim == 1 else Y.shape[1]


def check_sample_weight(sample_weight, seqs, head, name="sample_weight"):
    """The loss weights, as (seq_weight (B,), step_weight (N,) or empty):
    ones and no step weights when ``sample_weight`` is None. The kernels take
    each sequence's share w_b / Σ w_b (:func:`sequence_scale`).

    One weight per sequence: (B,) (a list X included; for one sequence, a
    number). One per step, only at every step: shaped like X's steps (or a
    list of (T_b,) for a list X). Weights are finite and >= 0, not all 0."""
    B = seqs.n_sequences
    if sample_weight is None:
        return np.ones(B), np.empty(0)
    per_step = not head.last_step and (
        (seqs.form == "list" and isinstance(sample_weight, (list, tuple))
         and len(sample_weight) == B and any(np.ndim(w) == 1 for w in sample_weight))
        or (seqs.form != "list" and shape_of(sample_weight) == step_shape(seqs)))
    if per_step:
        if seqs.form == "list":
            lengths = np.diff(seqs.offsets)
            parts = []
            for i, w in enumerate(sample_weight):
                part = as_real_array(w, f"{name}[{i}]")
                if part.shape != (int(lengths[i]),):
                    raise ValueError(f"{name}[{i}]: expected one weight per step of X[{i}], "
                                     f"shape ({lengths[i]},), got shape {part.shape}")
                parts.append(as_float64(part, f"{name}[{i}]"))
            weights = np.concatenate(parts)
        else:
            weights = as_float64(as_real_array(sample_weight, name), name).reshape(-1)
        _check_weight_values(weights, name)
        return np.ones(B), weights
    weights = as_real_array(sample_weight, name)
    lead = sequence_shape(seqs)
    if weights.shape != lead:
        steps = "" if head.last_step else f", or one per step {_shape_text(step_shape(seqs))}"
        raise ValueError(f"{name}: expected one weight per sequence {_shape_text(lead)}{steps}, "
                         f"got {describe(weights)}")
    weights = as_float64(weights, name).reshape(-1)
    _check_weight_values(weights, name)
    return weights, np.empty(0)


def sequence_scale(seq_weight):
    """Each sequence's share of the loss, w_b / Σ w_b (1/B without weights)."""
    return seq_weight / seq_weight.sum()


def _check_weight_values(weights, name):
    if (weights < 0).any():
        raise ValueError(f"{name}: expected weights >= 0, found {weights.min()}")
    if not weights.any():
        raise ValueError(f"{name}: all weights are 0: a total weight of zero leaves no loss to "
                         f"compute")


# ------------------------------------------------------------------- states
_STATE_NAMES = ("h0", "c0")                  # the names of an LSTM state's parts


def check_states(h0, net, seqs):
    """Initial states as the kernels take them, (L·D, n_states, B, d).

    One layer, one direction: h0 (d,) for one sequence, (B, d) otherwise.
    Deeper or bidirectional: (L·D, d) or (L·D, B, d), PyTorch's order (layer
    by layer, forward before reverse). For an LSTM, None or a tuple (h0, c0)
    of such arrays, either None for zeros."""
    a = net.architecture
    B, d, S = seqs.n_sequences, a.n_hidden, a.n_slots
    if net.cell == "lstm":
        if h0 is None:
            h0 = (None, None)
        if not isinstance(h0, tuple) or len(h0) != 2:
            raise TypeError(f"h0: an LSTM's initial state is None or a tuple (h0, c0) of the "
                            f"hidden and cell states (either may be None), got {describe(h0)}")
        parts = h0
    else:
        parts = (h0,)
    dtype, deep = net.dtype, a.is_deep
    given = [j for j, value in enumerate(parts) if value is not None]
    state0 = (np.empty if len(given) == len(parts) else np.zeros)((S, len(parts), B, d), dtype)
    per_sequence = (d,) if seqs.form == "single" else (B, d)
    shape = (S,) + per_sequence if deep else per_sequence
    for j in given:
        value = parts[j]
        if type(value) is np.ndarray and value.shape == shape and value.dtype == dtype \
                and all_finite(value if value.ndim == 1 else value.reshape(-1)):
            if deep:                                       # the common case, made cheap
                state0[:, j] = value.reshape(S, B, d)
            else:                                          # (d,) or (B, d) into (B, d)
                state0[0, j] = value
            continue
        name = _STATE_NAMES[j]
        array = as_real_array(value, name)
        if array.shape != shape:
            what = " (layers × directions first, as PyTorch's h_0)" if deep else ""
            raise ValueError(f"{name}: expected shape {_shape_text(shape)}{what}, "
                             f"got {array.shape}")
        state0[:, j] = as_float64(array, name, dtype).reshape(S, B, d)
    return state0


def states_out(states, net, seqs):
    """Kernel states (L·D, n_states, B, d) in the caller's form (see
    :func:`check_states`): h, or (h, c) for an LSTM."""
    a = net.architecture
    if not a.is_deep:                            # views, (d,) or (B, d)
        out = states[0, :, 0] if seqs.form == "single" else states[0]
    else:
        out = tuple(np.ascontiguousarray(states[:, j]).reshape(
            (a.n_slots,) + ((a.n_hidden,) if seqs.form == "single" else states.shape[2:]))
            for j in range(net.n_states))
    return out[0] if net.cell != "lstm" else tuple(out)


def unpack_steps(packed, seqs):
    """Per-step outputs (N, ...) in the shape of the input: (T, ...),
    (B, T, ...) or a list of (T_b, ...)."""
    if seqs.form == "list":
        o = seqs.offsets
        return [packed[o[b]:o[b + 1]] for b in range(seqs.n_sequences)]
    if seqs.form == "single":                    # (T, ...) already
        return packed
    return packed.reshape(step_shape(seqs) + packed.shape[1:])


def unpack_sequences(packed, seqs):
    """Per-sequence outputs (B, ...): (...) for a single sequence."""
    return packed[0] if seqs.form == "single" else packed
