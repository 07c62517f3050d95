"""FastRNN: a scikit-learn style estimator around the kernels.

It validates, dispatches and keeps state; the training itself runs in
``train_epochs`` of the chosen backend (``fastrnn.kernels.train`` or its
NumPy twin ``fastrnn.reference.train``), whole epochs per call.
"""
import inspect
import json
import math
import numbers
import os
import tempfile
import time
import warnings
import zipfile

import numpy as np

from fastrnn import _train_threads
from fastrnn._codes import CELL_CODES, CLIP_MODES, CLIP_NONE, CLIP_NORM, CLIP_VALUE, OPTIMIZERS
from fastrnn._interrupt import HeldInterrupt
from fastrnn._progress import ProgressBar
from fastrnn._validation import (GATES, PARAM_KEYS, check_cell, check_inputs, check_params,
                                 check_positive_int, check_random_state, check_targets,
                                 n_inputs_of, n_outputs_of)
from fastrnn.backends import check_backend, train_module
from fastrnn.functional import forward, loss_and_grad
from fastrnn.params import init_params
from fastrnn.reference.train import unflatten
from fastrnn.vocab import CharVocab

# Learning rate when learning_rate=None: the usual starting point of each.
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "momentum": 0.01, "adagrad": 0.1,
                          "rmsprop": 0.01, "adam": 0.001}
FORMAT = "fastrnn-model"
FORMAT_VERSION = 1
# A block of epochs per kernel call runs about this long: long enough that
# the call costs nothing, short enough for a live progress bar and Ctrl-C.
_BLOCK_SECONDS = 0.2


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class FastRNN:
    """A recurrent network (simple RNN or LSTM) with a softmax output,
    trained by backpropagation through time in compiled code.

    Parameters
    ----------
    n_hidden : int, hidden units d.
    cell : "rnn" (tanh, the notes' simple RNN) or "lstm".
    backend : "numba" (compiled kernels) or "numpy" (the readable reference;
        same results to float64 round-off, much slower).
    optimizer : "sgd", "momentum", "adagrad", "rmsprop" or "adam".
    learning_rate : float or None (then 0.1 for sgd and adagrad, 0.01 for
        momentum and rmsprop, 0.001 for adam).
    epochs : passes over the data.
    batch_size : sequences per update; None: all of them.
    shuffle : visit the sequences in a new random order every epoch.
    clip : None, or the threshold of gradient clipping.
    clip_mode : "norm" (scale the whole gradient to global L2 norm ``clip``)
        or "value" (clamp every entry to ±clip).
    bptt : None, or truncate backpropagation to chunks of this many steps;
        the hidden state still flows from chunk to chunk. Each chunk is one
        update, so a single long sequence (a whole text) trains.
    random_state : None, int or numpy Generator: initial weights and the
        shuffling are drawn from ``np.random.default_rng(random_state)``.
        An int replays the same draws on every call to ``fit`` (also with
        warm_start); pass a Generator to continue one stream across calls.
    verbose : 0 silent, 1 a progress bar over epochs on stderr.
    warm_start : continue from the fitted parameters (and optimizer state).
    n_inputs, n_outputs : k and m; None: learned from the data (feature
        count, or the largest id + 1; m defaults to at least k for token ids,
        next-symbol prediction).
    momentum : μ of "momentum". betas : (β1, β2) of "adam"; β2 is also the
        decay of "rmsprop". eps : the ε of adagrad, rmsprop and adam.

    Attributes (after fit)
    ----------
    params_ : dict of the learned arrays (keys of ``fastrnn.init_params``).
    loss_curve_ : list of each epoch's loss (mean over sequences of the
        summed cross-entropy, as seen by the updates of that epoch).
    n_inputs_, n_outputs_, n_iter_ (epochs run by the last fit), vocab_.
    """

    def __init__(self, n_hidden=32, cell="rnn", backend="numba", optimizer="sgd",
                 learning_rate=None, epochs=100, batch_size=None, shuffle=True, clip=None,
                 clip_mode="norm", bptt=None, random_state=None, verbose=0, warm_start=False,
                 n_inputs=None, n_outputs=None, momentum=0.9, betas=(0.9, 0.999), eps=1e-8):
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

    # ----------------------------------------------------------- sklearn API
    @classmethod
    def _param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        names = self._param_names()
        for name, value in params.items():
            if name not in names:
                raise ValueError(f"{name}: not a parameter of FastRNN; "
                                 f"the parameters are {', '.join(names)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values() if p.name != "self"}
        changed = [f"{name}={value!r}" for name, value in self.get_params().items()
                   if not (isinstance(value, type(defaults[name])) and value == defaults[name])]
        return f"FastRNN({', '.join(changed)})"

    # ------------------------------------------------------------ validation
    def _check_hyperparameters(self):
        check_positive_int(self.n_hidden, "n_hidden")
        check_cell(self.cell)
        check_backend(self.backend)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.learning_rate is not None:
            _check_positive_float(self.learning_rate, "learning_rate")
        check_positive_int(self.epochs, "epochs")
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size")
        _check_bool(self.shuffle, "shuffle")
        if self.clip is not None:
            _check_positive_float(self.clip, "clip")
        if self.clip_mode not in CLIP_MODES:
            raise ValueError(f"clip_mode: expected one of {CLIP_MODES}, got {self.clip_mode!r}")
        if self.bptt is not None:
            check_positive_int(self.bptt, "bptt")
        check_random_state(self.random_state, make=False)
        if isinstance(self.verbose, bool) or not isinstance(self.verbose, numbers.Integral) \
                or self.verbose < 0:
            raise ValueError(f"verbose: expected 0 or a positive integer, got {self.verbose!r}")
        _check_bool(self.warm_start, "warm_start")
        for name in ("n_inputs", "n_outputs"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        _check_fraction(self.momentum, "momentum")
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas: expected a pair (beta1, beta2), got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            _check_fraction(beta, f"betas[{i}]")
        _check_positive_float(self.eps, "eps")

    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise NotFittedError("This FastRNN is not fitted yet: call fit(X, y) first, "
                                 "or FastRNN.load(path).")

    # ------------------------------------------------------------------- fit
    def fit(self, X, y, vocab=None):
        """Train on sequences X with targets y (any input form of
        ``fastrnn.loss_and_grad``). ``vocab``: a :class:`CharVocab` to keep
        with the model (for ``sample_text``). Returns self."""
        self._check_hyperparameters()
        if vocab is not None and not isinstance(vocab, CharVocab):
            raise TypeError(f"vocab: expected a fastrnn.CharVocab or None, got {type(vocab).__name__}")
        warm = self.warm_start and hasattr(self, "params_")
        if warm:
            k, m = self.n_inputs_, self.n_outputs_
        else:
            k = self.n_inputs if self.n_inputs is not None else (len(vocab) if vocab else None)
            m = self.n_outputs
        seqs = check_inputs(X, k)
        if k is None:
            k = n_inputs_of(seqs)
        Y = check_targets(y, seqs, m)
        if m is None:
            m = n_outputs_of(Y)
            if seqs.is_ids and Y.ndim == 1:
                m = max(m, k)                    # next-symbol prediction: m = k
        if warm and self.cell != self.cell_:
            raise ValueError(f"cell: warm_start continues a fitted {self.cell_!r} model, "
                             f"got cell={self.cell!r}")
        if warm and self.n_hidden != self.params_["W_h"].shape[1]:
            raise ValueError(f"n_hidden: warm_start continues a model with "
                             f"{self.params_['W_h'].shape[1]} hidden units, got {self.n_hidden}")

        rng = check_random_state(self.random_state)
        if warm:
            params = self.params_
        else:
            params = init_params(k, self.n_hidden, m, cell=self.cell, random_state=rng)
        theta = np.concatenate([params[key].ravel() for key in PARAM_KEYS])
        if warm and getattr(self, "_optimizer_state", None) is not None \
                and self._optimizer_state[0] == self.optimizer:
            state, step = (a.copy() for a in self._optimizer_state[1:])
        else:
            state, step = np.zeros((2, theta.size)), np.zeros(1, dtype=np.int64)

        lengths = np.diff(seqs.offsets)
        n_sequences = len(lengths)
        batch_size = n_sequences if self.batch_size is None else min(self.batch_size, n_sequences)
        bptt = int(lengths.max()) if self.bptt is None else min(self.bptt, int(lengths.max()))
        lr = self.learning_rate if self.learning_rate is not None \
            else DEFAULT_LEARNING_RATES[self.optimizer]
        hyper = np.array([lr, self.momentum, self.betas[0], self.betas[1], self.eps], dtype=np.float64)
        clip_mode = CLIP_NONE if self.clip is None else \
            {"norm": CLIP_NORM, "value": CLIP_VALUE}[self.clip_mode]
        sizes = np.array([CELL_CODES[self.cell], k, self.n_hidden, m], dtype=np.int64)
        train = train_module(self.backend)
        if self.backend == "numba" and _train_threads.is_worth_it(
                k, self.n_hidden, m, GATES[self.cell], batch_size, bptt):
            train = _train_threads
        args = (sizes, seqs.data, Y, np.ascontiguousarray(seqs.offsets[:-1]), lengths)
        options = (batch_size, bptt, OPTIMIZERS.index(self.optimizer), hyper, clip_mode,
                   float(self.clip or 0.0))

        losses = np.full(self.epochs, np.nan)
        progress = np.zeros(2, dtype=np.int64)
        done, block, fault = 0, 1, 0
        bar = ProgressBar(self.epochs) if self.verbose else None
        # Ctrl-C is held until the running block of epochs has finished, so
        # the model always stops at a completed epoch, never half-way; a
        # second Ctrl-C leaves it as it was before this fit.
        with HeldInterrupt() as interrupt:
            while done < self.epochs and not interrupt.hit:
                block = min(block, self.epochs - done)
                order = _epoch_orders(rng, block, n_sequences, self.shuffle)
                progress[:] = 0
                start = time.perf_counter()
                fault = train.train_epochs(theta, *args, order, *options, state, step,
                                           losses[done:done + block], progress)
                elapsed = time.perf_counter() - start
                done += int(progress[0])
                if fault:
                    break
                if bar:
                    bar.update(done, losses[done - 1])
                # Grow the block until one call takes about _BLOCK_SECONDS.
                block = max(1, min(8 * block, int(block * _BLOCK_SECONDS / max(elapsed, 1e-9))))
        if bar:
            bar.close()
        if interrupt.hit and done < self.epochs:
            warnings.warn(f"fit interrupted (KeyboardInterrupt) after {done} of {self.epochs} "
                          f"epochs; the model keeps the parameters of the last completed epoch",
                          RuntimeWarning, stacklevel=2)

        self._set_fitted(theta, sizes, vocab if vocab is not None else
                         (getattr(self, "vocab_", None) if warm else None),
                         "ids" if seqs.is_ids else "dense", losses[:done], warm)
        self._optimizer_state = (self.optimizer, state, step)
        if fault:
            reason = {1: "the loss became non-finite", 2: "the gradient became non-finite",
                      3: "an update made a parameter non-finite"}[fault]
            raise FloatingPointError(
                f"fit: {reason} in epoch {done + 1}, update {int(progress[1]) + 1}; params_ holds "
                f"the last finite parameters (after {done} complete epochs). Try a smaller "
                f"learning_rate (was {lr}) or gradient clipping (clip=5.0).")
        return self

    def _set_fitted(self, theta, sizes, vocab, input_kind, losses, warm):
        params = dict(zip(PARAM_KEYS, (a.copy() for a in unflatten(theta, sizes))))
        self.params_ = params
        self.cell_ = self.cell
        self.n_inputs_, self.n_outputs_ = int(sizes[1]), int(sizes[3])
        self.input_kind_ = input_kind
        self.vocab_ = vocab
        self.n_iter_ = len(losses)
        self.loss_curve_ = (list(self.loss_curve_) if warm else []) + [float(v) for v in losses]

    # ------------------------------------------------------------- inference
    def predict_proba(self, X):
        """ŷ_t for every step, shaped like X's steps with a trailing m."""
        self._check_fitted()
        return forward(self.params_, X, backend=self.backend)[0]

    def predict(self, X):
        """The most probable class at every step, shaped like X's steps."""
        probs = self.predict_proba(X)
        if isinstance(probs, list):
            return [p.argmax(axis=-1) for p in probs]
        return probs.argmax(axis=-1)

    def score(self, X, y):
        """Mean accuracy over all steps (targets as ids or distributions,
        whose argmax is the class)."""
        self._check_fitted()
        seqs = check_inputs(X, self.n_inputs_)
        Y = check_targets(y, seqs, self.n_outputs_)
        labels = Y if Y.ndim == 1 else Y.argmax(axis=1)
        probs = self.predict_proba(X)
        predicted = np.concatenate(probs) if isinstance(probs, list) else probs.reshape(-1, self.n_outputs_)
        return float(np.mean(predicted.argmax(axis=1) == labels))

    def loss(self, X, y):
        """The training loss on (X, y): mean over sequences of the summed
        cross-entropy."""
        self._check_fitted()
        return loss_and_grad(self.params_, X, y, backend=self.backend)[0]

    def sample(self, n_steps, start=None, temperature=1.0, random_state=None):
        """Generate ``n_steps`` token ids, each fed back as the next input.

        ``start``: a token id or a sequence of ids (or a string, for a model
        with a vocabulary) that primes the hidden state; None: a random id.
        ``temperature`` < 1 sharpens the distribution, > 1 flattens it.
        Returns an int64 array of the generated ids (``start`` excluded)."""
        self._check_fitted()
        if self.input_kind_ != "ids" or self.n_outputs_ != self.n_inputs_:
            raise ValueError("sample: needs a model trained on token ids to predict the next "
                             "token (n_outputs == n_inputs)")
        n_steps = check_positive_int(n_steps, "n_steps")
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
        start = check_inputs(start, self.n_inputs_, name="start").data
        uniforms = rng.random(n_steps)
        generated = np.empty(n_steps, dtype=np.int64)
        probs, state = forward(self.params_, start, backend=self.backend)
        p = probs[-1]
        for i in range(n_steps):
            with np.errstate(divide="ignore"):
                logits = np.log(p) / temperature
            weights = np.exp(logits - logits.max())
            cumulative = np.cumsum(weights)
            token = min(int(np.searchsorted(cumulative, uniforms[i] * cumulative[-1], side="right")),
                        self.n_outputs_ - 1)
            generated[i] = token
            if i + 1 < n_steps:
                probs, state = forward(self.params_, generated[i:i + 1], h0=state,
                                       backend=self.backend)
                p = probs[0]
        return generated

    def sample_text(self, n_chars, start=None, temperature=1.0, random_state=None):
        """Like :meth:`sample`, decoded by the model's vocabulary."""
        self._check_fitted()
        if self.vocab_ is None:
            raise ValueError("sample_text: this model has no vocabulary; fit it with "
                             "vocab=CharVocab(text)")
        return self.vocab_.decode(self.sample(n_chars, start, temperature, random_state))

    # ----------------------------------------------------------- persistence
    def save(self, path):
        """Write the fitted model to ``path`` (.npz, loadable without pickle)."""
        self._check_fitted()
        hyper = self.get_params()
        if not (hyper["random_state"] is None or isinstance(hyper["random_state"], numbers.Integral)):
            hyper["random_state"] = None         # a Generator has no portable form
        hyper["betas"] = list(hyper["betas"])
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "hyperparameters": hyper,
                "cell": self.cell_, "n_inputs": self.n_inputs_, "n_outputs": self.n_outputs_,
                "input_kind": self.input_kind_, "n_iter": self.n_iter_,
                "vocab": None if self.vocab_ is None else self.vocab_.chars}
        arrays = {key: self.params_[key] for key in PARAM_KEYS}
        arrays["loss_curve"] = np.asarray(self.loss_curve_, dtype=np.float64)
        arrays["meta"] = np.array(json.dumps(meta))
        directory = os.path.dirname(os.path.abspath(path))
        # Write beside the target and rename, so an interrupted save never
        # leaves half a model where a good one was.
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`."""
        if os.path.isfile(path) and not zipfile.is_zipfile(path):
            # Checked first: np.load would call any other file "pickled data".
            raise ValueError(f"{path}: not a fastrnn model file (a model is an .npz archive "
                             f"written by FastRNN.save)")
        try:
            with open(path, "rb") as file, np.load(file, allow_pickle=False) as data:
                contents = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable fastrnn model file ({exc})") from None
        if not isinstance(contents, dict) or "meta" not in contents:
            raise ValueError(f"{path}: not a fastrnn model file (no 'meta' entry)")
        try:
            meta = json.loads(str(contents["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError("wrong format tag")
            if meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {meta.get('version')}, this fastrnn reads "
                                 f"{FORMAT_VERSION}")
            model = cls(**meta["hyperparameters"])
            if isinstance(model.betas, list):    # JSON has no tuples
                model.betas = tuple(model.betas)
            net = check_params({key: contents[key] for key in PARAM_KEYS}, name=f"{path}")
            if (net.cell, net.n_inputs, net.n_outputs) != (meta["cell"], meta["n_inputs"],
                                                           meta["n_outputs"]):
                raise ValueError("the parameters do not match the recorded sizes")
            loss_curve = contents["loss_curve"]
            if loss_curve.ndim != 1:
                raise ValueError(f"loss_curve: expected 1 dimension, got shape {loss_curve.shape}")
            loss_curve = [float(v) for v in loss_curve]
            input_kind = meta["input_kind"]
            if input_kind not in ("ids", "dense"):
                raise ValueError(f"input_kind: expected 'ids' or 'dense', got {input_kind!r}")
            vocab = None if meta["vocab"] is None else CharVocab(meta["vocab"])
            n_iter = meta["n_iter"]
            if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
                raise ValueError(f"n_iter: expected a non-negative integer, got {n_iter!r}")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{path}: not a valid fastrnn model file ({exc})") from None
        model.params_ = net.params
        model.cell_ = net.cell
        model.n_inputs_, model.n_outputs_ = net.n_inputs, net.n_outputs
        model.input_kind_ = input_kind
        model.vocab_ = vocab
        model.n_iter_ = n_iter
        model.loss_curve_ = loss_curve
        model._optimizer_state = None
        return model


def _epoch_orders(rng, n_epochs, n_sequences, shuffle):
    """The order of the sequences in each of n_epochs epochs, (n_epochs, S).

    Shuffled orders are the argsort of uniform draws taken row by row, so
    the random stream is consumed the same way however the epochs are cut
    into blocks: a fit gives the same result whatever its blocks were."""
    if not shuffle or n_sequences == 1:
        return np.broadcast_to(np.arange(n_sequences), (n_epochs, n_sequences)).copy()
    return np.argsort(rng.random((n_epochs, n_sequences)), axis=1, kind="stable")


def _check_positive_float(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def _check_fraction(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number in [0, 1), got {value!r}")
    if not 0 <= value < 1:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
