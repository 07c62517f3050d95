"""Convert once: every public entry point passes its arguments through here.

What comes out is what the kernels may assume without checking (Numba does
no bounds checks, so a bad id here would read or corrupt memory there):
C-contiguous float64 arrays with finite values, int64 ids inside their range,
shapes that agree with each other. Every error names the argument, says what
was expected and what was given. Nothing here writes into a caller's array:
conversion copies when it must and never otherwise.
"""
import numbers
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from fastrnn.kernels._checks import all_finite, first_bad_distribution

PARAM_KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
CELLS = ("rnn", "lstm")
GATES = {"rnn": 1, "lstm": 4}     # blocks stacked in W_x, W_h, b_h


class Network(NamedTuple):
    """Validated parameters and the sizes they imply."""
    cell: str
    n_inputs: int
    n_hidden: int
    n_outputs: int
    params: dict                     # the five arrays, C-contiguous float64

    @property
    def arrays(self):
        return tuple(self.params[key] for key in PARAM_KEYS)


class Sequences(NamedTuple):
    """B sequences packed one after another along the first axis."""
    data: np.ndarray                 # (N, k) float64 inputs or (N,) int64 ids
    offsets: np.ndarray              # (B + 1,) int64: sequence b is rows offsets[b]:offsets[b+1]
    form: str                        # "single" (T, ...), "batch" (B, T, ...) or "list"

    @property
    def n_sequences(self):
        return len(self.offsets) - 1

    @property
    def is_ids(self):
        return self.data.ndim == 1


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return f"{type(value).__name__} {value!r}"[:120]


def as_real_array(value, name):
    """np.asarray for numeric data, refusing what cannot be a real number."""
    if value is None:
        raise TypeError(f"{name}: expected an array, got None")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected an array of numbers, got a string {value!r:.60}")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name}: expected an array of numbers, could not convert "
                        f"{type(value).__name__}: {exc}") from None
    kind = array.dtype.kind
    if kind == "b":
        raise TypeError(f"{name}: expected float or integer numbers, got booleans; "
                        f"convert with .astype(float) or .astype(int)")
    if kind not in "fiu":
        raise TypeError(f"{name}: expected float or integer numbers, got dtype {array.dtype}")
    return array


def _writeable(array):
    """A read-only array is a different type to Numba, which would compile
    every kernel again for it (seconds); the copy costs microseconds."""
    return array if array.flags.writeable else array.copy()


def _as_float64(array, name):
    out = _writeable(np.ascontiguousarray(array, dtype=np.float64))
    if not all_finite(out.reshape(-1)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise ValueError(f"{name}: expected finite numbers, found {out[bad]} at index {bad}")
    return out


def _as_ids(array, n_classes, name, what):
    """int64 ids in [0, n_classes); n_classes=None only checks ids >= 0."""
    if array.size:
        low, high = array.min(), array.max()
        if n_classes is None:
            n_classes = int(high) + 1 if high >= 0 else 1
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            where = tuple(int(i) for i in np.argwhere(array == bad)[0])
            raise ValueError(f"{name}: {what} must lie in [0, {n_classes - 1}], "
                             f"found {bad} at index {where}")
    return _writeable(np.ascontiguousarray(array, dtype=np.int64))


def check_positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive integer, got {_describe(value)}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value}")
    return int(value)


def check_cell(cell):
    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {CELLS}, got {cell!r}")
    return cell


def check_params(params, name="params"):
    """Validate a parameter dict; infer the cell from the stacked shapes."""
    if not isinstance(params, Mapping):
        raise TypeError(f"{name}: expected a dict with keys {PARAM_KEYS}, got {_describe(params)}")
    missing = [key for key in PARAM_KEYS if key not in params]
    extra = [key for key in params if key not in PARAM_KEYS]
    if missing or extra:
        raise ValueError(f"{name}: expected exactly the keys {PARAM_KEYS}; "
                         f"missing {missing}, unexpected {extra}")
    arrays = {key: as_real_array(params[key], f"{name}['{key}']") for key in PARAM_KEYS}
    for key, ndim in zip(PARAM_KEYS, (2, 2, 1, 2, 1)):
        if arrays[key].ndim != ndim:
            raise ValueError(f"{name}['{key}']: expected {ndim} dimensions, "
                             f"got shape {arrays[key].shape}")
    rows, d = arrays["W_h"].shape
    if d < 1 or rows not in (d, 4 * d):
        raise ValueError(f"{name}['W_h']: expected shape (d, d) for a simple RNN or (4d, d) "
                         f"for an LSTM with d >= 1, got {arrays['W_h'].shape}")
    cell = "rnn" if rows == d else "lstm"
    k = arrays["W_x"].shape[1]
    m = arrays["W_y"].shape[0]
    expected = {"W_x": (rows, k), "b_h": (rows,), "W_y": (m, d), "b_y": (m,)}
    for key, shape in expected.items():
        if arrays[key].shape != shape or 0 in shape:
            raise ValueError(f"{name}['{key}']: expected shape {shape} (from W_h {(rows, d)}, "
                             f"W_x {arrays['W_x'].shape}, W_y {arrays['W_y'].shape}), "
                             f"got {arrays[key].shape}")
    converted = {key: _as_float64(arrays[key], f"{name}['{key}']") for key in PARAM_KEYS}
    return Network(cell, k, d, m, converted)


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


def _check_sequence(array, n_inputs, name):
    """One sequence: int (T,) ids or real (T, k) vectors (n_inputs=None:
    any k, checked for agreement by the caller)."""
    if array.ndim == 1 and array.dtype.kind in "iu":
        if array.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one time step, got an empty sequence")
        return _as_ids(array, n_inputs, name, "token ids")
    if array.ndim == 2:
        if array.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one time step, got shape {array.shape}")
        if n_inputs is not None and array.shape[1] != n_inputs:
            raise ValueError(f"{name}: expected {n_inputs} input features per step "
                             f"(shape (T, {n_inputs})), got shape {array.shape}")
        return _as_float64(array, name)
    raise ValueError(f"{name}: expected a sequence of integer token ids (T,) or of input "
                     f"vectors (T, {n_inputs}), got {_describe(array)}")


def check_inputs(X, n_inputs, name="X"):
    """Accepted forms: one sequence, float (T, k) or int ids (T,); a batch,
    float (B, T, k) or int ids (B, T); a list of sequences of any lengths.

    ``n_inputs=None`` accepts any k (an estimator learning it from the data:
    the feature count, or the largest id + 1); see :func:`n_inputs_of`."""
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(f"{name}: expected at least one sequence, got an empty {type(X).__name__}")
        seqs = [_check_sequence(as_real_array(x, f"{name}[{i}]"), n_inputs, f"{name}[{i}]")
                for i, x in enumerate(X)]
        kinds = {s.ndim for s in seqs}
        widths = {s.shape[1] for s in seqs if s.ndim == 2}
        if len(widths) > 1:
            raise ValueError(f"{name}: expected every sequence to have the same number of "
                             f"input features, got {sorted(widths)}")
        if len(kinds) > 1:
            raise ValueError(f"{name}: expected every sequence to be token ids (T,) or every one "
                             f"to be vectors (T, {n_inputs}), got a mix")
        lengths = [len(s) for s in seqs]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Sequences(np.concatenate(seqs), offsets, "list")

    array = as_real_array(X, name)
    ids = array.dtype.kind in "iu"
    if array.size == 0:
        raise ValueError(f"{name}: expected at least one sequence of at least one step, "
                         f"got shape {array.shape}")
    if ids and array.ndim in (1, 2):
        if n_inputs is not None:
            _one_hot_warning(array, n_inputs, name)
        data = _as_ids(array, n_inputs, name, "token ids").reshape(-1)
    elif array.ndim in (2, 3) and not (ids and array.ndim == 2):
        if n_inputs is not None and array.shape[-1] != n_inputs:
            raise ValueError(f"{name}: expected {n_inputs} input features in the last axis, "
                             f"got shape {array.shape}")
        data = _as_float64(array, name).reshape(-1, array.shape[-1])
    elif array.ndim == 1:
        raise ValueError(f"{name}: a 1-D array must hold integer token ids, got dtype "
                         f"{array.dtype}; one sequence of input vectors has shape (T, {n_inputs})")
    else:
        raise ValueError(f"{name}: expected shape (T, {n_inputs}) or (B, T, {n_inputs}) for input "
                         f"vectors, or (T,) or (B, T) for token ids, got shape {array.shape}")
    single = array.ndim == (1 if ids else 2)
    B, T = (1, array.shape[0]) if single else array.shape[:2]
    offsets = np.arange(B + 1, dtype=np.int64) * T
    return Sequences(data, offsets, "single" if single else "batch")


def n_inputs_of(seqs):
    """The k that validated inputs imply: feature count, or largest id + 1."""
    return int(seqs.data.max()) + 1 if seqs.is_ids else seqs.data.shape[1]


def n_outputs_of(Y):
    """The m that validated targets imply: distribution size, or largest id + 1."""
    return int(Y.max()) + 1 if Y.ndim == 1 else Y.shape[1]


def _step_shape(seqs):
    """The leading shape of X: what every per-step output is shaped like."""
    if seqs.form == "single":
        return (int(seqs.offsets[-1]),)
    B = seqs.n_sequences
    return (B, int(seqs.offsets[-1]) // B)


def _check_target_array(array, lead, n_outputs, name):
    if array.dtype.kind in "iu":
        if array.shape != lead:
            hint = ("; one-hot targets must be float" if array.shape == lead + (n_outputs,) else "")
            raise ValueError(f"{name}: expected integer class ids of shape {lead}, "
                             f"got shape {array.shape}{hint}")
        return _as_ids(array, n_outputs, name, "class ids").reshape(-1)
    if n_outputs is None and array.ndim == len(lead) + 1 and array.shape[-1] > 0:
        n_outputs = array.shape[-1]              # an estimator learning m from the data
    if array.shape != lead + (n_outputs,):
        raise ValueError(f"{name}: expected float target distributions of shape "
                         f"{lead + (n_outputs,)} or integer class ids of shape {lead}, "
                         f"got {_describe(array)}")
    Y = _as_float64(array, name).reshape(-1, n_outputs)
    if first_bad_distribution(Y, 1e-6) >= 0:
        if (Y < 0).any():
            raise ValueError(f"{name}: target distributions must be non-negative, "
                             f"found {Y.min()}")
        sums = Y.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
        raise ValueError(f"{name}: each target distribution must sum to 1, "
                         f"step {bad[0]} sums to {sums[bad[0]]}")
    return Y


def check_targets(y, seqs, n_outputs, name="y"):
    """Integer class ids shaped like X's steps, or float distributions with
    a trailing axis of n_outputs; a list of them when X is a list.
    ``n_outputs=None`` accepts any m (see :func:`n_outputs_of`)."""
    if seqs.form == "list":
        if not isinstance(y, (list, tuple)) or len(y) != seqs.n_sequences:
            raise ValueError(f"{name}: X is a list of {seqs.n_sequences} sequences, so expected "
                             f"a list of {seqs.n_sequences} target sequences, got {_describe(y)}")
        lengths = np.diff(seqs.offsets)
        parts = []
        for i, t in enumerate(y):
            part = _check_target_array(as_real_array(t, f"{name}[{i}]"), (int(lengths[i]),),
                                       n_outputs, f"{name}[{i}]")
            if n_outputs is None and part.ndim == 2:
                n_outputs = part.shape[1]        # the first distribution fixes m
            parts.append(part)
        if len({p.ndim for p in parts}) > 1:
            raise ValueError(f"{name}: expected every sequence of targets to be class ids or "
                             f"every one to be distributions, got a mix")
        return np.concatenate(parts)
    if isinstance(y, (list, tuple)) and len(y) and isinstance(y[0], np.ndarray) and \
            len({np.shape(t) for t in y}) > 1:
        raise ValueError(f"{name}: X is one array, so expected one array of targets, "
                         f"got a list of arrays of different shapes")
    return _check_target_array(as_real_array(y, name), _step_shape(seqs), n_outputs, name)


def check_state(state, seqs, n_hidden, name="h0"):
    """An initial state: (d,) for one sequence, (B, d) for a batch or list."""
    B = seqs.n_sequences
    shape = (n_hidden,) if seqs.form == "single" else (B, n_hidden)
    if state is None:
        return np.zeros((B, n_hidden))
    array = as_real_array(state, name)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
    return _as_float64(array, name).reshape(B, n_hidden)


def check_lstm_state(state, seqs, n_hidden):
    """An LSTM's initial state, as PyTorch takes it: None (zeros), or a tuple
    ``(h0, c0)`` of states each shaped as :func:`check_state` expects (either
    may be None). Returns the two as (B, d) arrays."""
    if state is None:
        state = (None, None)
    if not isinstance(state, tuple) or len(state) != 2:
        raise TypeError(f"h0: an LSTM's initial state is None or a tuple (h0, c0) of the hidden "
                        f"and cell states (either may be None), got {_describe(state)}")
    h0, c0 = state
    return check_state(h0, seqs, n_hidden, "h0"), check_state(c0, seqs, n_hidden, "c0")


def unpack_steps(packed, seqs):
    """Per-step outputs (N, ...) in the shape of the input: (T, ...),
    (B, T, ...) or a list of (T_b, ...)."""
    if seqs.form == "list":
        o = seqs.offsets
        return [packed[o[b]:o[b + 1]] for b in range(seqs.n_sequences)]
    return packed.reshape(_step_shape(seqs) + packed.shape[1:])


def unpack_state(state, seqs):
    """Per-sequence states (B, d): (d,) for a single sequence."""
    return state[0] if seqs.form == "single" else state


def check_random_state(random_state, name="random_state", make=True):
    """``np.random.default_rng(random_state)`` for None, an int >= 0 or a
    Generator (returned as it is); ``make=False`` only checks the type."""
    if random_state is not None and not isinstance(random_state, np.random.Generator) and (
            isinstance(random_state, (bool, np.bool_))
            or not isinstance(random_state, numbers.Integral) or random_state < 0):
        raise TypeError(f"{name}: expected None, a non-negative integer or a "
                        f"numpy.random.Generator, got {_describe(random_state)}")
    if not make:
        return None
    if isinstance(random_state, numbers.Integral):
        random_state = int(random_state)
    return np.random.default_rng(random_state)
