"""What an estimator's ``y`` means: one target per step or one per sequence,
class labels, token ids, distributions or real values.

The rule (``output="auto"``), from the shape of y and the form of X:

* X a single sequence (T steps): y of shape (T,) or (T, m) has a target per
  step; a scalar (or, for the regressor, an (m,) vector with m ≠ T) has one
  for the sequence.
* X a batch (B, T, ...): y of shape (B, T) or (B, T, m) has a target per
  step; (B,) (or, for the regressor, (B, m) with m ≠ T) one per sequence.
* X a list of B sequences: y a list of B arrays (one per sequence) has
  targets per step; a 1-D array or list of B numbers or labels, one per
  sequence.

Where the shape alone cannot tell (a float (B, T) target for a batch
(B, T, k): one value per step, or one T-vector per sequence?), per step is
chosen; ``output="last_step"`` says otherwise.

Classifier labels: integer y with token-id X and a target per step are
token ids of X's vocabulary (``classes_ = arange(m)``, m = max(k, largest
id + 1): language models keep their ids), and so are integer labels in
[0, n_outputs) when ``n_outputs`` is given (classes that do not occur in
this y keep their place); float targets with a trailing axis of m are
distributions over m classes (``classes_ = arange(m)``); every other y
(strings, -1/1, non-contiguous integers, one label per sequence) is encoded
as its index in ``classes_ = np.unique(y)``.
"""
import warnings
from typing import NamedTuple

import numpy as np

from fastrnn import _limits
from fastrnn._codes import CROSS_ENTROPY, SQUARED_ERROR
from fastrnn._sklearn import data_conversion_warning
from fastrnn._validation import (Head, as_real_array, check_choice, check_targets, describe,
                                 n_outputs_of, sequence_shape, shape_of, step_shape)

OUTPUT_CHOICES = ("auto", "every_step", "last_step")


class Targets(NamedTuple):
    Y: np.ndarray                    # as the kernels take them
    head: Head
    n_outputs: int
    classes: np.ndarray              # the classifier's classes_ (None for the regressor)
    encoded: bool                    # whether Y holds indices into classes


def _is_sequence_list(y):
    return isinstance(y, (list, tuple)) and len(y) > 0 and all(
        np.ndim(t) >= 1 for t in y)


def infer_last_step(y, seqs, output, regressor, name="y"):
    """Whether y holds one target per sequence (see the module docstring)."""
    output = check_choice(output, OUTPUT_CHOICES, "output")
    if output != "auto":
        return output == "last_step"
    if seqs.form == "list":
        return not _is_sequence_list(y)
    shape = shape_of(y) if not isinstance(y, (list, tuple)) or not _is_sequence_list(y) \
        else (len(y),) + (shape_of(y[0]) or ())
    steps, per_sequence = step_shape(seqs), sequence_shape(seqs)
    if shape is None:
        raise ValueError(f"{name}: expected an array of targets, got a ragged nesting of "
                         f"sequences of different shapes; X is one array, so y is one array too")
    if shape[:len(steps)] == steps:
        return False
    if shape[:len(per_sequence)] == per_sequence:
        return True
    lead = "(T,)" if seqs.form == "single" else f"{_text(steps)} or {_text(per_sequence)}"
    raise ValueError(f"{name}: expected one target per step or per sequence, with the leading "
                     f"shape {lead}{' or ()' if seqs.form == 'single' else ''}, got {describe(y)}")


def _text(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def classifier_targets(y, seqs, output, n_outputs, n_inputs, classes=None, name="y",
                       dtype=np.float64):
    """Targets of the classifier; ``n_inputs``: the k of the network (token
    ids as targets: m is at least k); ``classes``: the fitted classes_ of a
    warm start (new labels are then refused)."""
    last_step = infer_last_step(y, seqs, output, regressor=False, name=name)
    y = _column_to_1d(y, seqs, last_step, name)
    head = Head(CROSS_ENTROPY, last_step)
    labels = _all_labels(y, seqs, last_step, name)
    integers = labels.dtype.kind in "iu"
    as_ids = integers and ((seqs.is_ids and not last_step) or (
        n_outputs is not None and labels.size and 0 <= labels.min() and labels.max() < n_outputs))
    as_distributions = labels.dtype.kind == "f" and _has_class_axis(y, seqs, last_step)
    if (as_ids or as_distributions) and (classes is None or _is_arange(classes)):
        if classes is not None:
            n_outputs = len(classes)
        elif as_ids and n_outputs is None:
            largest = int(labels.max())
            if largest >= max(n_inputs, _limits.MAX_LEARNED_CLASSES) or int(labels.min()) < 0:
                check_targets(y, seqs, None, head, name, dtype)    # refuses, naming y
            n_outputs = max(n_inputs, largest + 1)
        Y = check_targets(y, seqs, n_outputs, head, name, dtype)
        m = n_outputs if n_outputs is not None else n_outputs_of(Y)
        return Targets(Y, head, m, np.arange(m), False)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"{name}: expected class labels, found a non-finite value")
        if not np.all(labels == np.round(labels)):
            raise ValueError(f"{name}: expected class labels (integers or strings), got float "
                             f"values that are not whole numbers (continuous targets are for "
                             f"FastRNNRegressor)")
    if labels.dtype.kind not in "iufUS":
        raise TypeError(f"{name}: expected class labels (integers or strings), got dtype "
                        f"{labels.dtype}")
    if classes is None:
        classes = np.unique(labels)
        if n_outputs is not None and n_outputs != len(classes):
            raise ValueError(f"n_outputs: {n_outputs} given, but y holds {len(classes)} "
                             f"classes")
    else:
        unknown = np.setdiff1d(np.unique(labels), classes)
        if len(unknown):
            raise ValueError(f"{name}: labels {unknown[:5].tolist()} are not among the classes "
                             f"of the fitted model, {classes[:10].tolist()}")
    codes = np.searchsorted(classes, labels)
    Y = check_targets(_reshape_like(codes, y, seqs, last_step), seqs, len(classes), head, name)
    return Targets(Y, head, len(classes), classes, True)


def _column_to_1d(y, seqs, last_step, name):
    """A classifier's y with a trailing axis of 1 (a column vector, as a
    one-column DataFrame gives): one label per output, raveled with a
    warning as scikit-learn does (a distribution over a single class would
    say nothing)."""
    if seqs.form == "list" and not last_step:
        return y
    shape = shape_of(y) or ()
    if len(shape) >= 2 and len(shape) == _lead_ndim(seqs, last_step) + 1 and shape[-1] == 1:
        warnings.warn(f"A column-vector y was passed when a 1d array was expected: {name} of "
                      f"shape {shape} is read as labels of shape {shape[:-1]}; pass "
                      f"{name}.ravel() (or {name}[..., 0]) to say so", data_conversion_warning(),
                      stacklevel=6)                  # the caller of fit
        return np.asarray(y).reshape(shape[:-1])
    return y


def regressor_targets(y, seqs, output, n_outputs, name="y", dtype=np.float64):
    """Targets of the regressor: real values, a trailing axis of m (left out for m = 1)."""
    last_step = infer_last_step(y, seqs, output, regressor=True, name=name)
    head = Head(SQUARED_ERROR, last_step)
    if n_outputs is None:
        n_outputs = _value_width(y, seqs, last_step)
    Y = check_targets(y, seqs, n_outputs, head, name, dtype)
    if not np.all(np.isfinite(Y)):                 # check_targets refuses these already
        raise ValueError(f"{name}: expected finite target values")
    return Targets(Y, head, n_outputs, None, False)


def _lead_ndim(seqs, last_step):
    return len(sequence_shape(seqs) if last_step else step_shape(seqs))


def _has_class_axis(y, seqs, last_step):
    if seqs.form == "list" and not last_step:
        return all(np.ndim(t) == 2 for t in y)
    return np.ndim(y) == _lead_ndim(seqs, last_step) + 1


def _value_width(y, seqs, last_step):
    if seqs.form == "list" and not last_step:
        first = shape_of(y[0]) or ()
        return first[1] if len(first) == 2 else 1
    shape = shape_of(y) or ()
    return shape[-1] if len(shape) == _lead_ndim(seqs, last_step) + 1 else 1


def _all_labels(y, seqs, last_step, name):
    """Every label of y as one 1-D array (the targets themselves for
    distributions), refusing what is not numbers or strings."""
    if seqs.form == "list" and not last_step:
        if not isinstance(y, (list, tuple)) or len(y) != seqs.n_sequences:
            raise ValueError(f"{name}: X is a list of {seqs.n_sequences} sequences, so expected "
                             f"a list of {seqs.n_sequences} target sequences, got {describe(y)}")
        parts = [_label_array(t, f"{name}[{i}]") for i, t in enumerate(y)]
        kinds = {p.dtype.kind for p in parts}
        if len(kinds) > 1 and not kinds <= set("iuf"):
            raise TypeError(f"{name}: expected labels of one kind, got a mix of {sorted(kinds)}")
        return np.concatenate([p.reshape(-1) for p in parts])
    return _label_array(y, name).reshape(-1)


def _label_array(y, name):
    if y is None:
        raise TypeError(f"{name}: expected an array of targets, got None")
    array = np.asarray(y)
    if array.dtype.kind in "US":
        return array
    if array.dtype.kind == "O":
        try:
            array = np.asarray(array.tolist())
        except (ValueError, TypeError):
            pass
        if array.dtype.kind in "US":
            return array
    return as_real_array(array, name)


def _is_arange(classes):
    return classes.dtype.kind in "iu" and np.array_equal(classes, np.arange(len(classes)))


def _reshape_like(codes, y, seqs, last_step):
    """The encoded labels in y's structure (a list for a list of sequences)."""
    if seqs.form == "list" and not last_step:
        lengths = [np.size(t) for t in y]         # y's own: a wrong one is reported later
        return np.split(codes, np.cumsum(lengths)[:-1])
    return codes.reshape(np.shape(y))
