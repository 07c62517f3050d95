"""FastRNN and FastRNNRegressor: scikit-learn style estimators around the
kernels.

They validate, dispatch and keep state; the training itself runs in
``train_epochs`` of the chosen backend (``fastrnn.kernels.train``, its NumPy
twin ``fastrnn.reference.train``, or for large updates the threaded
``fastrnn._train_threads``), whole epochs per call.
"""
import inspect
import math
import numbers
import os
import sys
import time
import warnings
from typing import Any, TypeVar

import numpy as np

from fastrnn import _limits, _train_threads
from fastrnn._cells import CELLS
from fastrnn._codes import (CLIP_MODES, CLIP_NONE, CLIP_NORM, CLIP_VALUE, CROSS_ENTROPY,
                            GRAD_NOT_FINITE, LOSS_NOT_FINITE, OPTIMIZERS, STOPPED,
                            UPDATE_NOT_FINITE)
from fastrnn._interrupt import StopFlag, run_stoppable
from fastrnn._layout import Architecture, flatten
from fastrnn._parallel import work_per_row
from fastrnn._progress import ProgressLine, format_clock
from fastrnn._sklearn import InputError, NotFittedError, not_fitted_error, tags
from fastrnn._stream import Stream
from fastrnn._targets import OUTPUT_CHOICES, classifier_targets, regressor_targets
from fastrnn._typing import Array, Inputs, RandomState, State
from fastrnn._validation import (FLOAT_DTYPES, Head, Sequences, as_array_like, check_bool,
                                 check_dtype, check_cell, check_choice,
                                 check_inputs, check_network_size, check_params,
                                 check_positive_int, check_random_state, check_sample_weight,
                                 check_states, describe, n_inputs_of, network_from_theta,
                                 sequence_scale, unpack_sequences, unpack_steps)
from fastrnn.backends import check_backend, train_module
from fastrnn.functional import run_forward, run_loss_and_grad
from fastrnn.kernels._linalg import load_products
from fastrnn.params import init_params
from fastrnn.vocab import CharVocab

if sys.version_info >= (3, 11):
    from typing import Self
else:                                               # Python 3.10
    Self = TypeVar("Self", bound="_RecurrentEstimator")

__all__ = ["FastRNN", "FastRNNRegressor", "NotFittedError"]

# Learning rate when learning_rate=None: the usual starting point of each.
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "momentum": 0.01, "adagrad": 0.1,
                          "rmsprop": 0.01, "adam": 0.01}
FORMAT_VERSION = 2
# A block of epochs per kernel call runs about this long: long enough that
# the call costs nothing, short enough for a live progress line; the memory
# of a block's epoch orders grows with it, so it is capped too.
_BLOCK_SECONDS = 0.25
_MAX_BLOCK_ORDERS = 1 << 22
# Epochs in a row with a rising training loss before fit warns (once).
_RISING_EPOCHS = 5


class _RecurrentEstimator:
    """What FastRNN and FastRNNRegressor share; see FastRNN for the
    parameters."""

    _estimator_type = None
    _kind = None                     # "classifier" or "regressor"

    # Set by fit (or load).
    params_: dict[str, Array]
    loss_curve_: list[float]
    n_iter_: int
    n_inputs_: int
    n_outputs_: int
    cell_: str
    input_kind_: str
    output_: str
    vocab_: "CharVocab | None"
    n_features_in_: int
    validation_losses_: list[float]
    best_loss_: float
    best_epoch_: int

    def __init__(self, n_hidden: int = 32, cell: str = "rnn", backend: str = "numba",
                 optimizer: str = "adam", learning_rate: float | None = None, epochs: int = 100,
                 batch_size: int | None = None, shuffle: bool = True, clip: float | None = None,
                 clip_mode: str = "norm", bptt: int | None = None,
                 random_state: RandomState = None, verbose: int = 0, warm_start: bool = False,
                 n_inputs: int | None = None, n_outputs: int | None = None,
                 momentum: float = 0.9, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, n_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, output: str = "auto", early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 10, tol: float = 1e-4,
                 dtype: str = "float64") -> None:
        self.n_hidden = n_hidden
        self.cell = cell
        self.backend = backend
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.clip = clip
        self.clip_mode = clip_mode
        self.bptt = bptt
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.momentum = momentum
        self.betas = betas
        self.eps = eps
        self.n_layers = n_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.output = output
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.dtype = dtype

    # ----------------------------------------------------------- sklearn API
    @classmethod
    def _param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        names = self._param_names()
        for name, value in params.items():
            if name not in names:
                raise ValueError(f"{name}: not a parameter of {type(self).__name__}; "
                                 f"the parameters are {', '.join(names)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values() if p.name != "self"}
        changed = [f"{name}={value!r}" for name, value in self.get_params().items()
                   if not (type(value) is type(defaults[name]) and value == defaults[name])]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        return tags(self._kind)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "params_")

    # ------------------------------------------------------------ validation
    def _check_hyperparameters(self):
        """Every hyperparameter, as fit would use it (fit calls this first;
        ``load`` too, so a file cannot smuggle in a value fit would refuse)."""
        check_positive_int(self.n_hidden, "n_hidden", _limits.MAX_SIZE)
        check_cell(self.cell)
        check_backend(self.backend)
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        if self.learning_rate is not None:
            _check_positive_float(self.learning_rate, "learning_rate")
        check_positive_int(self.epochs, "epochs", _limits.MAX_EPOCHS)
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size")
        check_bool(self.shuffle, "shuffle")
        if self.clip is not None:
            _check_positive_float(self.clip, "clip")
        check_choice(self.clip_mode, CLIP_MODES, "clip_mode")
        if self.bptt is not None:
            check_positive_int(self.bptt, "bptt")
        check_random_state(self.random_state, make=False)
        if isinstance(self.verbose, (bool, np.bool_)) or \
                not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise ValueError(f"verbose: expected 0 or a positive integer, got {self.verbose!r}")
        check_bool(self.warm_start, "warm_start")
        for name in ("n_inputs", "n_outputs"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name, _limits.MAX_SIZE)
        _check_fraction(self.momentum, "momentum")
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas: expected a pair (beta1, beta2), got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            _check_fraction(beta, f"betas[{i}]")
        _check_positive_float(self.eps, "eps")
        check_positive_int(self.n_layers, "n_layers", _limits.MAX_LAYERS)
        check_bool(self.bidirectional, "bidirectional")
        _check_fraction(self.dropout, "dropout")
        check_choice(self.output, OUTPUT_CHOICES, "output")
        check_bool(self.early_stopping, "early_stopping")
        if not (isinstance(self.validation_fraction, numbers.Real)
                and not isinstance(self.validation_fraction, (bool, np.bool_))
                and 0 < self.validation_fraction < 1):
            raise ValueError(f"validation_fraction: expected a number in (0, 1), got "
                             f"{self.validation_fraction!r}")
        check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        if isinstance(self.tol, (bool, np.bool_)) or not isinstance(self.tol, numbers.Real) \
                or not (math.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"tol: expected a number >= 0, got {self.tol!r}")
        check_dtype(self.dtype)
        if self.bidirectional and self.bptt is not None:
            raise ValueError("bptt: truncated BPTT carries a left-to-right state from chunk to "
                             "chunk, which a bidirectional model does not have; use bptt=None")

    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise not_fitted_error(f"This {type(self).__name__} is not fitted yet: call "
                                   f"fit(X, y) first, or {type(self).__name__}.load(path).")

    def _network(self):
        """The fitted network, validated. ``params_`` may have been replaced
        or edited since fit; if it is no longer the arrays fit made, it is
        checked again (and must describe the same network)."""
        net = self._net
        params = self.params_
        if params is net.params or (
                isinstance(params, dict) and params.keys() == net.params.keys()
                and all(params[key] is net.params[key] for key in params)):
            return net
        checked = check_params(params, name="params_")
        if checked.architecture != net.architecture:
            raise ValueError(f"params_: describes a {checked.architecture}, but this model was "
                             f"fitted as a {net.architecture}")
        self._net = checked
        self.params_ = checked.params
        return checked

    # ------------------------------------------------------------------- fit
    def fit(self, X: Inputs, y: Inputs, sample_weight: Inputs | None = None, *,
            vocab: "CharVocab | None" = None, X_val: Inputs | None = None,
            y_val: Inputs | None = None) -> Self:
        """Train on sequences X with targets y.

        X: any input form of ``fastrnn.forward``. y: a target per step or
        one per sequence (see the class docstring). ``sample_weight``: one
        weight per sequence, or per step. ``vocab``: a :class:`CharVocab`
        kept with the model (for ``sample_text``). ``X_val``, ``y_val``: a
        validation set for early stopping (else ``validation_fraction`` of
        the sequences is held out when ``early_stopping=True``).

        Ctrl-C stops training after the running update (within about a
        second): the model keeps the parameters of its last completed update
        and the loss curve of its completed epochs, then KeyboardInterrupt
        is raised. Returns self."""
        return self._fit(X, y, sample_weight, vocab, X_val, y_val)

    def _fit(self, X, y, sample_weight=None, vocab=None, X_val=None, y_val=None, report=None):
        """fit, with ``report(epochs_done, progress, losses)`` called while
        training waits (progress: [epochs, updates, steps] of the running
        block) and after every block."""
        self._check_hyperparameters()
        if y is None:
            raise InputError(f"y: {type(self).__name__} requires y to be passed, but the target "
                             f"y is None")
        y, sample_weight = as_array_like(y, "y"), as_array_like(sample_weight, "sample_weight")
        if vocab is not None and not isinstance(vocab, CharVocab):
            raise TypeError(f"vocab: expected a fastrnn.CharVocab or None, got "
                            f"{type(vocab).__name__}")
        warm = self.warm_start and hasattr(self, "params_")
        dtype = check_dtype(self.dtype)
        if warm:
            net = self._warm_network()
            k, m = net.n_inputs, net.n_outputs
            if net.dtype != dtype:
                raise ValueError(f"dtype: warm_start continues a {net.dtype} model, got "
                                 f"dtype={self.dtype!r}")
        else:
            k = self.n_inputs if self.n_inputs is not None else (len(vocab) if vocab else None)
            m = self.n_outputs
        seqs = check_inputs(X, k, dtype=dtype)
        if k is None:
            k = n_inputs_of(seqs)
        if warm and seqs.is_ids != (self.input_kind_ == "ids"):
            raise ValueError(f"X: warm_start continues a model fitted on "
                             f"{'token ids' if self.input_kind_ == 'ids' else 'input vectors'}")
        targets = self._targets(y, seqs, m, warm, k=k, dtype=dtype)
        head = targets.head
        if warm and head.last_step != (self.output_ == "last_step"):
            raise ValueError(f"y: warm_start continues a model with an output {self.output_!r}")
        m = targets.n_outputs
        architecture = Architecture(self.cell, k, int(self.n_hidden), m, int(self.n_layers),
                                    bool(self.bidirectional))
        check_network_size(architecture)
        if head.last_step and self.bptt is not None:
            raise ValueError("bptt: truncated BPTT trains targets at every step; with one "
                             "target per sequence the whole sequence is backpropagated "
                             "(bptt=None)")
        if self.dropout and self.n_layers == 1:
            warnings.warn("dropout: acts between layers, so with n_layers=1 it does nothing",
                          UserWarning, stacklevel=3)
        seq_weight, step_weight = check_sample_weight(sample_weight, seqs, head)
        data = _TrainingData(seqs, targets.Y, seq_weight, step_weight)
        rng = check_random_state(self.random_state)
        validation = None
        if self.early_stopping:
            data, validation = self._validation_split(data, X_val, y_val, rng, head, k, targets)
        elif X_val is not None or y_val is not None:
            raise ValueError("X_val: a validation set is used for early stopping; set "
                             "early_stopping=True")

        if warm:
            if net.architecture != architecture:
                raise ValueError(f"warm_start continues a {net.architecture}, but the "
                                 f"parameters ask for a {architecture}; set warm_start=False "
                                 f"to start anew")
            theta = net.theta.copy()
        else:
            theta = flatten(init_params(k, architecture.n_hidden, m, cell=self.cell,
                                        random_state=rng, n_layers=architecture.n_layers,
                                        bidirectional=architecture.bidirectional),
                            architecture, dtype)
        saved = getattr(self, "_optimizer_state", None) if warm else None
        if saved is not None and saved[0] == self.optimizer and saved[1].shape[1] == len(theta):
            state, step = saved[1].copy(), saved[2].copy()
        else:
            state, step = np.zeros((2, len(theta)), dtype), np.zeros(1, dtype=np.int64)

        run = _Run(self, architecture, theta, state, step, data, head, rng, validation, report)
        try:
            run.train()
        finally:
            if not run.abandoned and (run.completed_update or not warm):
                self._set_fitted(run, seqs, targets, vocab, warm)
        return self

    def _warm_network(self):
        """The fitted network a warm start continues, checked against the
        model (``params_`` may have been replaced)."""
        try:
            return self._network()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"params_: warm_start cannot continue from it: {exc}") from None

    def _validation_split(self, data, X_val, y_val, rng, head, k, targets):
        """(training data, validation data) for early stopping."""
        if X_val is not None or y_val is not None:
            if X_val is None or y_val is None:
                raise ValueError("X_val: give both X_val and y_val, or neither")
            seqs = check_inputs(X_val, k, name="X_val", dtype=check_dtype(self.dtype))
            val = self._targets(y_val, seqs, targets.n_outputs, True, name="y_val",
                                classes=targets.classes, output=head.output_name, k=k,
                                dtype=check_dtype(self.dtype))
            return data, _TrainingData(seqs, val.Y, *check_sample_weight(None, seqs, head))
        S = data.seqs.n_sequences
        if S >= 2:
            n_val = min(S - 1, max(1, int(round(self.validation_fraction * S))))
            held = np.sort(rng.permutation(S)[:n_val])
            kept = np.setdiff1d(np.arange(S), held)
            return data.take(kept, head), data.take(held, head)
        if self.bptt is None or head.last_step:
            raise ValueError("early_stopping: needs a validation set: several sequences (a "
                             "fraction is held out), a single sequence trained with bptt (its "
                             "last steps are held out), or X_val and y_val")
        return data.split_steps(self.validation_fraction)

    def _set_fitted(self, run, seqs, targets, vocab, warm):
        net = network_from_theta(run.theta, run.architecture)
        self._net = net
        self.params_ = net.params
        self.cell_ = run.architecture.cell
        self.n_inputs_, self.n_outputs_ = run.architecture.n_inputs, run.architecture.n_outputs
        self.input_kind_ = "ids" if seqs.is_ids else "dense"
        if not seqs.is_ids:
            self.n_features_in_ = seqs.data.shape[1]
        elif hasattr(self, "n_features_in_"):
            del self.n_features_in_
        self.output_ = targets.head.output_name
        self.vocab_ = vocab if vocab is not None else (getattr(self, "vocab_", None) if warm
                                                       else None)
        self.n_iter_ = run.epochs_done
        self.loss_curve_ = (list(self.loss_curve_) if warm else []) + run.losses
        if run.validation is not None:
            self.validation_losses_ = run.validation_losses
            self.best_loss_ = run.best_loss
            self.best_epoch_ = run.best_epoch
        self._optimizer_state = (self.optimizer, run.state, run.step)
        self._set_targets_fitted(targets)

    def _set_targets_fitted(self, targets):
        pass

    # ------------------------------------------------------------- inference
    def _forward(self, X, h0, return_state):
        """ŷ (and the last state) for X, on the validated fitted network."""
        self._check_fitted()
        net = self._network()
        seqs = check_inputs(X, self.n_inputs_, dtype=net.dtype)
        if net.architecture.bidirectional and (h0 is not None or return_state):
            raise ValueError(f"{'h0' if h0 is not None else 'return_state'}: a bidirectional "
                             f"model has no left-to-right state to carry from call to call")
        state0 = check_states(h0, net, seqs)
        head = self._head()
        out, state = run_forward(net, seqs, state0, self.backend, head)
        return (out, state) if return_state else out

    def _head(self):
        return Head(self._loss, self.output_ == "last_step")

    def stream(self, h0: State = None, n_streams: int | None = None) -> Stream:
        """A :class:`fastrnn.Stream` through this fitted model: streaming
        inference one step at a time, ``stream.step(x)`` giving that step's
        output (what predict_proba, or the regressor's predict, gives for
        it), with the state kept inside and about a third of the cost per
        step of ``predict_proba(x, h0=state, return_state=True)``.

        ``h0``: the state to start from (predict_proba's form; None for
        zeros); ``n_streams``: B streams in lock-step (each step takes B
        inputs), or None for one. The stream copies the parameters: make a
        new one after ``fit`` or after editing ``params_``."""
        self._check_fitted()
        return Stream(self._network(), self._head(), self.backend, h0, n_streams,
                      squeeze=self._kind == "regressor" and self.n_outputs_ == 1)

    def loss(self, X: Inputs, y: Inputs, sample_weight: Inputs | None = None) -> float:
        """The training loss on (X, y): the weighted mean over sequences of
        each sequence's summed loss (cross-entropy, or ½ squared error)."""
        self._check_fitted()
        net = self._network()
        seqs = check_inputs(X, self.n_inputs_, dtype=net.dtype)
        y, sample_weight = as_array_like(y, "y"), as_array_like(sample_weight, "sample_weight")
        targets = self._targets(y, seqs, self.n_outputs_, True, output=self.output_,
                                dtype=net.dtype)
        seq_weight, step_weight = check_sample_weight(sample_weight, seqs, targets.head)
        state0 = check_states(None, net, seqs)
        return run_loss_and_grad(net, seqs, targets.Y, sequence_scale(seq_weight), step_weight,
                                 state0, self.backend, targets.head)[0]

    # ----------------------------------------------------------- persistence
    def save(self, path: "str | os.PathLike[str]") -> str:
        """Write the fitted model to ``path`` (an .npz file that loads
        without pickle). The file is written beside its target and renamed
        into place, so an interrupted save never leaves half a model; a
        symbolic link is followed (its target is replaced). Returns the path
        written."""
        self._check_fitted()
        net = self._network()
        self._check_hyperparameters()
        conflicts = _conflicts(self.get_params(), net.architecture, net.dtype)
        if conflicts:
            name, asked, fitted = conflicts[0]
            raise ValueError(f"{name}: the model was fitted with {name}={fitted!r}, but the "
                             f"parameter is now {asked!r}; fit again, or set it back before "
                             f"saving (a model file records the model it holds)")
        hyper = self.get_params()
        hyper["dtype"] = check_dtype(hyper["dtype"]).name      # JSON: a name, not a type
        if not (hyper["random_state"] is None or isinstance(hyper["random_state"], numbers.Integral)):
            hyper["random_state"] = None         # a Generator has no portable form
        a = net.architecture
        from fastrnn import _modelfile
        meta = {"format": _modelfile.FORMAT, "version": FORMAT_VERSION,
                "estimator": type(self).__name__, "hyperparameters": hyper,
                "architecture": {"cell": a.cell, "n_inputs": a.n_inputs, "n_hidden": a.n_hidden,
                                 "n_outputs": a.n_outputs, "n_layers": a.n_layers,
                                 "bidirectional": a.bidirectional},
                "input_kind": self.input_kind_, "output": self.output_, "n_iter": self.n_iter_,
                "vocab": None if self.vocab_ is None else self.vocab_.chars}
        meta.update(self._targets_meta())
        meta["loss_curve_length"] = len(self.loss_curve_)
        arrays = dict(net.params)
        arrays["loss_curve"] = np.asarray(self.loss_curve_, dtype=np.float64)
        return _modelfile.write_model(path, meta, arrays)

    def _targets_meta(self):
        return {}

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> Self:
        """Read a model written by :meth:`save` (also by fastrnn 0.1).
        Anything else, or a damaged file, is a ValueError naming the path."""
        from fastrnn import _modelfile
        meta, arrays = _modelfile.read_model(path, _ModelFileLayout(cls))
        return cls._from_file(path, meta, arrays)

    @classmethod
    def _from_file(cls, path, meta, arrays):
        try:
            layout = _ModelFileLayout(cls)
            architecture = layout.architecture(meta)
            hyper = dict(meta["hyperparameters"])
            if isinstance(hyper.get("betas"), list):
                hyper["betas"] = tuple(hyper["betas"])     # JSON has no tuples
            model = cls(**hyper)
            model._check_hyperparameters()
            first = next(iter(architecture.shapes()))
            conflicts = _conflicts(model.get_params(), architecture, arrays[first].dtype)
            if conflicts:
                name, asked, fitted = conflicts[0]
                raise ValueError(f"the hyperparameters say {name}={asked!r}, the arrays "
                                 f"{name}={fitted!r}")
            net = check_params({key: arrays[key] for key in architecture.shapes()},
                               name="params")
            if net.architecture != architecture:
                raise ValueError(f"the arrays describe a {net.architecture}, the file records "
                                 f"a {architecture}")
            vocab = None if meta.get("vocab") is None else CharVocab(meta["vocab"])
            if vocab is not None and (len(vocab) != architecture.n_inputs
                                      or vocab.chars != meta["vocab"]):
                raise ValueError(f"the vocabulary has {len(vocab)} distinct characters "
                                 f"{'in a different order ' if len(vocab) == architecture.n_inputs else ''}"
                                 f"for a model of {architecture.n_inputs} inputs")
            input_kind = meta["input_kind"]
            check_choice(input_kind, ("ids", "dense"), "input_kind")
            output = meta.get("output", "every_step")
            check_choice(output, OUTPUT_CHOICES[1:], "output")
            n_iter = meta["n_iter"]
            if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
                raise ValueError(f"n_iter: expected a non-negative integer, got {n_iter!r}")
            loss_curve = arrays["loss_curve"]
            if n_iter > len(loss_curve):
                raise ValueError(f"n_iter: {n_iter} epochs, more than the loss curve's "
                                 f"{len(loss_curve)}")
            model._net = net
            model.params_ = net.params
            model.cell_ = architecture.cell
            model.n_inputs_, model.n_outputs_ = architecture.n_inputs, architecture.n_outputs
            model.input_kind_ = input_kind
            if input_kind == "dense":
                model.n_features_in_ = architecture.n_inputs
            model.output_ = output
            model.vocab_ = vocab
            model.n_iter_ = n_iter
            model.loss_curve_ = [float(v) for v in loss_curve]
            model._optimizer_state = None
            model._load_targets_meta(meta)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            from fastrnn import _modelfile
            raise _modelfile.ModelFileError(f"{path}: not a valid fastrnn model file ({exc})") \
                from None
        return model

    def _load_targets_meta(self, meta):
        pass


class FastRNN(_RecurrentEstimator):
    """A recurrent network classifier (simple RNN, LSTM or GRU; stacked,
    bidirectional) trained by backpropagation through time in compiled code.

    It predicts a class at every step (a language model, a tagger) or one
    class per sequence (many-to-one), from the shape of y:

    * a target per step: y shaped like X's steps ((T,) for one sequence,
      (B, T) for a batch, a list of (T_b,) for a list of sequences), or
      float distributions with a trailing axis of m;
    * one per sequence: y of shape (B,) for a batch or a list of B
      sequences (a scalar for one sequence).

    ``output`` ("auto", "every_step" or "last_step") decides where the shape
    does not. Labels may be anything ``np.unique`` sorts (strings, -1/1,
    any integers): ``classes_`` holds them and ``predict`` returns them.
    Integer targets of token-id inputs at every step are token ids of the
    inputs' vocabulary (``classes_ = arange(m)``, m ≥ k), so that language
    models predict and ``sample`` in the inputs' ids.

    Parameters
    ----------
    n_hidden : int, hidden units d (per layer and direction).
    cell : "rnn" (tanh, the notes' simple RNN), "lstm" or "gru".
    backend : "numba" (compiled kernels) or "numpy" (the readable reference;
        same results to float64 round-off, much slower).
    optimizer : "sgd", "momentum", "adagrad", "rmsprop" or "adam".
    learning_rate : float or None (then 0.1 for sgd and adagrad, 0.01 for
        momentum, rmsprop and adam).
    epochs : passes over the data.
    batch_size : sequences per update; None: all of them.
    shuffle : visit the sequences in a new random order every epoch.
    clip : None, or the threshold of gradient clipping.
    clip_mode : "norm" (scale the whole gradient to global L2 norm ``clip``)
        or "value" (clamp every entry to ±clip).
    bptt : None, or truncate backpropagation to chunks of this many steps;
        the states still flow from chunk to chunk. Each chunk is one update,
        so a single long sequence (a whole text) trains.
    random_state : None, int or numpy Generator: initial weights, shuffling,
        the validation split and dropout masks are drawn from
        ``np.random.default_rng(random_state)``. An int replays the same
        draws on every call to ``fit`` (also with warm_start); pass a
        Generator to continue one stream across calls.
    verbose : 0 silent, 1 progress on stderr (rewritten in place on a
        terminal; elsewhere a line every 10 seconds and at the end).
    warm_start : continue from the fitted parameters (and optimizer state).
    n_inputs, n_outputs : k and m; None: learned from the data (feature
        count, or the largest id + 1, up to 131071; m defaults to at least k
        for token ids, next-symbol prediction).
    momentum : μ of "momentum". betas : (β1, β2) of "adam"; β2 is also the
        decay of "rmsprop". eps : the ε of adagrad, rmsprop and adam.
    n_layers : stacked layers, each reading the layer below.
    bidirectional : every layer also runs from each sequence's last step to
        its first; not with bptt, a carried state or ``sample``.
    dropout : probability of dropping each output of a layer below the last,
        during training (inverted dropout).
    output : "auto", "every_step" or "last_step" (see above).
    early_stopping : hold out ``validation_fraction`` of the sequences (or
        use X_val, y_val given to fit), stop when the validation loss has not
        improved by ``tol`` for ``n_iter_no_change`` epochs, and keep the
        parameters of the best epoch. Off (the default), fit runs exactly
        ``epochs`` epochs.

    Attributes (after fit)
    ----------
    params_ : dict of the learned arrays (keys of ``fastrnn.init_params``).
    classes_ : the class labels, in the order of ``predict_proba``'s columns.
    loss_curve_ : each epoch's training loss (the weighted mean over
        sequences of the summed loss, as seen by the updates of that epoch).
    n_iter_ : epochs run by the last fit. n_inputs_, n_outputs_, vocab_,
    n_features_in_ (float inputs), output_ ("every_step" or "last_step").
    validation_losses_, best_loss_, best_epoch_ : with early stopping.
    """

    _estimator_type = "classifier"
    _kind = "classifier"
    _loss = CROSS_ENTROPY
    classes_: Array

    def _targets(self, y, seqs, m, warm, name="y", classes=None, output=None, k=None,
                 dtype=np.float64):
        if warm and classes is None and hasattr(self, "classes_"):
            classes = self.classes_
        k = k if k is not None else getattr(self, "n_inputs_", None)
        return classifier_targets(y, seqs, self.output if output is None else output, m,
                                  k if k is not None else 1, classes=classes, name=name,
                                  dtype=dtype)

    def _set_targets_fitted(self, targets):
        self.classes_ = targets.classes

    def _targets_meta(self):
        classes = self.classes_
        values = classes.tolist()
        if classes.dtype.kind == "S":                # bytes: JSON holds text (one char a byte)
            values = [v.decode("latin-1") for v in values]
        return {"classes": {"dtype": classes.dtype.str, "values": values}}

    def _load_targets_meta(self, meta):
        classes = meta.get("classes")
        if classes is None:                       # a fastrnn 0.1 file: ids
            self.classes_ = np.arange(self.n_outputs_)
            return
        dtype = np.dtype(classes["dtype"])
        if dtype.kind not in "iufUSb":
            raise ValueError(f"classes: labels of dtype {dtype} cannot be stored")
        listed = classes["values"]
        scalar = (str,) if dtype.kind in "US" else (bool,) if dtype.kind == "b" else (int, float)
        if not isinstance(listed, list) or len(listed) != self.n_outputs_ or not all(
                isinstance(v, scalar) for v in listed):
            raise ValueError(f"classes: expected {self.n_outputs_} labels of dtype {dtype}")
        if dtype.kind == "S":
            listed = [v.encode("latin-1") for v in listed]
        # The labels as they are, then in the recorded dtype: a width or a
        # value the labels do not need (a file asking for gigabytes of
        # padding, an int that wraps) is refused, not allocated.
        if dtype.kind in "iu":
            if any(isinstance(v, float) for v in listed):
                raise ValueError(f"classes: expected integer labels for dtype {dtype}")
            bounds = np.iinfo(dtype)
            if not all(bounds.min <= v <= bounds.max for v in listed):
                raise ValueError(f"classes: labels beyond what dtype {dtype} holds")
            natural = np.array(listed, dtype=dtype)
        else:
            natural = np.array(listed, dtype=np.float64 if dtype.kind == "f" else None)
        if dtype.kind in "US" and dtype.itemsize > max(natural.dtype.itemsize,
                                                            _limits.MAX_LABEL_BYTES):
            raise ValueError(f"classes: dtype {dtype} is wider than its labels need")
        with np.errstate(over="ignore", invalid="ignore"):     # then refused as unequal
            values = natural.astype(dtype)
        if values.shape != (self.n_outputs_,) or not np.array_equal(values, natural) or (
                len(values) > 1 and not np.all(values[1:] > values[:-1])):
            raise ValueError(f"classes: expected {self.n_outputs_} sorted distinct labels "
                             f"of dtype {dtype}")
        self.classes_ = values

    def predict_proba(self, X: Inputs, h0: State = None, return_state: bool = False) -> Any:
        """Class probabilities: at every step, shaped like X's steps with a
        trailing axis of len(classes_); or (B, m) / (m,) with one class per
        sequence. ``h0``: the state to start from (see ``fastrnn.forward``);
        ``return_state``: also return the last state, to pass as the next
        call's ``h0`` (streaming, one step at a time)."""
        return self._forward(X, h0, return_state)

    def predict(self, X: Inputs, h0: State = None, return_state: bool = False) -> Any:
        """The most probable class label at every step (shaped like X's
        steps) or of every sequence; ``h0`` and ``return_state`` as in
        :meth:`predict_proba`."""
        out = self.predict_proba(X, h0, return_state)
        probs, state = out if return_state else (out, None)
        if isinstance(probs, list):
            labels = [self.classes_[p.argmax(axis=-1)] for p in probs]
        else:
            labels = self.classes_[probs.argmax(axis=-1)]
        return (labels, state) if return_state else labels

    def score(self, X: Inputs, y: Inputs, sample_weight: Inputs | None = None) -> float:
        """Mean accuracy over all predicted outputs (every step, or every
        sequence), weighted by ``sample_weight`` if given."""
        self._check_fitted()
        seqs = check_inputs(X, self.n_inputs_)
        y, sample_weight = as_array_like(y, "y"), as_array_like(sample_weight, "sample_weight")
        targets = self._targets(y, seqs, self.n_outputs_, True, output=self.output_)
        truth = targets.Y if targets.Y.ndim == 1 else targets.Y.argmax(axis=1)
        probs = self.predict_proba(X)
        if isinstance(probs, list):
            probs = np.concatenate(probs)
        predicted = probs.reshape(-1, self.n_outputs_).argmax(axis=1)
        weights = _output_weights(sample_weight, seqs, targets.head)
        return float(np.average(predicted == truth, weights=weights))

    def sample(self, n_steps: int, start: Any = None, temperature: float = 1.0,
               random_state: RandomState = None) -> Array:
        """Generate ``n_steps`` token ids, each fed back as the next input.

        ``start``: a token id or a sequence of ids (or a string, for a model
        with a vocabulary) that primes the state; None: a random id.
        ``temperature`` < 1 sharpens the distribution, > 1 flattens it; a
        temperature so small that the distribution cannot be told from its
        largest entry (below about 1e-3 in practice) draws the most probable
        token, as greedy decoding does. Returns an int64 array of the
        generated ids (``start`` excluded)."""
        self._check_fitted()
        net = self._network()
        if self.input_kind_ != "ids" or self.output_ != "every_step" or \
                self.n_outputs_ != self.n_inputs_:
            raise ValueError("sample: needs a model trained on token ids to predict the next "
                             "token at every step (n_outputs == n_inputs)")
        if net.architecture.bidirectional:
            raise ValueError("sample: a bidirectional model reads each sequence from both "
                             "ends, so it cannot generate one step after another")
        n_steps = check_positive_int(n_steps, "n_steps", _limits.MAX_SAMPLE_STEPS)
        temperature = _check_positive_float(temperature, "temperature")
        rng = check_random_state(random_state)
        if start is None:
            start = np.array([rng.integers(self.n_inputs_)])
        elif isinstance(start, str):
            if self.vocab_ is None:
                raise TypeError("start: a string needs a model fitted with a vocab; "
                                "pass token ids instead")
            start = self.vocab_.encode(start)
        else:
            start = np.atleast_1d(start)
        seqs = check_inputs(start, self.n_inputs_, name="start")
        if seqs.form != "single":
            raise ValueError(f"start: expected a token id or a 1-D sequence of ids, got shape "
                             f"{np.shape(start)}")
        uniforms = rng.random(n_steps)
        generated = np.empty(n_steps, dtype=np.int64)
        head = Head(CROSS_ENTROPY, False)
        probs, state = run_forward(net, seqs, check_states(None, net, seqs), self.backend, head)
        p = probs[-1]
        stream = Stream(net, head, self.backend, h0=state)
        for i in range(n_steps):
            token = _draw(p, temperature, uniforms[i])
            generated[i] = token
            if i + 1 < n_steps:
                p = stream.step(token)
        return generated

    def sample_text(self, n_chars: int, start: Any = None, temperature: float = 1.0,
                    random_state: RandomState = None) -> str:
        """Like :meth:`sample`, decoded by the model's vocabulary."""
        self._check_fitted()
        if self.vocab_ is None:
            raise ValueError("sample_text: this model has no vocabulary; fit it with "
                             "vocab=CharVocab(text)")
        return self.vocab_.decode(self.sample(n_chars, start, temperature, random_state))


class FastRNNRegressor(_RecurrentEstimator):
    """A recurrent network regressor (simple RNN, LSTM or GRU; stacked,
    bidirectional): real values at every step (forecasting a series one
    step ahead, say) or one vector per sequence, trained on the squared
    error ½‖ŷ − y‖² by backpropagation through time.

    y: a target per step, shaped like X's steps, with a trailing axis of m
    that may be left out when m = 1 ((T,) or (T, m), (B, T) or (B, T, m),
    lists of these); or one per sequence, (B,) or (B, m) (a number or an
    (m,) vector for one sequence). Where the shape does not decide (a float
    (B, T) y for a (B, T, k) X), per step is chosen; ``output="last_step"``
    says otherwise. ``predict`` returns what y looked like, and ``score`` is
    R² (the coefficient of determination, averaged over the m outputs, as
    scikit-learn's regressors compute it), over every predicted output.

    The parameters are FastRNN's (there, ``n_outputs`` is m).
    """

    _estimator_type = "regressor"
    _kind = "regressor"
    _loss = 1                                   # SQUARED_ERROR

    def _targets(self, y, seqs, m, warm, name="y", classes=None, output=None, k=None,
                 dtype=np.float64):
        return regressor_targets(y, seqs, self.output if output is None else output, m,
                                 name=name, dtype=dtype)

    def _set_targets_fitted(self, targets):
        pass

    def predict(self, X: Inputs, h0: State = None, return_state: bool = False) -> Any:
        """ŷ at every step (shaped like X's steps, with a trailing axis of m
        unless m = 1) or one per sequence; ``h0`` and ``return_state`` as in
        FastRNN.predict_proba (streaming)."""
        out = self._forward(X, h0, return_state)
        values, state = out if return_state else (out, None)
        if self.n_outputs_ == 1:
            values = [v[..., 0] for v in values] if isinstance(values, list) else values[..., 0]
        return (values, state) if return_state else values

    def score(self, X: Inputs, y: Inputs, sample_weight: Inputs | None = None) -> float:
        """R² of the predictions over every output (every step, or every
        sequence), averaged over the m output columns; weighted by
        ``sample_weight`` if given."""
        self._check_fitted()
        seqs = check_inputs(X, self.n_inputs_)
        y, sample_weight = as_array_like(y, "y"), as_array_like(sample_weight, "sample_weight")
        targets = self._targets(y, seqs, self.n_outputs_, True, output=self.output_)
        predicted = self._forward(X, None, False)
        if isinstance(predicted, list):
            predicted = np.concatenate(predicted)
        predicted = predicted.reshape(-1, self.n_outputs_)
        weights = _output_weights(sample_weight, seqs, targets.head)
        return _r2(targets.Y, predicted, weights)


# ---------------------------------------------------------------- training
class _TrainingData:
    """Packed training sequences with their targets and weights."""

    def __init__(self, seqs, Y, seq_weight, step_weight):
        self.seqs, self.Y = seqs, Y
        self.seq_weight, self.step_weight = seq_weight, step_weight

    @property
    def starts(self):
        return np.ascontiguousarray(self.seqs.offsets[:-1])

    @property
    def lengths(self):
        return np.diff(self.seqs.offsets)

    def take(self, indices, head):
        """The sequences ``indices``, packed anew."""
        o = self.seqs.offsets
        rows = np.concatenate([np.arange(o[i], o[i + 1]) for i in indices])
        lengths = np.diff(o)[indices]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        seqs = Sequences(np.ascontiguousarray(self.seqs.data[rows]), offsets, "list")
        Y = self.Y[indices] if head.last_step else self.Y[rows]
        step_weight = self.step_weight[rows] if len(self.step_weight) else self.step_weight
        return _TrainingData(seqs, np.ascontiguousarray(Y), self.seq_weight[indices],
                             step_weight)

    def split_steps(self, fraction):
        """One sequence cut in two: its last ``fraction`` of steps held out."""
        N = self.seqs.n_rows
        n_val = max(1, int(round(fraction * N)))
        if N - n_val < 1:
            raise ValueError("validation_fraction: leaves no steps to train on")
        parts = []
        for rows in (slice(0, N - n_val), slice(N - n_val, N)):
            n = rows.stop - rows.start
            seqs = Sequences(self.seqs.data[rows], np.array([0, n], dtype=np.int64), "single")
            step_weight = self.step_weight[rows] if len(self.step_weight) else self.step_weight
            parts.append(_TrainingData(seqs, self.Y[rows], np.ones(1), step_weight))
        return tuple(parts)


class _Run:
    """One fit's training: blocks of epochs in compiled calls, Ctrl-C,
    progress, early stopping, faults."""

    def __init__(self, model, architecture, theta, state, step, data, head, rng, validation,
                 report):
        self.model, self.architecture = model, architecture
        self.theta, self.state, self.step = theta, state, step
        self.data, self.head, self.rng, self.validation = data, head, rng, validation
        self.report = report
        self.losses = []
        self.epochs_done = 0
        self.completed_update = False
        self.abandoned = False
        self.validation_losses, self.best_loss, self.best_epoch = [], math.inf, 0

    def train(self):
        model, a, data = self.model, self.architecture, self.data
        net = network_from_theta(self.theta, a)
        S = data.seqs.n_sequences
        batch_size = S if model.batch_size is None else min(int(model.batch_size), S)
        longest = int(data.lengths.max())
        bptt = longest if model.bptt is None else min(int(model.bptt), longest)
        lr = model.learning_rate if model.learning_rate is not None \
            else DEFAULT_LEARNING_RATES[model.optimizer]
        self.lr = float(lr)
        hyper = np.array([lr, model.momentum, model.betas[0], model.betas[1], model.eps],
                         dtype=np.float64)
        clip_mode = CLIP_NONE if model.clip is None else \
            {"norm": CLIP_NORM, "value": CLIP_VALUE}[model.clip_mode]
        work = work_per_row(net)
        train = train_module(model.backend).train_epochs
        extra = {}
        if model.backend == "numba" and _train_threads.is_worth_it(work, batch_size, bptt):
            train, extra = _train_threads.train_epochs, {"work_per_row": work}
        dropout = float(model.dropout)
        tag = CELLS[a.cell].tag
        arguments = (tag, self.theta, net.table, net.dims, data.seqs.data, data.Y, data.starts,
                     data.lengths, data.seq_weight, data.step_weight)
        options = (batch_size, bptt, self.head.loss, self.head.last_step, dropout,
                   OPTIMIZERS.index(model.optimizer), hyper, clip_mode, float(model.clip or 0.0),
                   self.state, self.step)
        progress = np.zeros(3, dtype=np.int64)
        epochs = int(model.epochs)
        self.line = _FitProgress(epochs, data, self.head) if model.verbose else None
        self.watched, self.warned = 0, False
        block, no_change = 1, 0
        if self.validation is not None:
            self.best_theta, self.best_state = self.theta.copy(), (self.state.copy(),
                                                                   self.step.copy())
        fault = 0
        with StopFlag() as stop:
            try:
                while self.epochs_done < epochs and not stop.hit:
                    block = min(block, epochs - self.epochs_done,
                                max(1, _MAX_BLOCK_ORDERS // S))
                    if self.validation is not None:
                        block = 1
                    order, seeds = _epoch_draws(self.rng, block, S, model.shuffle, dropout)
                    losses = np.full(block, np.nan)
                    progress[:] = 0
                    start = time.perf_counter()

                    def call():                 # on a worker thread: Ctrl-C stays free
                        if model.backend == "numba":
                            load_products(self.theta.dtype, gradients=True)
                        return train(*arguments, order, seeds, *options, losses, progress,
                                     stop.array, **extra)

                    def waiting():
                        self.completed_update |= bool(progress[0] or progress[1])
                        if self.line:
                            self.line.update(self.epochs_done, progress, self.losses)
                        if self.report:
                            self.report(self.epochs_done, progress, self.losses)

                    code = run_stoppable(call, stop, waiting)
                    elapsed = time.perf_counter() - start
                    done = int(progress[0])
                    self.completed_update |= bool(done or progress[1])
                    self.losses += [float(v) for v in losses[:done]]
                    self.epochs_done += done
                    if code not in (0, STOPPED):
                        fault = code
                        break
                    self._watch_the_loss()
                    if self.line:
                        self.line.update(self.epochs_done, progress, self.losses,
                                         block_done=True)
                    if self.report:
                        self.report(self.epochs_done, progress, self.losses)
                    if code == STOPPED:                 # a Ctrl-C, or fit_many cancelling
                        break
                    if self.validation is not None and done:
                        no_change = self._validate(net, no_change)
                        if no_change >= model.n_iter_no_change:
                            break
                    block = max(1, min(8 * block,
                                       int(block * _BLOCK_SECONDS / max(elapsed, 1e-9))))
            except KeyboardInterrupt:
                # A second Ctrl-C, during a call (its worker may still write
                # into theta) or during this loop's bookkeeping (theta ahead
                # of the loss curve): the run is abandoned, the model left as
                # it was before fit.
                self.abandoned = True
                raise
            interrupted = stop.hit or code == STOPPED
        if self.line:
            self.line.close(self.epochs_done, self.losses)
        if self.validation is not None and self.best_epoch:
            self.theta[:] = self.best_theta
            self.state[:], self.step[:] = self.best_state
        if fault:
            self._raise_fault(fault, int(progress[1]))
        if interrupted:
            raise KeyboardInterrupt

    def _validate(self, net, no_change):
        """The validation loss after the epoch just done; returns the count of
        epochs without an improvement by tol."""
        v = self.validation
        state0 = np.zeros((self.architecture.n_slots, net.n_states, v.seqs.n_sequences,
                           self.architecture.n_hidden), net.dtype)
        value = run_loss_and_grad(net, v.seqs, v.Y, sequence_scale(v.seq_weight), v.step_weight,
                                  state0, self.model.backend, self.head)[0]
        self.validation_losses.append(value)
        if value < self.best_loss - self.model.tol:
            no_change = 0
        else:
            no_change += 1
        if value < self.best_loss:
            self.best_loss, self.best_epoch = value, self.epochs_done
            self.best_theta[:] = self.theta
            self.best_state = (self.state.copy(), self.step.copy())
        return no_change

    def _watch_the_loss(self):
        """Warn once when the training loss has risen for _RISING_EPOCHS
        epochs in a row, by more than 1% in all (not a ripple near the
        minimum), anywhere among the epochs of the last block."""
        losses = self.losses
        first = max(_RISING_EPOCHS, self.watched)
        self.watched = len(losses)
        for end in range(first, len(losses)):
            if self.warned:
                return
            recent = losses[end - _RISING_EPOCHS:end + 1]
            if all(b > a for a, b in zip(recent, recent[1:])) and recent[-1] > 1.01 * recent[0]:
                self._warn_rising(recent)

    def _warn_rising(self, recent):
        self.warned = True
        warnings.warn(f"fit: the training loss has risen for {_RISING_EPOCHS} epochs in a "
                      f"row (from {recent[0]:.4g} to {recent[-1]:.4g}); the learning rate "
                      f"({self.lr:g}) may be too high for these data. Try a smaller "
                      f"learning_rate, or gradient clipping (clip=1.0).", RuntimeWarning,
                      stacklevel=6)                     # the caller of fit

    def _raise_fault(self, fault, updates):
        reason = {LOSS_NOT_FINITE: "the loss became non-finite",
                  GRAD_NOT_FINITE: "the gradient became non-finite",
                  UPDATE_NOT_FINITE: "an update would have made a parameter or the "
                                     "optimizer's state non-finite"}[fault]
        epoch = self.epochs_done + 1
        kept = (f"{self.epochs_done} complete epochs and {updates} updates of epoch {epoch}"
                if updates else f"{self.epochs_done} complete epochs")
        raise FloatingPointError(
            f"fit: {reason} in epoch {epoch}, update {updates + 1}; that update was not "
            f"applied: params_ and the optimizer's state are those after {kept} "
            f"(loss_curve_ holds the complete epochs). Try a smaller learning_rate (was "
            f"{self.lr:g}) or gradient clipping (clip=1.0).")


class _FitProgress:
    """fit(verbose=1): the epoch, the loss per step and the speed, on stderr."""

    def __init__(self, epochs, data, head):
        self.epochs = epochs
        self.rows = data.seqs.n_rows
        self.outputs = data.seqs.n_sequences if head.last_step else self.rows
        self.per_step = data.seqs.n_sequences / self.outputs
        self.unit = "sequence" if self.outputs != self.rows else "step"
        self.line = ProgressLine()
        self.start = time.perf_counter()

    def _text(self, epochs_done, progress, losses):
        elapsed = time.perf_counter() - self.start
        steps = epochs_done * self.rows + (int(progress[2]) if epochs_done < self.epochs else 0)
        share = f" ({100 * int(progress[2]) / self.rows:.0f}%)" if progress[2] and \
            epochs_done < self.epochs else ""
        loss = f"loss/{self.unit} {losses[-1] * self.per_step:.4f}" if losses else \
            f"loss/{self.unit} -"
        speed = f"{steps / elapsed:,.0f} steps/s" if elapsed > 0 else ""
        return (f"epoch {epochs_done}/{self.epochs}{share}  {loss}  {speed}  "
                f"{format_clock(elapsed)}")

    def update(self, epochs_done, progress, losses, block_done=False):
        self.line.show(self._text(epochs_done, progress, losses))

    def close(self, epochs_done, losses):
        self.line.show(self._text(epochs_done, np.zeros(3, dtype=np.int64), losses), keep=True)


def _epoch_draws(rng, n_epochs, n_sequences, shuffle, dropout):
    """(orders (n_epochs, S), dropout seeds (n_epochs,) uint64) of the next
    n_epochs epochs, drawn epoch by epoch: the order of the sequences (the
    argsort of uniform draws, when shuffled), then the epoch's dropout seed
    (only with dropout, so that without it the stream is what it always
    was). The stream is consumed the same way however the epochs are cut
    into blocks or warm-started calls sharing one Generator."""
    orders = np.empty((n_epochs, n_sequences), dtype=np.int64)
    seeds = np.zeros(n_epochs, dtype=np.uint64)
    shuffled = shuffle and n_sequences > 1
    for e in range(n_epochs):
        orders[e] = np.argsort(rng.random(n_sequences), kind="stable") if shuffled \
            else np.arange(n_sequences)
        if dropout:
            seeds[e] = rng.integers(0, 2**63)
    return orders, seeds


def _conflicts(hyper, architecture, dtype):
    """(name, parameter, fitted) of every hyperparameter that disagrees with
    a fitted network (n_inputs and n_outputs only when given)."""
    fitted = {"cell": architecture.cell, "n_hidden": architecture.n_hidden,
              "n_layers": architecture.n_layers, "bidirectional": architecture.bidirectional,
              "n_inputs": architecture.n_inputs, "n_outputs": architecture.n_outputs,
              "dtype": np.dtype(dtype).name}
    given = dict(hyper, dtype=check_dtype(hyper["dtype"]).name)
    return [(name, hyper[name], value) for name, value in fitted.items()
            if not (given[name] is None and name in ("n_inputs", "n_outputs"))
            and given[name] != value]


def _draw(p, temperature, uniform):
    """A token drawn from p sharpened by ``temperature``: weights
    (p / p_max)^(1/T), computed on log p so that no temperature overflows;
    a tiny one leaves only the largest (greedy)."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        logp = np.log(p)
        # (log p - max) / T is 0 for the largest and -inf for the others
        # when T is tiny: only the largest can be drawn, as it should.
        weights = np.exp((logp - logp.max()) / temperature)
    cumulative = np.cumsum(weights)
    return min(int(np.searchsorted(cumulative, uniform * cumulative[-1], side="right")),
               len(p) - 1)


def _output_weights(sample_weight, seqs, head):
    """One weight per output row for score(), from per-sequence or per-step weights."""
    if sample_weight is None:
        return None
    seq_weight, step_weight = check_sample_weight(sample_weight, seqs, head)
    if head.last_step:
        return seq_weight
    if len(step_weight):
        return step_weight
    return np.repeat(seq_weight, np.diff(seqs.offsets))


def _r2(truth, predicted, weights):
    """R², averaged over output columns, as scikit-learn's r2_score: a
    column whose truth is constant scores 1 if predicted exactly, else 0."""
    w = np.ones(len(truth)) if weights is None else weights
    mean = np.average(truth, axis=0, weights=w)
    residual = (w[:, None] * (truth - predicted) ** 2).sum(axis=0)
    total = (w[:, None] * (truth - mean) ** 2).sum(axis=0)
    scores = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0),
                      np.where(residual == 0, 1.0, 0.0))
    return float(scores.mean())


def _check_positive_float(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a positive number, got {describe(value)}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def _check_fraction(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number in [0, 1), got {describe(value)}")
    if not 0 <= value < 1:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


class _ModelFileLayout:
    """What a model file must hold, given its meta: ``read_model`` checks
    each array's shape against this before reading it."""

    def __init__(self, cls):
        self.cls = cls

    def architecture(self, meta):
        if not isinstance(meta, dict):
            raise ValueError("the meta data is not a JSON object")
        version = meta.get("version")
        if version not in (1, FORMAT_VERSION):
            raise ValueError(f"format version {version!r}; this fastrnn reads 1 and "
                             f"{FORMAT_VERSION}")
        estimator = meta.get("estimator", "FastRNN")
        if estimator != self.cls.__name__:
            raise ValueError(f"a {estimator} model, not a {self.cls.__name__}")
        if version == 1:                             # fastrnn 0.1: one layer, rnn or lstm
            sizes = {"cell": meta["cell"], "n_inputs": meta["n_inputs"],
                     "n_hidden": meta["hyperparameters"]["n_hidden"],
                     "n_outputs": meta["n_outputs"], "n_layers": 1, "bidirectional": False}
        else:
            sizes = meta["architecture"]
            if not isinstance(sizes, dict):
                raise ValueError("architecture: expected a JSON object")
        check_cell(sizes["cell"])
        for name in ("n_inputs", "n_hidden", "n_outputs"):
            check_positive_int(sizes[name], name, _limits.MAX_SIZE)
        check_positive_int(sizes["n_layers"], "n_layers", _limits.MAX_LAYERS)
        architecture = Architecture(sizes["cell"], sizes["n_inputs"], sizes["n_hidden"],
                                    sizes["n_outputs"], sizes["n_layers"],
                                    check_bool(sizes["bidirectional"], "bidirectional"))
        check_network_size(architecture)
        return architecture

    def __call__(self, meta):
        """{member: (shape, dtype)} of the arrays the file must hold."""
        n_iter = meta.get("n_iter")
        if isinstance(n_iter, bool) or not isinstance(n_iter, int) or not \
                0 <= n_iter <= _limits.MAX_EPOCHS:
            raise ValueError(f"n_iter: expected an integer in [0, {_limits.MAX_EPOCHS}], got "
                             f"{n_iter!r}")
        architecture = self.architecture(meta)
        dtype = meta["hyperparameters"].get("dtype", "float64") if isinstance(
            meta.get("hyperparameters"), dict) else "float64"
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype: expected one of {FLOAT_DTYPES}, got {dtype!r}")
        expected = {key: (shape, np.dtype(dtype)) for key, shape in architecture.shapes().items()}
        if meta["version"] == 1:
            # fastrnn 0.1 did not record the curve's length (warm starts add to it):
            # bounded so that a crafted file cannot ask for much more than the model.
            expected["loss_curve"] = (("1d", max(2 * architecture.n_params, n_iter, 10**6)),
                                      np.float64)
        else:
            length = meta.get("loss_curve_length")
            if isinstance(length, bool) or not isinstance(length, int) or \
                    not 0 <= length <= _limits.MAX_EPOCHS:
                raise ValueError(f"loss_curve_length: expected an integer in "
                                 f"[0, {_limits.MAX_EPOCHS}], got {length!r}")
            expected["loss_curve"] = ((length,), np.float64)
        return expected
