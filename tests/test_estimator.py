"""FastRNN and FastRNNRegressor, the scikit-learn style estimators: their
conventions (without scikit-learn), validation of every hyperparameter, what
y means (classes_, the output head), what they learn (the toy of the notes,
a character-level language model), inference and its shapes in every input
form, streaming with a carried state, sampling, score and loss, warm starts,
progress on stderr, refusal of bad input, faults, inputs in every layout,
and a fuzz of every entry point with every integer dtype and extreme value
(in a subprocess: a crash fails the test instead of killing pytest).

Persistence is in test_persistence.py, Ctrl-C in test_interrupt.py,
fit_many in test_many.py, backend agreement in test_training_twins.py.
"""
import codecs
import contextlib
import inspect
import io
import json
import math
import re
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest

import fastrnn
from fastrnn import CharVocab, FastRNN, FastRNNRegressor, NotFittedError
from fastrnn import _limits, _progress
from fastrnn import estimator as estimator_module
from _optional import require

KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
K, D, M = 5, 4, 3
ESTIMATORS = (FastRNN, FastRNNRegressor)
# Every constructor argument, in order, with its default.
DEFAULTS = dict(n_hidden=32, cell="rnn", backend="numba", optimizer="adam", learning_rate=None,
                epochs=100, batch_size=None, shuffle=True, clip=None, clip_mode="norm",
                bptt=None, random_state=None, verbose=0, warm_start=False, n_inputs=None,
                n_outputs=None, momentum=0.9, betas=(0.9, 0.999), eps=1e-8, n_layers=1,
                bidirectional=False, dropout=0.0, output="auto", early_stopping=False,
                validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, dtype="float64")


# ------------------------------------------------------------------ helpers
def dense_data(B=4, T=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, T, K)), rng.integers(0, M, size=(B, T))


def ids_data(B=4, T=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, K, size=(B, T))
    X[0, 0] = K - 1
    return X, rng.integers(0, K, size=(B, T))


def list_data(seed=0):
    rng = np.random.default_rng(seed)
    lengths = [3, 7, 1, 5]
    return ([rng.normal(size=(n, K)) for n in lengths],
            [rng.integers(0, M, size=n) for n in lengths])


def hand_states(params, x):
    """h_t of a one-layer simple RNN over one sequence, written out from
    docs/math.md section 2: dense (T, k) inputs or (T,) ids (x_t one-hot)."""
    W_x, W_h, b_h = params["W_x"], params["W_h"], params["b_h"]
    h = np.zeros(W_h.shape[0])
    states = []
    for x_t in x:
        wx = W_x[:, x_t] if np.ndim(x_t) == 0 else W_x @ x_t
        h = np.tanh(W_h @ h + wx + b_h)
        states.append(h)
    return np.array(states)


def hand_forward(params, x, head="softmax", last_step=False):
    """ŷ of one sequence (section 5): softmax(W_y h + b_y) or W_y h + b_y,
    at every step (T, m) or at the last one (m,)."""
    H = hand_states(params, x)
    if last_step:
        H = H[-1:]
    z = H @ params["W_y"].T + params["b_y"]
    if head == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        z = e / e.sum(axis=1, keepdims=True)
    return z[0] if last_step else z


def fitted(X=None, y=None, cls=FastRNN, **kwargs):
    if X is None:
        X, y = dense_data()
    settings = dict(n_hidden=D, epochs=20, random_state=0)
    settings.update(kwargs)
    return cls(**settings).fit(X, y)


def same_params(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[key], b[key]) for key in a)


# ------------------------------------------------------- sklearn conventions
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_constructor_only_stores_its_arguments(cls):
    """Anything is accepted and kept as is (the very objects): validation
    happens in fit."""
    odd = dict(n_hidden="many", cell="transformer", backend="cuda", optimizer="lbfgs",
               learning_rate=-1, epochs=0, batch_size=0, shuffle="yes", clip=-3,
               clip_mode="l1", bptt=0, random_state="seed", verbose=-2, warm_start=None,
               n_inputs=0, n_outputs=2.5, momentum=7, betas=object(), eps=0, n_layers=0,
               bidirectional="both", dropout=1.5, output="first_step", early_stopping=2,
               validation_fraction=-1, n_iter_no_change=0, tol=float("nan"), dtype="float16")
    assert set(odd) == set(DEFAULTS)
    model = cls(**odd)
    params = model.get_params()
    assert list(params) == list(DEFAULTS)
    for name, value in odd.items():
        assert params[name] is value
        assert getattr(model, name) is value
    assert vars(model).keys() == odd.keys()            # nothing else, nothing learned
    with pytest.raises((TypeError, ValueError)):
        model.fit(*dense_data())
    assert not hasattr(model, "params_")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_get_params_lists_the_constructor_arguments_with_their_defaults(cls):
    signature = inspect.signature(cls.__init__)
    defaults = {name: p.default for name, p in signature.parameters.items() if name != "self"}
    assert defaults == DEFAULTS
    assert cls().get_params() == DEFAULTS
    assert cls().get_params(deep=False) == DEFAULTS
    # keyword arguments in any order, positional in the documented order
    assert cls(7, "lstm").get_params() == dict(DEFAULTS, n_hidden=7, cell="lstm")


def test_set_params():
    model = FastRNN()
    assert model.set_params(n_hidden=7, optimizer="adam", n_layers=2, tol=0.5) is model
    assert (model.n_hidden, model.optimizer, model.n_layers, model.tol) == (7, "adam", 2, 0.5)
    assert model.get_params()["n_hidden"] == 7
    assert model.set_params() is model
    with pytest.raises(ValueError, match="n_hiden"):
        model.set_params(n_hiden=3)
    with pytest.raises(ValueError, match="params_"):
        model.set_params(params_={})
    assert model.get_params() == dict(DEFAULTS, n_hidden=7, n_layers=2, tol=0.5)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_clone_by_get_params(cls):
    """sklearn.base.clone does cls(**model.get_params()): the clone is
    unfitted and fits to the same result."""
    X, y = dense_data()
    if cls is FastRNNRegressor:
        y = y.astype(float)
    model = fitted(X, y, cls=cls, optimizer="adam", learning_rate=0.01, batch_size=3,
                   n_layers=2, cell="gru")
    clone = cls(**model.get_params())
    assert clone.get_params() == model.get_params()
    assert not hasattr(clone, "params_")
    clone.fit(X, y)
    assert same_params(clone.params_, model.params_)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_repr_shows_the_changed_arguments(cls):
    name = cls.__name__
    assert repr(cls()) == f"{name}()"
    text = repr(cls(n_hidden=5, optimizer="sgd", n_layers=3, bidirectional=True,
                    output="last_step", dropout=0.25))
    assert text.startswith(f"{name}(") and text.endswith(")")
    for part in ("n_hidden=5", "optimizer='sgd'", "n_layers=3", "bidirectional=True",
                 "output='last_step'", "dropout=0.25"):
        assert part in text
    assert "epochs" not in text and "tol" not in text and "cell" not in text
    # a default given explicitly is not a change
    assert repr(cls(epochs=100, cell="rnn", tol=1e-4)) == f"{name}()"


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sklearn_is_fitted(cls):
    model = cls(n_hidden=D, epochs=1)
    assert model.__sklearn_is_fitted__() is False
    X, y = dense_data()
    model.fit(X, y.astype(float) if cls is FastRNNRegressor else y)
    assert model.__sklearn_is_fitted__() is True


def test_estimator_type():
    assert FastRNN._estimator_type == "classifier"
    assert FastRNNRegressor._estimator_type == "regressor"


UNFITTED_CALLS = {
    "predict": lambda m, X, y, path: m.predict(X),
    "predict_proba": lambda m, X, y, path: m.predict_proba(X),
    "predict-streaming": lambda m, X, y, path: m.predict(X, return_state=True),
    "score": lambda m, X, y, path: m.score(X, y),
    "loss": lambda m, X, y, path: m.loss(X, y),
    "sample": lambda m, X, y, path: m.sample(5, start=0),
    "sample_text": lambda m, X, y, path: m.sample_text(5),
    "save": lambda m, X, y, path: m.save(path),
}


UNFITTED_CASES = [(cls, method) for cls in ESTIMATORS for method in UNFITTED_CALLS
                  if hasattr(cls, method.split("-")[0])]


@pytest.mark.parametrize("cls,method", UNFITTED_CASES,
                         ids=[f"{cls.__name__}-{method}" for cls, method in UNFITTED_CASES])
def test_unfitted_model_raises_not_fitted(cls, method, tmp_path):
    assert issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, AttributeError)
    assert fastrnn.NotFittedError is NotFittedError
    X, y = dense_data()
    path = tmp_path / "model.npz"
    with pytest.raises(NotFittedError, match=rf"^This {cls.__name__} is not fitted yet.*fit"):
        UNFITTED_CALLS[method](cls(), X, y, path)
    assert list(tmp_path.iterdir()) == []


def test_not_fitted_is_also_sklearns_not_fitted_error_when_sklearn_is_loaded():
    """``except sklearn.exceptions.NotFittedError`` works as well as
    ``except fastrnn.NotFittedError`` (and sklearn's check_is_fitted agrees)."""
    exceptions = require("sklearn.exceptions", "scikit-learn's NotFittedError")
    validation = require("sklearn.utils.validation", "scikit-learn's check_is_fitted")
    for cls in ESTIMATORS:
        with pytest.raises(exceptions.NotFittedError) as info:
            cls().predict(np.zeros((2, 3, K)))
        assert isinstance(info.value, NotFittedError)
        assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
        with pytest.raises(exceptions.NotFittedError):
            validation.check_is_fitted(cls())
    model = fitted(epochs=1)
    validation.check_is_fitted(model)


def test_sklearn_tools_accept_the_estimators():
    base = require("sklearn.base", "scikit-learn's clone and is_classifier")
    metrics = require("sklearn.metrics", "scikit-learn's accuracy")
    model = FastRNN(n_hidden=D, epochs=5, random_state=0, n_layers=2)
    clone = base.clone(model)
    assert clone is not model and clone.get_params() == model.get_params()
    assert base.is_classifier(FastRNN()) and base.is_regressor(FastRNNRegressor())
    assert not base.is_regressor(FastRNN()) and not base.is_classifier(FastRNNRegressor())
    X, y = dense_data()
    clone.fit(X, y)
    assert clone.score(X, y) == metrics.accuracy_score(y.ravel(), clone.predict(X).ravel())


def test_import_fastrnn_loads_no_cli_and_no_plotting():
    """The top level is the API and its runtime: fitting, saving and loading
    a model in a fresh interpreter imports neither fastrnn.cli nor
    matplotlib."""
    script = textwrap.dedent("""
        import os, sys, tempfile
        import numpy as np
        import fastrnn
        X = np.random.default_rng(0).normal(size=(3, 4, 2))
        m = fastrnn.FastRNN(n_hidden=3, epochs=2, random_state=0).fit(X, np.array([0, 1, 0]))
        path = m.save(os.path.join(tempfile.mkdtemp(), "m.npz"))
        fastrnn.FastRNN.load(path).predict(X)
        print(sorted(name for name in sys.modules
                     if name.startswith("fastrnn.cli") or name.split(".")[0] == "matplotlib"))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_fastrnn_never_imports_sklearn():
    """Fitting, predicting, scoring and a not-fitted error, in a fresh
    interpreter: scikit-learn is never imported by fastrnn itself."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import fastrnn
        X = np.random.default_rng(0).normal(size=(3, 4, 2))
        m = fastrnn.FastRNN(n_hidden=3, epochs=2, random_state=0).fit(X, np.array([0, 1, 0]))
        m.predict(X); m.score(X, np.array([0, 1, 0]))
        r = fastrnn.FastRNNRegressor(n_hidden=3, epochs=2).fit(X, np.ones((3, 4)))
        r.score(X, np.ones((3, 4)))
        try:
            fastrnn.FastRNN().predict(X)
        except fastrnn.NotFittedError:
            pass
        print(sorted(name for name in sys.modules if name.split(".")[0] == "sklearn"))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_returns_self_and_sets_the_learned_state(cls):
    X, y = dense_data()
    if cls is FastRNNRegressor:
        y = np.random.default_rng(1).normal(size=(4, 6, M))
    model = cls(n_hidden=D, epochs=7, random_state=0)
    for name in ("params_", "loss_curve_", "n_inputs_", "n_outputs_", "n_iter_", "cell_",
                 "output_", "input_kind_", "vocab_", "n_features_in_"):
        assert not hasattr(model, name)
    assert model.fit(X, y) is model
    assert set(model.params_) == set(KEYS)
    shapes = {"W_x": (D, K), "W_h": (D, D), "b_h": (D,), "W_y": (M, D), "b_y": (M,)}
    for key, shape in shapes.items():
        array = model.params_[key]
        assert array.shape == shape and array.dtype == np.float64
        assert array.flags.c_contiguous and np.isfinite(array).all()
    assert (model.n_inputs_, model.n_outputs_) == (K, M)
    assert type(model.n_inputs_) is int and type(model.n_outputs_) is int
    assert model.n_iter_ == 7 and type(model.n_iter_) is int
    assert isinstance(model.loss_curve_, list) and len(model.loss_curve_) == 7
    assert all(type(v) is float and math.isfinite(v) for v in model.loss_curve_)
    assert model.cell_ == "rnn" and model.output_ == "every_step"
    assert model.input_kind_ == "dense" and model.vocab_ is None
    assert model.n_features_in_ == K
    # The hyperparameters are not touched by fit.
    assert model.get_params() == cls(n_hidden=D, epochs=7, random_state=0).get_params()


def test_learned_sizes():
    """k from the feature count or the largest id + 1; m from the targets,
    at least k for token ids (next-symbol prediction); or as given."""
    X, _ = ids_data()
    model = fitted(X, np.zeros_like(X), epochs=1)          # targets only use class 0
    assert (model.n_inputs_, model.n_outputs_) == (K, K)
    model = fitted(X, np.zeros_like(X), epochs=1, n_inputs=9, n_outputs=11)
    assert (model.n_inputs_, model.n_outputs_) == (9, 11)
    assert model.params_["W_x"].shape == (D, 9) and model.params_["W_y"].shape == (11, D)
    assert np.array_equal(model.classes_, np.arange(11))
    Xd, yd = dense_data()
    soft = np.full(yd.shape + (6,), 1 / 6)
    assert fitted(Xd, soft, epochs=1).n_outputs_ == 6


@pytest.mark.parametrize("cell,blocks", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_architecture_parameters(cell, blocks):
    """n_layers, bidirectional and cell give the parameter keys and shapes of
    docs/math.md section 6."""
    X, y = dense_data()
    model = fitted(X, y, epochs=1, cell=cell, n_layers=2, bidirectional=True)
    expected = {}
    for layer, width in ((0, K), (1, 2 * D)):
        for suffix in ("", "_reverse"):
            tail = (f"_l{layer}" if layer else "") + suffix
            expected["W_x" + tail] = (blocks * D, width)
            expected["W_h" + tail] = (blocks * D, D)
            expected["b_h" + tail] = (blocks * D,)
            if cell == "gru":
                expected["b_hn" + tail] = (D,)
    expected["W_y"], expected["b_y"] = (M, 2 * D), (M,)
    assert {key: a.shape for key, a in model.params_.items()} == expected
    assert model.cell_ == cell


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_failed_fit_leaves_a_fresh_model_unfitted(cls):
    model = cls(n_hidden=D, epochs=0)
    with pytest.raises(ValueError, match="^epochs"):
        model.fit(*dense_data())
    assert not hasattr(model, "params_")
    with pytest.raises(ValueError, match="^X"):
        cls(n_hidden=D).fit(np.full((2, 3, K), np.nan), np.zeros((2, 3), dtype=int))


# ------------------------------------------------------ shuffling and seeds
def test_same_random_state_is_bit_identical():
    X, y = dense_data(B=5)
    kwargs = dict(n_hidden=D, epochs=30, batch_size=2, shuffle=True, optimizer="adam",
                  learning_rate=0.01, n_layers=2, dropout=0.3)
    a = FastRNN(random_state=4, **kwargs).fit(X, y)
    b = FastRNN(random_state=4, **kwargs).fit(X, y)
    assert same_params(a.params_, b.params_)
    assert a.loss_curve_ == b.loss_curve_
    # An int seed and a Generator seeded with it are the same stream.
    c = FastRNN(random_state=np.random.default_rng(4), **kwargs).fit(X, y)
    assert same_params(a.params_, c.params_)
    # and a NumPy integer is that int
    e = FastRNN(random_state=np.int64(4), **kwargs).fit(X, y)
    assert same_params(a.params_, e.params_)


def test_different_random_state_differs():
    X, y = dense_data(B=5)
    kwargs = dict(n_hidden=D, epochs=30, batch_size=2, shuffle=True)
    a = FastRNN(random_state=1, **kwargs).fit(X, y)
    b = FastRNN(random_state=2, **kwargs).fit(X, y)
    assert not np.allclose(a.params_["W_h"], b.params_["W_h"])


def test_shuffle_alone_changes_the_result():
    """Same initial weights (init draws come first from the stream), only
    the order of the sequences differs."""
    X, y = dense_data(B=5)
    kwargs = dict(n_hidden=D, epochs=30, batch_size=2, random_state=1)
    a = FastRNN(shuffle=True, **kwargs).fit(X, y)
    b = FastRNN(shuffle=False, **kwargs).fit(X, y)
    assert not np.allclose(a.params_["W_h"], b.params_["W_h"])
    # Without shuffling the seed only sets the initial weights.
    init = fastrnn.init_params(K, D, M, random_state=1)
    c = FastRNN(shuffle=False, n_hidden=D, epochs=1, batch_size=2, random_state=1,
                optimizer="sgd", learning_rate=1e-300).fit(X, y)
    for key in KEYS:
        np.testing.assert_allclose(c.params_[key], init[key], rtol=0, atol=1e-290)


def test_dropout_changes_training_but_not_prediction():
    """Dropout (between layers) draws masks in training only: the same seed
    with and without dropout starts from the same weights, trains to other
    ones, and predicting is deterministic."""
    X, y = dense_data(B=5)
    kwargs = dict(n_hidden=D, epochs=10, n_layers=2, random_state=0)
    plain = FastRNN(**kwargs).fit(X, y)
    dropped = FastRNN(dropout=0.5, **kwargs).fit(X, y)
    assert not np.allclose(plain.params_["W_x_l1"], dropped.params_["W_x_l1"])
    assert np.array_equal(dropped.predict_proba(X), dropped.predict_proba(X))
    probe = FastRNN(dropout=0.5, **dict(kwargs, epochs=1, optimizer="sgd",
                                        learning_rate=1e-300)).fit(X, y)
    init = fastrnn.init_params(K, D, M, random_state=0, n_layers=2)
    for key in init:
        np.testing.assert_allclose(probe.params_[key], init[key], rtol=0, atol=1e-290)


def test_blocks_of_epochs_do_not_change_the_result(monkeypatch):
    """fit cuts the epochs into blocks (one kernel call each) by timing;
    whatever the cut, the result is the same to the bit."""
    X, y = dense_data(B=5)
    kwargs = dict(n_hidden=D, epochs=40, batch_size=2, shuffle=True, random_state=3,
                  optimizer="momentum", n_layers=2, dropout=0.2)
    default = FastRNN(**kwargs).fit(X, y)
    monkeypatch.setattr(estimator_module, "_BLOCK_SECONDS", 0.0)   # one epoch per call
    one_by_one = FastRNN(**kwargs).fit(X, y)
    monkeypatch.setattr(estimator_module, "_BLOCK_SECONDS", 1e9)   # blocks grow 8x per call
    growing = FastRNN(**kwargs).fit(X, y)
    assert same_params(default.params_, one_by_one.params_)
    assert same_params(default.params_, growing.params_)
    assert default.loss_curve_ == one_by_one.loss_curve_ == growing.loss_curve_


# -------------------------------------------------------- the toy of the notes
TOY_X = np.eye(4)[[0, 1, 2]]
TOY_Y = np.eye(4)[[1, 2, 3]]


@pytest.mark.parametrize("seed", range(5))
def test_toy_of_the_notes(seed):
    """The notes' example with their settings (sgd, learning rate 0.1):
    x = one-hot 0, 1, 2 must predict 1, 2, 3."""
    model = FastRNN(n_hidden=3, optimizer="sgd", epochs=100, random_state=seed).fit(TOY_X,
                                                                                   TOY_Y)
    assert np.array_equal(model.predict(TOY_X), [1, 2, 3])
    assert model.score(TOY_X, TOY_Y) == 1.0
    assert np.array_equal(model.classes_, np.arange(4))
    # Uniform guessing loses 3 log 4 ≈ 4.16; 100 sgd epochs bring it below 0.5.
    assert model.loss_curve_[0] > 3.0 and model.loss_curve_[-1] < 0.5
    assert all(b < a for a, b in zip(model.loss_curve_, model.loss_curve_[1:]))


def test_toy_with_ids_and_the_numpy_backend():
    ids_model = FastRNN(n_hidden=3, optimizer="sgd", random_state=0).fit(np.array([0, 1, 2]),
                                                                         np.array([1, 2, 3]))
    assert np.array_equal(ids_model.predict(np.array([0, 1, 2])), [1, 2, 3])
    assert (ids_model.n_inputs_, ids_model.n_outputs_) == (3, 4)
    numpy_model = FastRNN(n_hidden=3, optimizer="sgd", random_state=0,
                          backend="numpy").fit(TOY_X, TOY_Y)
    assert np.array_equal(numpy_model.predict(TOY_X), [1, 2, 3])


# ------------------------------------------------- a character-level LM
def zen_and_json_text():
    """About 3,700 characters from the standard library: the Zen of Python
    (stored rot13-encoded in ``this``) and the docstring of ``json``."""
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    import json as json_module
    return codecs.encode(this.s, "rot13") + "\n" + json_module.__doc__


@pytest.fixture(scope="module")
def char_lm():
    text = zen_and_json_text()
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    model = FastRNN(n_hidden=100, bptt=25, optimizer="adagrad", learning_rate=0.1,
                    epochs=10, random_state=0).fit(ids[:-1], ids[1:], vocab=vocab)
    return text, vocab, ids, model


def test_char_lm_learns_beyond_character_frequencies(char_lm):
    """The loss is summed over the steps of the one sequence, so per
    character it is loss / (len(ids) - 1). Uniform guessing costs
    log |V| ≈ 4.36 nats; the best model that ignores context (the unigram
    frequencies of the text) costs their entropy H ≈ 3.46. The model must
    beat H by 0.5 nats, which it can only do by using the preceding
    characters, i.e. through its recurrence (it reaches ≈ 2.4 in 10 epochs).
    """
    text, vocab, ids, model = char_lm
    assert 3000 < len(text) < 5000
    n = len(ids) - 1
    uniform = math.log(len(vocab))
    freq = np.bincount(ids, minlength=len(vocab)) / len(ids)
    freq = freq[freq > 0]
    unigram_entropy = float(-(freq * np.log(freq)).sum())
    assert unigram_entropy < uniform
    per_char = [v / n for v in model.loss_curve_]
    assert per_char[0] > unigram_entropy                      # it started knowing nothing
    assert per_char[-1] < unigram_entropy - 0.5
    assert per_char[-1] < uniform - 1.4
    # The model's loss on the text (no truncation) agrees.
    assert model.loss(ids[:-1], ids[1:]) / n < unigram_entropy - 0.5
    assert model.vocab_ == vocab and model.n_inputs_ == model.n_outputs_ == len(vocab)
    assert model.input_kind_ == "ids" and not hasattr(model, "n_features_in_")


def test_char_lm_sample_text(char_lm):
    text, vocab, ids, model = char_lm
    sample = model.sample_text(200, start="Beautiful", random_state=0)
    assert isinstance(sample, str) and len(sample) == 200
    assert set(sample) <= set(vocab.chars)
    assert model.sample_text(200, start="Beautiful", random_state=0) == sample
    assert model.sample_text(200, start="Beautiful", random_state=1) != sample
    # Without a start the first input is a random id.
    unprimed = model.sample_text(50, random_state=3)
    assert len(unprimed) == 50 and unprimed == model.sample_text(50, random_state=3)
    with pytest.raises(ValueError, match="^text"):
        model.sample_text(5, start="\u263a")                  # not in the vocabulary


def test_char_lm_sample_is_deterministic(char_lm):
    text, vocab, ids, model = char_lm
    a = model.sample(100, start=ids[:10], random_state=5)
    b = model.sample(100, start=ids[:10], random_state=5)
    assert a.dtype == np.int64 and a.shape == (100,)
    assert np.array_equal(a, b)
    assert a.min() >= 0 and a.max() < len(vocab)
    assert np.array_equal(model.sample(100, start=list(ids[:10]), random_state=5), a)
    assert np.array_equal(vocab.encode(model.sample_text(100, start=vocab.decode(ids[:10]),
                                                          random_state=5)), a)
    # A Generator is used as it is (its stream continues).
    rng = np.random.default_rng(5)
    assert np.array_equal(model.sample(100, start=ids[:10], random_state=rng), a)
    assert not np.array_equal(model.sample(100, start=ids[:10], random_state=rng), a)


@pytest.mark.parametrize("temperature", [1e-3, 1e-300, 1e-308, 1e-320, 5e-324])
def test_tiny_temperature_is_greedy(char_lm, temperature):
    """At temperature → 0 each token is the most probable one: running the
    model over start + generated, its prediction after each step is the
    token that was generated next, whatever the seed, without a warning.
    (Below about 1e-308, log(p)/t used to be −inf everywhere, and sampling
    always returned the last class.)"""
    text, vocab, ids, model = char_lm
    start = ids[:20]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        greedy = model.sample(60, start=start, temperature=temperature, random_state=0)
        again = model.sample(60, start=start, temperature=temperature, random_state=9)
    predicted = model.predict(np.concatenate([start, greedy]))
    assert np.array_equal(predicted[len(start) - 1:-1], greedy)
    assert np.array_equal(again, greedy)


def test_temperature_one_is_not_greedy(char_lm):
    text, vocab, ids, model = char_lm
    start = ids[:20]
    greedy = model.sample(60, start=start, temperature=1e-3, random_state=0)
    warm = model.sample(60, start=start, temperature=1.0, random_state=0)
    assert not np.array_equal(warm, greedy)
    hot = model.sample(400, start=start, temperature=5.0, random_state=0)
    cold = model.sample(400, start=start, temperature=0.5, random_state=0)
    assert len(set(hot)) > len(set(cold))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_sets_the_distribution(temperature):
    """One step sampled from many seeds: the frequencies follow
    p^(1/T) / Σ p^(1/T), computed here from the forward pass by hand."""
    X, y = ids_data()
    model = fitted(X, y, epochs=30, optimizer="adam", learning_rate=0.05)
    p = hand_forward(model.params_, np.array([2, 0, 3]))[-1]
    expected = p ** (1 / temperature)
    expected /= expected.sum()
    n = 3000
    draws = np.array([model.sample(1, start=[2, 0, 3], temperature=temperature,
                                   random_state=seed)[0] for seed in range(n)])
    freq = np.bincount(draws, minlength=K) / n
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(freq - expected) <= 4.5 * sigma + 1e-12), (freq, expected)
    # The distributions of different temperatures differ more than the noise.
    other = p ** (1 / (temperature * 3))
    other /= other.sum()
    assert np.abs(other - expected).max() > 10 * sigma.max()


def test_sample_refusals():
    model = fitted()
    with pytest.raises(ValueError, match="^sample"):                # dense inputs
        model.sample(5, start=0)
    X, y = ids_data()
    with pytest.raises(ValueError, match="^sample"):                # one target per sequence
        fitted(X, y[:, 0], epochs=1).sample(5, start=0)
    with pytest.raises(ValueError, match="^sample"):                # m != k
        fitted(X, y, epochs=1, n_outputs=K + 2).sample(5, start=0)
    ids_model = fitted(X, y, epochs=2)
    with pytest.raises(ValueError, match="^sample_text"):
        ids_model.sample_text(5)
    with pytest.raises(TypeError, match="^start.*vocab"):
        ids_model.sample(5, start="abc")
    with pytest.raises(ValueError, match="^start"):
        ids_model.sample(5, start=K)
    with pytest.raises(ValueError, match="^start"):
        ids_model.sample(5, start=-1)
    with pytest.raises(ValueError, match="^start"):
        ids_model.sample(5, start=np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="^n_steps"):
        ids_model.sample(0)
    with pytest.raises(ValueError, match="^n_steps"):
        ids_model.sample(_limits.MAX_SAMPLE_STEPS + 1)
    with pytest.raises(TypeError, match="^n_steps"):
        ids_model.sample(2.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="^temperature"):
            ids_model.sample(3, temperature=bad)
    with pytest.raises(TypeError, match="^random_state"):
        ids_model.sample(3, random_state="0")
    # the regressor has no sampling
    assert not hasattr(FastRNNRegressor(), "sample")


def test_bidirectional_model_refuses_to_sample():
    X, y = ids_data()
    text_vocab = CharVocab("abcde")
    model = fitted(X, y, epochs=2, bidirectional=True)
    with pytest.raises(ValueError, match=r"^sample: a bidirectional model"):
        model.sample(5, start=[0, 1])
    model = FastRNN(n_hidden=D, epochs=2, bidirectional=True).fit(X, y, vocab=text_vocab)
    with pytest.raises(ValueError, match=r"^sample: a bidirectional model"):
        model.sample_text(5, start="ab")


# ----------------------------------------------------------- what y means
def test_classes_of_token_id_targets_are_ids_not_an_encoding():
    """Integer y with token-id X at every step: classes_ = arange(max(k,
    largest id + 1)), the targets used as they are (a language model keeps
    its ids)."""
    X, _ = ids_data()                                     # ids 0..4: k = 5
    few = np.where(X > 2, 2, X)                           # targets 0..2 only
    model = fitted(X, few, epochs=1)
    assert np.array_equal(model.classes_, np.arange(K)) and model.n_outputs_ == K
    y = np.full_like(X, 7)                                # a larger id than any input
    model = fitted(X, y, epochs=30, learning_rate=0.1)
    assert np.array_equal(model.classes_, np.arange(8)) and model.n_outputs_ == 8
    assert model.classes_.dtype.kind == "i"
    assert np.array_equal(model.predict(X), y)            # the id itself, not an index
    proba = model.predict_proba(X)
    assert proba.shape == X.shape + (8,) and np.all(proba.argmax(axis=-1) == 7)


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog", "cat", "emu"]),
    np.array([-1, 1, 1, -1]),
    np.array([3, 10, 40, 10]),
    np.array([7, 7, 2, 2], dtype=np.int8),
    np.array([2**63 + 5, 3, 3, 2**64 - 1], dtype=np.uint64),
    np.array([-2.0, 4.0, 4.0, -2.0]),
    np.array([b"x", b"y", b"x", b"y"]),
], ids=["str", "-1/1", "non-contiguous", "int8", "uint64", "whole-floats", "bytes"])
@pytest.mark.parametrize("form", ["per-sequence", "per-step-dense", "per-sequence-ids"])
def test_classes_are_the_unique_labels_and_predict_returns_them(labels, form):
    """Every y other than token ids (and distributions) is encoded as its
    index in classes_ = np.unique(y); predict decodes."""
    X, _ = dense_data()
    if form == "per-step-dense":
        y = np.stack([np.roll(labels, t) for t in range(6)], axis=1)      # (4, 6)
    elif form == "per-sequence-ids":
        X, y = ids_data()[0], labels
    else:
        y = labels
    model = fitted(X, y, epochs=60, learning_rate=0.05)
    assert np.array_equal(model.classes_, np.unique(labels))
    assert model.classes_.dtype == np.unique(labels).dtype
    assert model.n_outputs_ == len(np.unique(labels))
    predicted = model.predict(X)
    assert predicted.shape == np.shape(y) and predicted.dtype == model.classes_.dtype
    assert set(np.unique(predicted).tolist()) <= set(labels.tolist())
    probs = model.predict_proba(X)
    assert np.array_equal(predicted, model.classes_[probs.argmax(axis=-1)])
    # The training data is learnt: the score counts the decoded labels.
    assert model.score(X, y) == np.mean(predicted == y)
    assert model.score(X, y) > 0.7


def test_non_integer_float_labels_are_refused():
    X, y = dense_data()
    for bad in (y + 0.5, np.array([0.5, 1.0, 1.0, 2.0]), y * 1.0001):
        with pytest.raises(ValueError, match=r"^y\b.*whole numbers.*FastRNNRegressor"):
            FastRNN(n_hidden=D, epochs=1).fit(X, bad)
    with pytest.raises(ValueError, match=r"^y\b"):
        FastRNN(n_hidden=D, epochs=1).fit(X, np.array([0.0, np.nan, 1.0, 1.0]))


def test_classes_of_float_distributions_are_arange():
    X, _ = dense_data()
    rng = np.random.default_rng(3)
    per_step = rng.dirichlet(np.ones(6), size=(4, 6))
    model = fitted(X, per_step, epochs=1)
    assert np.array_equal(model.classes_, np.arange(6)) and model.output_ == "every_step"
    per_sequence = rng.dirichlet(np.ones(2), size=4)
    model = fitted(X, per_sequence, epochs=1)
    assert np.array_equal(model.classes_, np.arange(2)) and model.output_ == "last_step"
    assert model.predict(X).shape == (4,)
    # one-hot rows are distributions too: their classes are the columns
    model = fitted(X, np.eye(7)[[0, 1, 1, 0]], epochs=1)
    assert np.array_equal(model.classes_, np.arange(7))


def test_warm_start_refuses_new_labels():
    X, _ = dense_data()
    model = fitted(X, np.array(["a", "b", "a", "b"]), epochs=2, warm_start=True)
    with pytest.raises(ValueError, match=r"^y\b.*'c'"):
        model.fit(X, np.array(["a", "c", "a", "b"]))
    model.fit(X, np.array(["b", "b", "b", "b"]))          # a subset of the classes is fine
    assert np.array_equal(model.classes_, ["a", "b"]) and len(model.loss_curve_) == 4


# (X, y, output given, output_ expected, n_outputs_ expected) for the classifier
XD, _ = dense_data()
XI, _ = ids_data()
RNG = np.random.default_rng(11)
CLASSIFIER_OUTPUTS = {
    "batch-int-(B,T)-per-step": (XD, RNG.integers(0, 3, (4, 6)), "auto", "every_step", 3),
    "batch-int-(B,)-per-sequence": (XD, np.array([0, 1, 1, 0]), "auto", "last_step", 2),
    "batch-float-(B,T,m)-distributions-per-step": (XD, RNG.dirichlet(np.ones(3), (4, 6)),
                                                   "auto", "every_step", 3),
    "batch-float-(B,m)-distributions-per-sequence": (XD, RNG.dirichlet(np.ones(5), 4),
                                                     "auto", "last_step", 5),
    "batch-float-(B,T)-distributions-need-output=last_step": (
        XD, RNG.dirichlet(np.ones(6), 4), "last_step", "last_step", 6),
    "single-ids-(T,)-per-step": (XI[0], XI[1], "auto", "every_step", K),
    "single-ids-scalar-per-sequence": (XI[0], 2, "auto", "last_step", 1),
    "single-dense-(m,)-distribution-per-sequence": (XD[0], np.array([0.5, 0.5]), "auto",
                                                    "last_step", 2),
    "list-of-arrays-per-step": ([XI[0], XI[1][:2]], [XI[2], XI[3][:2]], "auto", "every_step",
                                K),
    "list-of-labels-per-sequence": ([XI[0], XI[1][:2]], ["x", "y"], "auto", "last_step", 2),
    "batch-ids-(B,T)-every_step-explicit": (XI, XI, "every_step", "every_step", K),
}


@pytest.mark.parametrize("case", CLASSIFIER_OUTPUTS)
def test_classifier_output_inference(case):
    X, y, output, expected, m = CLASSIFIER_OUTPUTS[case]
    model = fitted(X, y, epochs=1, output=output)
    assert model.output_ == expected and model.n_outputs_ == m


def test_classifier_float_BxT_y_for_BxTxk_X_is_per_step_labels_unless_output_last_step():
    """The ambiguous shape: a float (B, T) y could be labels at every step or
    one T-distribution per sequence; "auto" reads labels per step (so a
    distribution is refused as non-whole labels)."""
    X, _ = dense_data()
    distributions = np.random.default_rng(0).dirichlet(np.ones(6), size=4)      # (4, 6)
    with pytest.raises(ValueError, match=r"^y\b.*whole numbers"):
        FastRNN(n_hidden=D, epochs=1).fit(X, distributions)
    model = fitted(X, distributions, epochs=1, output="last_step")
    assert model.output_ == "last_step" and model.predict_proba(X).shape == (4, 6)
    whole = np.random.default_rng(0).integers(0, 3, size=(4, 6)).astype(float)
    assert fitted(X, whole, epochs=1).output_ == "every_step"


def test_classifier_output_that_contradicts_the_shape_is_refused():
    X, y = ids_data()
    with pytest.raises(ValueError, match=r"^y\b"):
        FastRNN(n_hidden=D, epochs=1, output="last_step").fit(X, y)         # (B, T) ids
    with pytest.raises(ValueError, match=r"^y\b"):
        FastRNN(n_hidden=D, epochs=1, output="every_step").fit(X, y[:, 0])
    with pytest.raises(ValueError, match=r"^y\b.*leading shape"):
        FastRNN(n_hidden=D, epochs=1).fit(X, np.zeros(5, dtype=int))        # neither


# (X, y, output given, output_ expected, n_outputs_ expected, predict's shape)
REGRESSOR_OUTPUTS = {
    "batch-(B,T)-per-step": (XD, RNG.normal(size=(4, 6)), "auto", "every_step", 1, (4, 6)),
    "batch-(B,T,m)-per-step": (XD, RNG.normal(size=(4, 6, 2)), "auto", "every_step", 2,
                               (4, 6, 2)),
    "batch-(B,)-per-sequence": (XD, RNG.normal(size=4), "auto", "last_step", 1, (4,)),
    "batch-(B,m)-per-sequence": (XD, RNG.normal(size=(4, 3)), "auto", "last_step", 3, (4, 3)),
    "single-(T,)-per-step": (XD[0], RNG.normal(size=6), "auto", "every_step", 1, (6,)),
    "single-(T,m)-per-step": (XD[0], RNG.normal(size=(6, 2)), "auto", "every_step", 2, (6, 2)),
    "single-scalar-per-sequence": (XD[0], 1.5, "auto", "last_step", 1, ()),
    "single-(m,)-m!=T-per-sequence": (XD[0], RNG.normal(size=3), "auto", "last_step", 3, (3,)),
    "single-(T,)-vector-needs-output=last_step": (XD[0], RNG.normal(size=6), "last_step",
                                                  "last_step", 6, (6,)),
    "list-of-arrays-per-step": ([XD[0], XD[1][:2]], [RNG.normal(size=6), RNG.normal(size=2)],
                                "auto", "every_step", 1, None),
    "list-of-numbers-per-sequence": ([XD[0], XD[1][:2]], [1.0, 2.0], "auto", "last_step", 1,
                                     (2,)),
    "ids-batch-(B,T)-per-step": (XI, RNG.normal(size=(4, 6)), "auto", "every_step", 1, (4, 6)),
}


@pytest.mark.parametrize("case", REGRESSOR_OUTPUTS)
def test_regressor_output_inference(case):
    X, y, output, expected, m, shape = REGRESSOR_OUTPUTS[case]
    model = fitted(X, y, cls=FastRNNRegressor, epochs=1, output=output)
    assert model.output_ == expected and model.n_outputs_ == m
    predicted = model.predict(X)
    if shape is None:
        assert [p.shape for p in predicted] == [np.shape(t) for t in y]
    else:
        assert np.shape(predicted) == shape
    assert not hasattr(model, "classes_")


def test_regressor_float_BxT_y_for_BxTxk_X_is_per_step_unless_output_last_step():
    X, _ = dense_data()
    y = np.random.default_rng(0).normal(size=(4, 6))
    per_step = fitted(X, y, cls=FastRNNRegressor, epochs=1)
    assert per_step.output_ == "every_step" and per_step.n_outputs_ == 1
    assert per_step.predict(X).shape == (4, 6)
    per_sequence = fitted(X, y, cls=FastRNNRegressor, epochs=1, output="last_step")
    assert per_sequence.output_ == "last_step" and per_sequence.n_outputs_ == 6
    assert per_sequence.predict(X).shape == (4, 6)
    assert per_sequence.params_["W_y"].shape == (6, D)
    assert per_step.params_["W_y"].shape == (1, D)


def test_regressor_refusals():
    X, _ = dense_data()
    with pytest.raises(ValueError, match=r"^y\b"):
        FastRNNRegressor(n_hidden=D, epochs=1).fit(X, np.zeros(5))
    with pytest.raises(ValueError, match=r"^y\b"):
        FastRNNRegressor(n_hidden=D, epochs=1, output="every_step").fit(X, np.zeros(4))
    with pytest.raises(ValueError, match=r"^y\b"):
        FastRNNRegressor(n_hidden=D, epochs=1).fit(X, np.full((4, 6), np.inf))
    with pytest.raises(TypeError, match=r"^y\b"):
        FastRNNRegressor(n_hidden=D, epochs=1).fit(X, np.array(["a", "b", "c", "d"]))


def test_n_features_in_for_dense_inputs_only():
    X, y = dense_data()
    assert fitted(X, y, epochs=1).n_features_in_ == K
    assert fitted([x for x in X], [t for t in y], epochs=1).n_features_in_ == K
    Xi, yi = ids_data()
    ids_model = fitted(Xi, yi, epochs=1)
    assert not hasattr(ids_model, "n_features_in_")
    # refitting on ids (not a warm start) drops it
    model = fitted(X, y, epochs=1)
    model.fit(Xi, yi)
    assert not hasattr(model, "n_features_in_")
    assert fitted(X, y[:, 0] * 1.0, cls=FastRNNRegressor, epochs=1).n_features_in_ == K


# ------------------------------------------------- inference shapes
FORMS = ("single-dense", "single-ids", "batch-dense", "batch-ids", "list-dense", "list-ids")


def form_data(form, seed=0):
    """X of an input form, and its sequences' lengths."""
    rng = np.random.default_rng(seed)
    if form.startswith("single"):
        lengths = [5]
    elif form.startswith("batch"):
        lengths = [5, 5, 5]
    else:
        lengths = [4, 1, 6]
    seqs = [rng.integers(0, K, n) if form.endswith("ids") else rng.normal(size=(n, K))
            for n in lengths]
    if form.startswith("single"):
        return seqs[0], lengths
    if form.startswith("batch"):
        return np.stack(seqs), lengths
    return seqs, lengths


HEADS = {"classifier-every": (FastRNN, "every", None), "classifier-last": (FastRNN, "last", None),
         "regressor-every-m1": (FastRNNRegressor, "every", 1),
         "regressor-every-m2": (FastRNNRegressor, "every", 2),
         "regressor-last-m1": (FastRNNRegressor, "last", 1),
         "regressor-last-m2": (FastRNNRegressor, "last", 2)}


def targets_for(form, lengths, cls, where, m, rng):
    """y of a head for X of a form: per step in X's structure, or one per sequence."""
    single, B = form.startswith("single"), len(lengths)
    if where == "last":
        if cls is FastRNN:
            return "b" if single else np.array(["a", "b", "c"])[:B]
        return rng.normal(size=(() if single else (B,)) + ((m,) if m > 1 else ()))
    if cls is FastRNN:
        parts = [rng.integers(0, M, n) for n in lengths]
    else:
        parts = [rng.normal(size=(n,) + ((m,) if m > 1 else ())) for n in lengths]
    if form.startswith("list"):
        return parts
    return parts[0] if single else np.stack(parts)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("head", HEADS)
def test_output_shapes_in_every_input_form_and_head(form, head):
    cls, where, m = HEADS[head]
    X, lengths = form_data(form)
    y = targets_for(form, lengths, cls, where, m, np.random.default_rng(1))
    model = cls(n_hidden=D, epochs=1, random_state=0).fit(X, y)
    assert model.output_ == ("last_step" if where == "last" else "every_step")
    single, B = form.startswith("single"), len(lengths)
    if cls is FastRNN:
        outputs = {"predict_proba": (model.predict_proba(X), (model.n_outputs_,)),
                   "predict": (model.predict(X), ())}
    else:
        assert model.n_outputs_ == m
        outputs = {"predict": (model.predict(X), (m,) if m > 1 else ())}
    for name, (out, tail) in outputs.items():
        if where == "last":
            expected = (() if single else (B,)) + tail
            assert np.shape(out) == expected, name
            assert isinstance(out, np.ndarray if expected else (np.ndarray, np.generic)), name
        elif form.startswith("list"):
            assert isinstance(out, list), name
            assert [o.shape for o in out] == [(n,) + tail for n in lengths], name
        else:
            expected = ((lengths[0],) if single else (B, lengths[0])) + tail
            assert isinstance(out, np.ndarray) and out.shape == expected, name
    if cls is FastRNN:
        probs = model.predict_proba(X)
        for p in (probs if isinstance(probs, list) else [probs]):
            np.testing.assert_allclose(np.sum(p, axis=-1), 1.0, rtol=1e-14)
            assert (np.asarray(p) >= 0).all()
        labels = model.predict(X)
        for p, lab in zip(probs if isinstance(probs, list) else [probs],
                          labels if isinstance(labels, list) else [labels]):
            assert np.array_equal(lab, model.classes_[np.argmax(p, axis=-1)])


def test_predict_proba_matches_a_forward_pass_by_hand():
    X, y = dense_data()
    dense_model = fitted(X, y, epochs=30)
    Xt, _ = dense_data(seed=1)
    probs = dense_model.predict_proba(Xt)
    for b in range(len(Xt)):
        np.testing.assert_allclose(probs[b], hand_forward(dense_model.params_, Xt[b]),
                                   rtol=1e-12, atol=1e-15)
    Xi, yi = ids_data()
    ids_model = fitted(Xi, yi, epochs=30)
    Xt, _ = ids_data(seed=1)
    probs = ids_model.predict_proba(Xt)
    for b in range(len(Xt)):
        np.testing.assert_allclose(probs[b], hand_forward(ids_model.params_, Xt[b]),
                                   rtol=1e-12, atol=1e-15)
    last = fitted(X, y[:, 0], epochs=5)
    for b in range(len(X)):
        np.testing.assert_allclose(last.predict_proba(X)[b],
                                   hand_forward(last.params_, X[b], last_step=True),
                                   rtol=1e-12, atol=1e-15)
    reg = fitted(X, y * 0.5, cls=FastRNNRegressor, epochs=5)
    for b in range(len(X)):
        np.testing.assert_allclose(reg.predict(X)[b], hand_forward(reg.params_, X[b],
                                                                   head="linear")[:, 0],
                                   rtol=1e-12, atol=1e-15)


def test_list_predictions_are_those_of_each_sequence_alone():
    X, y = dense_data()
    model = fitted(X, y, epochs=5)
    Xl, _ = list_data()
    probs = model.predict_proba(Xl)
    labels = model.predict(Xl)
    for x, p, lab in zip(Xl, probs, labels):
        np.testing.assert_allclose(p, hand_forward(model.params_, x), rtol=1e-12, atol=1e-15)
        assert np.array_equal(p, model.predict_proba(x))
        assert np.array_equal(lab, p.argmax(axis=1))
        assert np.issubdtype(lab.dtype, np.integer)


# ------------------------------------------------------- score and loss
def manual_accuracy(params, X, y, weights=None):
    """Weighted fraction of steps whose most probable class (by the forward
    pass written out here) is the target's class; weights per step."""
    hits = total = 0.0
    for b, (x, t) in enumerate(zip(X, y)):
        predicted = hand_forward(params, x).argmax(axis=1)
        labels = t if np.ndim(t) == 1 else np.argmax(t, axis=1)
        w = np.ones(len(labels)) if weights is None else np.asarray(weights[b], float)
        hits += float((w * (predicted == labels)).sum())
        total += float(w.sum())
    return hits / total


def test_score_is_the_mean_accuracy_over_steps():
    X, y = dense_data()
    model = fitted(X, y, epochs=30)
    assert np.array_equal(model.classes_, np.arange(M))      # so a column is its label
    X, y = dense_data(B=6, T=7, seed=3)
    expected = manual_accuracy(model.params_, X, y)
    assert 0 < expected < 1
    assert model.score(X, y) == pytest.approx(expected, abs=1e-15)
    # Single sequence, list (steps weigh equally, not sequences), soft targets.
    assert model.score(X[2], y[2]) == pytest.approx(
        manual_accuracy(model.params_, X[2:3], y[2:3]), abs=1e-15)
    Xl, yl = list_data(seed=4)
    assert model.score(Xl, yl) == pytest.approx(manual_accuracy(model.params_, Xl, yl),
                                                abs=1e-15)
    soft = np.eye(M)[y] * 0.7 + 0.1
    assert model.score(X, soft) == pytest.approx(expected, abs=1e-15)
    assert type(model.score(X, y)) is float


def test_score_is_weighted_by_sample_weight():
    X, y = dense_data()
    model = fitted(X, y, epochs=30)
    assert np.array_equal(model.classes_, np.arange(M))
    X, y = dense_data(B=6, T=7, seed=3)
    rng = np.random.default_rng(2)
    per_sequence = rng.uniform(0, 3, size=6)
    expected = manual_accuracy(model.params_, X, y, [np.full(7, w) for w in per_sequence])
    assert model.score(X, y, sample_weight=per_sequence) == pytest.approx(expected, abs=1e-14)
    per_step = rng.uniform(0, 3, size=(6, 7))
    expected = manual_accuracy(model.params_, X, y, per_step)
    assert model.score(X, y, sample_weight=per_step) == pytest.approx(expected, abs=1e-14)
    assert model.score(X, y, sample_weight=per_step) != model.score(X, y)
    # one sequence, one label each: weights per sequence
    last = fitted(X, y[:, 0], epochs=5)
    predicted = last.classes_[[hand_forward(last.params_, x, last_step=True).argmax()
                               for x in X]]
    expected = np.sum(per_sequence * (predicted == y[:, 0])) / per_sequence.sum()
    assert last.score(X, y[:, 0], sample_weight=per_sequence) == pytest.approx(expected,
                                                                               abs=1e-14)


def test_score_weighs_steps_not_sequences():
    """A list of a 1-step and a 9-step sequence: per-step mean."""
    X, y = dense_data()
    model = fitted(X, y, epochs=30)
    rng = np.random.default_rng(8)
    Xl = [rng.normal(size=(1, K)), rng.normal(size=(9, K))]
    predicted = [hand_forward(model.params_, x).argmax(axis=1) for x in Xl]
    y = [predicted[0], predicted[1].copy()]
    y[1][:3] = (y[1][:3] + 1) % M                 # 3 of 10 steps wrong
    assert model.score(Xl, y) == pytest.approx(0.7, abs=1e-15)


def hand_r2(truth, predicted, weights=None):
    """R² of scikit-learn's regressors, averaged over the output columns."""
    truth = np.asarray(truth, float).reshape(len(truth), -1)
    predicted = np.asarray(predicted, float).reshape(len(truth), -1)
    w = np.ones(len(truth)) if weights is None else np.asarray(weights, float)
    scores = []
    for j in range(truth.shape[1]):
        mean = np.sum(w * truth[:, j]) / np.sum(w)
        residual = np.sum(w * (truth[:, j] - predicted[:, j]) ** 2)
        total = np.sum(w * (truth[:, j] - mean) ** 2)
        scores.append(1 - residual / total)
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def regressor():
    X, _ = dense_data()
    y = np.random.default_rng(5).normal(size=(4, 6, 2))
    return fitted(X, y, cls=FastRNNRegressor, epochs=40, learning_rate=0.02)


def test_regressor_score_is_r2(regressor):
    X, _ = dense_data(seed=7)
    y = np.random.default_rng(6).normal(size=(4, 6, 2))
    predicted = np.array([hand_forward(regressor.params_, x, head="linear") for x in X])
    expected = hand_r2(y.reshape(-1, 2), predicted.reshape(-1, 2))
    assert regressor.score(X, y) == pytest.approx(expected, rel=1e-12, abs=1e-14)
    w = np.random.default_rng(1).uniform(0.1, 2, size=(4, 6))
    weighted = hand_r2(y.reshape(-1, 2), predicted.reshape(-1, 2), w.reshape(-1))
    assert regressor.score(X, y, sample_weight=w) == pytest.approx(weighted, rel=1e-12,
                                                                   abs=1e-14)
    assert regressor.score(X, y, sample_weight=w) != regressor.score(X, y)
    # on its training data it does better than predicting the mean
    X, _ = dense_data()
    y = np.random.default_rng(5).normal(size=(4, 6, 2))
    assert regressor.score(X, y) > 0.0
    assert type(regressor.score(X, y)) is float


def test_regressor_score_agrees_with_sklearns_r2_score(regressor):
    metrics = require("sklearn.metrics", "scikit-learn's r2_score")
    X, _ = dense_data(seed=7)
    y = np.random.default_rng(6).normal(size=(4, 6, 2))
    predicted = regressor.predict(X).reshape(-1, 2)
    assert regressor.score(X, y) == pytest.approx(metrics.r2_score(y.reshape(-1, 2),
                                                                   predicted), rel=1e-12)
    w = np.random.default_rng(1).uniform(0.1, 2, size=4)
    assert regressor.score(X, y, sample_weight=w) == pytest.approx(
        metrics.r2_score(y.reshape(-1, 2), predicted, sample_weight=np.repeat(w, 6)),
        rel=1e-12)
    # one value per sequence
    last = fitted(X, y[:, 0, 0], cls=FastRNNRegressor, epochs=10)
    assert last.score(X, y[:, 0, 0]) == pytest.approx(
        metrics.r2_score(y[:, 0, 0], last.predict(X)), rel=1e-12)


def test_loss_equals_the_functional_loss():
    X, y = dense_data()
    dense_model = fitted(X, y, epochs=30)
    X, y = dense_data(seed=5)
    assert dense_model.loss(X, y) == fastrnn.loss_and_grad(dense_model.params_, X, y)[0]
    Xl, yl = list_data(seed=5)
    assert dense_model.loss(Xl, yl) == fastrnn.loss_and_grad(dense_model.params_, Xl, yl)[0]
    # and is the mean over sequences of the summed cross-entropy, by hand:
    by_hand = np.mean([-np.log(hand_forward(dense_model.params_, x)[np.arange(len(t)), t]).sum()
                       for x, t in zip(X, y)])
    assert dense_model.loss(X, y) == pytest.approx(by_hand, rel=1e-12)
    w = np.array([1.0, 2.0, 0.0, 3.0])
    weighted = np.sum(w * [-np.log(hand_forward(dense_model.params_, x)[np.arange(len(t)),
                                                                        t]).sum()
                           for x, t in zip(X, y)]) / w.sum()
    assert dense_model.loss(X, y, sample_weight=w) == pytest.approx(weighted, rel=1e-12)


def test_regressor_loss_is_half_the_squared_error(regressor):
    X, _ = dense_data(seed=2)
    y = np.random.default_rng(9).normal(size=(4, 6, 2))
    by_hand = np.mean([0.5 * np.sum((hand_forward(regressor.params_, x, head="linear") - t) ** 2)
                       for x, t in zip(X, y)])
    assert regressor.loss(X, y) == pytest.approx(by_hand, rel=1e-12)


def test_loss_curve_is_the_training_loss():
    """Full batch without truncation: each epoch's entry is the loss at the
    parameters the epoch started from; after the last update, one more
    full-batch epoch would record model.loss at the final parameters."""
    X, y = dense_data()
    a = fitted(X, y, epochs=5)
    b = fitted(X, y, epochs=6)
    assert a.loss_curve_ == pytest.approx(b.loss_curve_[:5], rel=1e-14)
    assert a.loss(X, y) == pytest.approx(b.loss_curve_[5], rel=1e-12)


# ---------------------------------------------------------------- streaming
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_streaming_one_step_at_a_time_equals_one_call(cell, n_layers):
    """predict_proba(h0=..., return_state=True) step by step, feeding each
    call's state to the next, gives the outputs of one call on the whole
    sequence: per step, per sequence (last_step, at the end) and for the
    regressor."""
    X, y = dense_data(B=3, T=5)
    kwargs = dict(epochs=2, cell=cell, n_layers=n_layers)
    classifier = fitted(X, y, **kwargs)
    whole = classifier.predict_proba(X)
    state, parts = None, []
    for t in range(5):
        p, state = classifier.predict_proba(X[:, t:t + 1], h0=state, return_state=True)
        parts.append(p)
    assert np.array_equal(np.concatenate(parts, axis=1), whole)
    labels, _ = classifier.predict(X, return_state=True)
    assert np.array_equal(labels, classifier.predict(X))
    # the state has the documented shape: (B, d), or (L, B, d) when deep; (h, c) for the LSTM
    shape = (n_layers, 3, D) if n_layers > 1 else (3, D)
    for part in (state if cell == "lstm" else (state,)):
        assert part.shape == shape
    assert isinstance(state, tuple) == (cell == "lstm")
    # one sequence
    state, parts = None, []
    for t in range(5):
        p, state = classifier.predict_proba(X[1, t:t + 1], h0=state, return_state=True)
        parts.append(p)
    assert np.array_equal(np.concatenate(parts), whole[1])
    # chunks of unequal size
    first, state = classifier.predict_proba(X[:, :2], return_state=True)
    rest = classifier.predict_proba(X[:, 2:], h0=state)
    assert np.array_equal(np.concatenate([first, rest], axis=1), whole)
    # many-to-one: the last chunk's output is the whole sequence's
    last = fitted(X, y[:, 0], **kwargs)
    state = None
    for t in range(5):
        p, state = last.predict_proba(X[:, t:t + 1], h0=state, return_state=True)
    assert np.array_equal(p, last.predict_proba(X))
    # the regressor
    regressor = fitted(X, y * 0.3, cls=FastRNNRegressor, **kwargs)
    whole = regressor.predict(X)
    state, parts = None, []
    for t in range(5):
        v, state = regressor.predict(X[:, t:t + 1], h0=state, return_state=True)
        parts.append(v)
    assert np.array_equal(np.concatenate(parts, axis=1), whole)


def test_streaming_ids_and_a_given_initial_state():
    X, y = ids_data(B=2, T=4)
    model = fitted(X, y, epochs=2, cell="lstm")
    h0 = np.random.default_rng(0).normal(size=(2, D))
    c0 = np.random.default_rng(1).normal(size=(2, D))
    whole = model.predict_proba(X, h0=(h0, c0))
    assert not np.allclose(whole, model.predict_proba(X))      # the state matters
    p1, state = model.predict_proba(X[:, :1], h0=(h0, c0), return_state=True)
    p2 = model.predict_proba(X[:, 1:], h0=state)
    assert np.array_equal(np.concatenate([p1, p2], axis=1), whole)
    with pytest.raises(ValueError, match="^h0"):
        model.predict_proba(X, h0=(np.zeros((3, D)), None))
    with pytest.raises(TypeError, match="^h0"):
        model.predict_proba(X, h0=np.zeros((2, D)))            # an LSTM needs (h0, c0)


def test_bidirectional_model_refuses_h0_and_return_state():
    X, y = dense_data()
    for cls, target in ((FastRNN, y), (FastRNNRegressor, y * 1.0)):
        model = fitted(X, target, cls=cls, epochs=1, bidirectional=True)
        with pytest.raises(ValueError, match="^h0: a bidirectional model"):
            model.predict(X, h0=np.zeros((2, 4, D)))
        with pytest.raises(ValueError, match="^return_state: a bidirectional model"):
            model.predict(X, return_state=True)
    with pytest.raises(ValueError, match="^return_state: a bidirectional model"):
        fitted(X, y, epochs=1, bidirectional=True).predict_proba(X, return_state=True)


# ------------------------------------------------------------------ verbose
def progress_text(err):
    return [line for line in err.split("\n") if line]


def shown_loss(line, unit):
    """The loss a progress line shows per ``unit`` (4 decimals)."""
    match = re.search(rf"loss/{unit} ([0-9.]+)  ", line)
    assert match, line
    return float(match.group(1))


def long_text_ids(n, seed=0, k=30):
    return np.random.default_rng(seed).integers(0, k, size=n)


def test_verbose_writes_the_final_line_to_stderr(capsys):
    X, y = dense_data()
    FastRNN(n_hidden=D, epochs=6, verbose=1, random_state=0).fit(X, y)
    out, err = capsys.readouterr()
    assert out == ""
    lines = progress_text(err)
    assert len(lines) == 1 and "\r" not in err
    assert lines[0].startswith("epoch 6/6") and "loss/step" in lines[0]
    assert re.search(r"[0-9.]+s$", lines[0])
    assert err.endswith("\n")


def test_verbose_0_writes_nothing(capsys):
    X, y = dense_data()
    model = FastRNN(n_hidden=D, epochs=6, verbose=0, random_state=0).fit(X, y)
    model.predict(X)
    model.score(X, y)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(scope="module")
def slow_fit_data():
    """A fit of about half a second: long enough for the progress line to be
    updated many times while training runs."""
    ids = long_text_ids(60_000)
    return ids[:-1], ids[1:]


def test_verbose_on_a_non_terminal_writes_few_lines_and_no_carriage_returns(monkeypatch,
                                                                           slow_fit_data):
    """Into a file, pipe or captured output only the kept lines are written
    (a log once got 237 overwriting '\\r' updates on one line)."""
    X, y = slow_fit_data
    kwargs = dict(n_hidden=48, bptt=25, epochs=3, optimizer="adagrad", verbose=1,
                  random_state=0)
    FastRNN(**dict(kwargs, epochs=1, verbose=0)).fit(X[:100], y[:100])         # compiled
    # a live line would be rewritten at every wake of the waiting thread
    monkeypatch.setattr(_progress, "LIVE_SECONDS", 0.0)
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    model = FastRNN(**kwargs).fit(X, y)
    text = log.getvalue()
    assert "\r" not in text
    lines = progress_text(text)
    assert 1 <= len(lines) <= 2, lines
    assert lines[-1].startswith("epoch 3/3")
    assert shown_loss(lines[-1], "step") == pytest.approx(model.loss_curve_[-1] / len(X),
                                                         abs=6e-5)
    # the same fit on a terminal rewrites its line in place, often
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    FastRNN(**kwargs).fit(X, y)
    assert terminal.getvalue().count("\r") >= 2
    assert terminal.getvalue().endswith("\n")


def test_verbose_shows_the_loss_per_step_or_per_sequence(capsys):
    """The kept line shows the loss per output (step, or sequence with one
    target per sequence), not summed over the steps of a sequence."""
    Xl, yl = list_data()                                  # lengths 3, 7, 1, 5: 16 steps
    model = FastRNN(n_hidden=D, epochs=4, verbose=1, random_state=0).fit(Xl, yl)
    line = progress_text(capsys.readouterr().err)[-1]
    assert shown_loss(line, "step") == pytest.approx(model.loss_curve_[-1] * 4 / 16, abs=6e-5)
    X, y = dense_data()
    model = FastRNN(n_hidden=D, epochs=4, verbose=1, random_state=0).fit(X, y[:, 0])
    line = progress_text(capsys.readouterr().err)[-1]
    assert shown_loss(line, "sequence") == pytest.approx(model.loss_curve_[-1], abs=6e-5)
    model = FastRNNRegressor(n_hidden=D, epochs=4, verbose=1, random_state=0).fit(X, y * 1.0)
    line = progress_text(capsys.readouterr().err)[-1]
    assert shown_loss(line, "step") == pytest.approx(model.loss_curve_[-1] / 6, abs=6e-5)


# ------------------------------------------------------------- warm start
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_warm_start_continues(optimizer):
    """Two warm fits of 5 epochs are one fit of 10 (the optimizer state is
    kept): without shuffling an int seed only sets the initial weights."""
    X, y = dense_data(B=5)
    kwargs = dict(n_hidden=D, shuffle=False, batch_size=2, optimizer=optimizer,
                  random_state=0, bptt=4)
    once = FastRNN(epochs=10, **kwargs).fit(X, y)
    twice = FastRNN(epochs=5, warm_start=True, **kwargs)
    twice.fit(X, y)
    first_curve = list(twice.loss_curve_)
    assert twice.fit(X, y) is twice
    assert twice.n_iter_ == 5
    assert len(twice.loss_curve_) == 10 and twice.loss_curve_[:5] == first_curve
    assert same_params(twice.params_, once.params_)
    assert twice.loss_curve_ == once.loss_curve_


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("architecture", [dict(), dict(cell="lstm", n_layers=2),
                                          dict(cell="gru", bidirectional=True)])
def test_warm_start_with_a_generator_is_one_longer_fit(cls, architecture):
    """With a Generator as random_state the stream continues across calls:
    fits of 3 + 4 + 1 warm epochs equal, bit for bit, one fit of 8 (with
    shuffling and mini-batches)."""
    X, y = dense_data(B=5)
    if cls is FastRNNRegressor:
        y = y * 0.5
    kwargs = dict(n_hidden=D, shuffle=True, batch_size=2, **architecture)
    once = cls(epochs=8, random_state=np.random.default_rng(7), **kwargs).fit(X, y)
    warm = cls(epochs=3, random_state=np.random.default_rng(7), warm_start=True, **kwargs)
    warm.fit(X, y)
    warm.set_params(epochs=4).fit(X, y)
    warm.set_params(epochs=1).fit(X, y)
    assert same_params(warm.params_, once.params_)
    assert warm.loss_curve_ == once.loss_curve_ and warm.n_iter_ == 1


def test_warm_start_with_a_generator_and_dropout_is_one_longer_fit():
    """The same with dropout, whose masks are part of the random stream."""
    X, y = dense_data(B=5)
    kwargs = dict(n_hidden=D, shuffle=True, batch_size=2, n_layers=2, dropout=0.3)
    once = FastRNN(epochs=8, random_state=np.random.default_rng(7), **kwargs).fit(X, y)
    warm = FastRNN(epochs=3, random_state=np.random.default_rng(7), warm_start=True, **kwargs)
    warm.fit(X, y)
    warm.set_params(epochs=5).fit(X, y)
    assert warm.loss_curve_ == once.loss_curve_
    assert same_params(warm.params_, once.params_)


def test_without_warm_start_fit_starts_over():
    X, y = dense_data()
    model = FastRNN(n_hidden=D, epochs=5, random_state=0)
    first = {key: a.copy() for key, a in model.fit(X, y).params_.items()}
    model.fit(X, y)
    assert len(model.loss_curve_) == 5 and model.n_iter_ == 5
    assert same_params(model.params_, first)


@pytest.mark.parametrize("change", [dict(cell="lstm"), dict(n_hidden=D + 1), dict(n_layers=2),
                                    dict(bidirectional=True)],
                         ids=["cell", "n_hidden", "n_layers", "bidirectional"])
def test_warm_start_refuses_a_different_network(change):
    X, y = dense_data()
    model = fitted(X, y, epochs=2, warm_start=True)
    before = {key: a.copy() for key, a in model.params_.items()}
    (name, value), = change.items()
    with pytest.raises(ValueError, match=r"^warm_start.*set warm_start=False") as info:
        model.set_params(**change).fit(X, y)
    assert f"{name}={value!r}" in str(info.value)             # what changed is shown
    # The refused fit changed nothing.
    assert same_params(model.params_, before) and len(model.loss_curve_) == 2
    assert model.cell_ == "rnn"
    model.set_params(warm_start=False).fit(X, y)              # starting anew is fine
    assert model.params_.keys() != before.keys() or \
        model.params_["W_h"].shape != before["W_h"].shape


def test_warm_start_refuses_other_data():
    X, y = dense_data()
    model = fitted(X, y, epochs=2, warm_start=True)
    with pytest.raises(ValueError, match="^X"):
        model.fit(np.zeros((2, 3, K + 1)), np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="^X"):
        model.fit(*ids_data())                                 # ids after input vectors
    with pytest.raises(ValueError, match="^y"):
        model.fit(X, y[:, 0])                                  # one target per sequence now
    assert len(model.loss_curve_) == 2


BAD_PARAMS = {
    "lstm-shaped-arrays": lambda p: fastrnn.init_params(K, D, M, cell="lstm", random_state=0),
    "wider-W_x": lambda p: fastrnn.init_params(9, D, M, random_state=0),
    "W_x-with-2-columns": lambda p: dict(p, W_x=np.zeros((D, 2))),
    "W_x-missing": lambda p: {k: v for k, v in p.items() if k != "W_x"},
    "extra-key": lambda p: dict(p, W_h_l1=np.zeros((D, D))),
    "nan": lambda p: dict(p, W_h=np.full((D, D), np.nan)),
    "strings": lambda p: dict(p, b_h=np.array(["a"] * D)),
    "not-a-dict": lambda p: list(p.values()),
    "none": lambda p: None,
}


@pytest.mark.parametrize("bad", BAD_PARAMS)
def test_warm_start_validates_params_(bad):
    """params_ replaced by arrays of another network (LSTM-shaped on an RNN
    model, a k=9 W_x on a k=5 model, a W_x of 2 columns...) used to train
    silently on misaligned views, or fail inside Numba: a ValueError naming
    params_, and nothing changes."""
    X, y = dense_data()
    model = fitted(X, y, epochs=2, warm_start=True)
    replaced = BAD_PARAMS[bad]({k: v.copy() for k, v in model.params_.items()})
    model.params_ = replaced
    with pytest.raises(ValueError, match=r"^params_\b"):
        model.fit(X, y)
    assert model.params_ is replaced and len(model.loss_curve_) == 2
    # predicting with them is refused too
    with pytest.raises((ValueError, TypeError), match=r"^params_\b"):
        model.predict(X)


def test_warm_start_continues_from_replaced_params():
    """Arrays of the same network put into params_ are where training
    continues: one full-batch sgd epoch is θ − lr ∇L(θ)."""
    X, y = dense_data()
    model = fitted(X, y, epochs=2, warm_start=True)
    start = fastrnn.init_params(K, D, M, random_state=5)
    model.params_ = {key: a.copy() for key, a in start.items()}
    model.set_params(optimizer="sgd", learning_rate=0.05, epochs=1).fit(X, y)
    grads = fastrnn.loss_and_grad(start, X, y)[1]
    for key in KEYS:
        np.testing.assert_allclose(model.params_[key], start[key] - 0.05 * grads[key],
                                   rtol=1e-12, atol=1e-15)


def test_warm_start_after_a_change_of_optimizer_starts_its_state_afresh():
    """Continuing with another optimizer gives what that optimizer gives
    from the fitted parameters with zero state."""
    X, y = dense_data()
    model = fitted(X, y, epochs=3, warm_start=True, shuffle=False, optimizer="adam",
                   learning_rate=0.01)
    start = {key: a.copy() for key, a in model.params_.items()}
    model.set_params(optimizer="sgd", learning_rate=0.05, epochs=1).fit(X, y)
    grads = fastrnn.loss_and_grad(start, X, y)[1]
    for key in KEYS:
        np.testing.assert_allclose(model.params_[key], start[key] - 0.05 * grads[key],
                                   rtol=1e-12, atol=1e-15)


# ---------------------------------------------------- options that conflict
def test_dropout_with_one_layer_warns():
    X, y = dense_data()
    with pytest.warns(UserWarning, match="^dropout.*n_layers=1"):
        FastRNN(n_hidden=D, epochs=1, dropout=0.5).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FastRNN(n_hidden=D, epochs=1, dropout=0.5, n_layers=2).fit(X, y)
        FastRNN(n_hidden=D, epochs=1, dropout=0.0).fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bptt_is_refused_with_bidirectional_and_with_one_target_per_sequence(cls):
    X, y = dense_data()
    y = y if cls is FastRNN else y * 1.0
    with pytest.raises(ValueError, match=r"^bptt\b.*bidirectional"):
        cls(n_hidden=D, epochs=1, bptt=2, bidirectional=True).fit(X, y)
    model = cls(n_hidden=D, epochs=1, bptt=2)
    with pytest.raises(ValueError, match=r"^bptt\b.*one target per sequence"):
        model.fit(X, y[:, 0])
    assert not hasattr(model, "params_")
    cls(n_hidden=D, epochs=1, bptt=2).fit(X, y)                # per step: fine


BAD_WEIGHTS = [
    ("too-few", np.ones(3), ValueError),
    ("wrong-steps", np.ones((4, 5)), ValueError),
    ("extra-axis", np.ones((4, 6, 1)), ValueError),
    ("negative", np.array([1.0, -1.0, 1.0, 1.0]), ValueError),
    ("all-zero", np.zeros(4), ValueError),
    ("nan", np.array([1.0, np.nan, 1.0, 1.0]), ValueError),
    ("inf", np.full((4, 6), np.inf), ValueError),
    ("list-too-short", [1, 1, 1], ValueError),
    ("string", "heavy", TypeError),
    ("booleans", np.ones(4, dtype=bool), TypeError),
    ("objects", np.array([1, None, 1, 1], dtype=object), TypeError),
]


@pytest.mark.parametrize("name,weights,error", BAD_WEIGHTS, ids=[w[0] for w in BAD_WEIGHTS])
def test_bad_sample_weight(name, weights, error):
    X, y = dense_data()
    model = FastRNN(n_hidden=D, epochs=1)
    with pytest.raises(error, match=r"^sample_weight\b"):
        model.fit(X, y, sample_weight=weights)
    assert not hasattr(model, "params_")
    fitted_model = fitted(X, y, epochs=1)
    with pytest.raises(error, match=r"^sample_weight\b"):
        fitted_model.score(X, y, sample_weight=weights)
    with pytest.raises(error, match=r"^sample_weight\b"):
        fitted_model.loss(X, y, sample_weight=weights)


def test_per_step_sample_weight_needs_a_target_per_step():
    X, y = dense_data()
    with pytest.raises(ValueError, match=r"^sample_weight\b"):
        FastRNN(n_hidden=D, epochs=1).fit(X, y[:, 0], sample_weight=np.ones((4, 6)))


def test_sample_weights_weigh_the_loss():
    """Per-sequence weights are shares of the loss (only their ratios matter);
    weight 0 removes a sequence; per-step 0/1 weights mask steps."""
    X, y = dense_data()
    kwargs = dict(n_hidden=D, epochs=5, random_state=0, shuffle=False)
    weighted = FastRNN(**kwargs).fit(X, y, sample_weight=np.array([2.0, 2.0, 0.0, 2.0]))
    dropped = FastRNN(**kwargs).fit(X[[0, 1, 3]], y[[0, 1, 3]])
    for key in KEYS:
        np.testing.assert_allclose(weighted.params_[key], dropped.params_[key], rtol=1e-12,
                                   atol=1e-14)
    mask = np.ones((4, 6))
    mask[:, 3:] = 0
    masked = FastRNN(**kwargs).fit(X, y, sample_weight=mask)
    cut = FastRNN(**kwargs).fit(X[:, :3], y[:, :3])
    for key in KEYS:
        np.testing.assert_allclose(masked.params_[key], cut.params_[key], rtol=1e-12,
                                   atol=1e-14)


def test_validation_set_needs_early_stopping():
    X, y = dense_data()
    model = FastRNN(n_hidden=D, epochs=1)
    with pytest.raises(ValueError, match=r"^X_val\b.*early_stopping=True"):
        model.fit(X, y, X_val=X, y_val=y)
    with pytest.raises(ValueError, match=r"^X_val\b.*early_stopping=True"):
        model.fit(X, y, y_val=y)
    with pytest.raises(ValueError, match=r"^X_val\b.*both"):
        FastRNN(n_hidden=D, epochs=1, early_stopping=True).fit(X, y, X_val=X)
    with pytest.raises(ValueError, match=r"^X_val\b"):
        FastRNN(n_hidden=D, epochs=1, early_stopping=True).fit(X, y, X_val=np.zeros((2, 3, 7)),
                                                              y_val=y[:2, :3])
    with pytest.raises(ValueError, match=r"^y_val\b"):
        FastRNN(n_hidden=D, epochs=1, early_stopping=True).fit(X, y, X_val=X, y_val=y[:, :2])
    assert not hasattr(model, "params_")


def test_early_stopping_keeps_the_best_epoch():
    """Stops when the validation loss has not improved by tol for
    n_iter_no_change epochs and keeps the best epoch's parameters."""
    X, y = dense_data(B=8)
    Xv, yv = dense_data(B=3, seed=9)
    kwargs = dict(n_hidden=D, random_state=0, learning_rate=0.3, optimizer="sgd")
    model = FastRNN(epochs=10**8, early_stopping=True, n_iter_no_change=3, tol=0.0,
                    **kwargs).fit(X, y, X_val=Xv, y_val=yv)
    assert model.n_iter_ < 10**4
    losses = model.validation_losses_
    assert len(losses) == model.n_iter_ == len(model.loss_curve_)
    best = int(np.argmin(losses))
    assert model.best_epoch_ == best + 1 and model.best_loss_ == losses[best]
    assert model.n_iter_ == best + 1 + 3
    assert model.loss(Xv, yv) == pytest.approx(losses[best], rel=1e-12)
    # the same epochs without early stopping end where the best epoch was
    plain = FastRNN(epochs=best + 1, **kwargs).fit(X, y)
    assert same_params(plain.params_, model.params_)


def test_huge_epochs_allocate_nothing_up_front():
    """epochs is bounded (a ValueError naming it, before anything is
    allocated), and a fit allowed 10**8 epochs that stops early allocates
    only what its epochs need."""
    X, y = dense_data()
    FastRNN(n_hidden=D, epochs=2, early_stopping=True).fit(X, y)      # warm up
    tracemalloc.start()
    try:
        model = FastRNN(n_hidden=D, epochs=10**10)
        with pytest.raises(ValueError, match=r"^epochs\b.*100,000,000"):
            model.fit(X, y)
        refused_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        model = FastRNN(n_hidden=D, epochs=_limits.MAX_EPOCHS, early_stopping=True,
                        n_iter_no_change=2, tol=1e9, random_state=0).fit(X, y)
        stopping_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused_peak < 2**20, refused_peak
    assert model.n_iter_ == 3
    assert stopping_peak < 2**22, stopping_peak


def test_huge_n_hidden_is_a_value_error_naming_it():
    for value in (2**70, 2**24 + 1, 10**30):
        with pytest.raises(ValueError, match=r"^n_hidden\b"):
            FastRNN(n_hidden=value, epochs=1).fit(*dense_data())
    with pytest.raises(ValueError, match=r"parameters"):
        FastRNN(n_hidden=2**24, epochs=1).fit(*dense_data())         # allowed alone, too big
    for name in ("n_inputs", "n_outputs"):
        with pytest.raises(ValueError, match=rf"^{name}\b"):
            FastRNN(epochs=1, **{name: 2**70}).fit(*dense_data())
    with pytest.raises(ValueError, match=r"^n_layers\b"):
        FastRNN(epochs=1, n_layers=2**70).fit(*dense_data())


# ------------------------------------------------- hyperparameter validation
X0, Y0 = dense_data(B=2, T=3)
XI0, YI0 = ids_data(B=2, T=3)
SOFT0 = np.full((2, 3, M), 1 / M)

# (hyperparameter, bad value, exception type)
BAD_HYPER = [
    ("n_hidden", 0, ValueError), ("n_hidden", -3, ValueError), ("n_hidden", 2.0, TypeError),
    ("n_hidden", 2.5, TypeError), ("n_hidden", True, TypeError), ("n_hidden", "4", TypeError),
    ("n_hidden", None, TypeError), ("n_hidden", 2**70, ValueError),
    ("cell", "GRU", ValueError), ("cell", "transformer", ValueError), ("cell", None, ValueError),
    ("backend", "cuda", ValueError), ("backend", "torch", ValueError),
    ("backend", None, ValueError),
    ("optimizer", "lbfgs", ValueError), ("optimizer", None, ValueError),
    ("optimizer", "SGD", ValueError),
    ("learning_rate", 0, ValueError), ("learning_rate", -0.1, ValueError),
    ("learning_rate", float("nan"), ValueError), ("learning_rate", float("inf"), ValueError),
    ("learning_rate", "0.1", TypeError), ("learning_rate", True, TypeError),
    ("epochs", 0, ValueError), ("epochs", -1, ValueError), ("epochs", 1.5, TypeError),
    ("epochs", None, TypeError), ("epochs", 10**10, ValueError),
    ("batch_size", 0, ValueError), ("batch_size", -2, ValueError), ("batch_size", 2.0, TypeError),
    ("shuffle", "yes", TypeError), ("shuffle", None, TypeError), ("shuffle", 1, TypeError),
    ("clip", 0, ValueError), ("clip", -1.0, ValueError), ("clip", float("nan"), ValueError),
    ("clip", float("inf"), ValueError), ("clip", "5", TypeError),
    ("clip_mode", "l1", ValueError), ("clip_mode", None, ValueError),
    ("bptt", 0, ValueError), ("bptt", -1, ValueError), ("bptt", 2.5, TypeError),
    ("random_state", "0", TypeError), ("random_state", -1, TypeError),
    ("random_state", 1.5, TypeError), ("random_state", True, TypeError),
    ("random_state", np.random.RandomState(0), TypeError),
    ("verbose", -1, ValueError), ("verbose", "loud", ValueError), ("verbose", 1.0, ValueError),
    ("verbose", True, ValueError),
    ("warm_start", 1, TypeError), ("warm_start", None, TypeError),
    ("n_inputs", 0, ValueError), ("n_inputs", 2**70, ValueError), ("n_inputs", 2.0, TypeError),
    ("n_outputs", 1.5, TypeError), ("n_outputs", -1, ValueError),
    ("momentum", 1.0, ValueError), ("momentum", -0.1, ValueError),
    ("momentum", float("nan"), ValueError), ("momentum", "0.9", TypeError),
    ("betas", (0.9, 1.0), ValueError), ("betas", (1.0, 0.999), ValueError),
    ("betas", (-0.1, 0.999), ValueError), ("betas", (0.9,), ValueError),
    ("betas", 0.9, ValueError), ("betas", (0.9, "x"), TypeError),
    ("betas", (0.9, 0.99, 0.9), ValueError),
    ("eps", 0, ValueError), ("eps", -1e-8, ValueError), ("eps", "small", TypeError),
    ("n_layers", 0, ValueError), ("n_layers", -1, ValueError), ("n_layers", 65, ValueError),
    ("n_layers", 2.0, TypeError), ("n_layers", True, TypeError), ("n_layers", None, TypeError),
    ("bidirectional", 1, TypeError), ("bidirectional", "yes", TypeError),
    ("bidirectional", None, TypeError),
    ("dropout", 1.0, ValueError), ("dropout", -0.1, ValueError), ("dropout", 1.5, ValueError),
    ("dropout", float("nan"), ValueError), ("dropout", "0.5", TypeError),
    ("dropout", True, TypeError), ("dropout", None, TypeError),
    ("output", "first_step", ValueError), ("output", None, ValueError),
    ("output", "LAST_STEP", ValueError),
    ("early_stopping", 1, TypeError), ("early_stopping", "yes", TypeError),
    ("early_stopping", None, TypeError),
    ("validation_fraction", 0, ValueError), ("validation_fraction", 1.0, ValueError),
    ("validation_fraction", -0.1, ValueError), ("validation_fraction", float("nan"), ValueError),
    ("validation_fraction", "0.1", ValueError), ("validation_fraction", True, ValueError),
    ("validation_fraction", None, ValueError),
    ("n_iter_no_change", 0, ValueError), ("n_iter_no_change", -1, ValueError),
    ("n_iter_no_change", 2.5, TypeError), ("n_iter_no_change", None, TypeError),
    ("tol", -1, ValueError), ("tol", float("nan"), ValueError), ("tol", float("inf"), ValueError),
    ("tol", "0", ValueError), ("tol", True, ValueError), ("tol", None, ValueError),
    ("dtype", "float16", ValueError), ("dtype", np.int32, ValueError), ("dtype", None, ValueError),
    ("dtype", ">f4", ValueError),
]


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("name,value,error", BAD_HYPER,
                         ids=[f"{n}={v!r}" for n, v, _ in BAD_HYPER])
def test_bad_hyperparameters_are_refused_by_fit(cls, name, value, error):
    model = cls(**dict(dict(n_hidden=D, epochs=2, random_state=0), **{name: value}))
    assert getattr(model, name) is value                     # stored as given
    with pytest.raises(error, match=rf"^{re.escape(name)}\b"):
        model.fit(X0, Y0 if cls is FastRNN else Y0 * 1.0)
    assert not hasattr(model, "params_")


def test_every_hyperparameter_is_validated():
    """Every constructor argument has at least one refused value above."""
    assert {name for name, _, _ in BAD_HYPER} == set(DEFAULTS)


GOOD_NUMPY_SCALARS = dict(
    n_hidden=np.int64(8), learning_rate=np.float32(0.1), shuffle=np.False_,
    momentum=np.float16(0.5), epochs=np.int32(3), batch_size=np.uint8(2), clip=np.float64(1.0),
    bptt=np.int16(3), random_state=np.uint32(3), verbose=np.int8(0), warm_start=np.False_,
    n_inputs=np.int64(K), n_outputs=np.uint16(M), betas=(np.float32(0.9), np.float64(0.99)),
    eps=np.float32(1e-7), n_layers=np.int64(2), bidirectional=np.False_, dropout=np.float16(0.5),
    early_stopping=np.False_, validation_fraction=np.float32(0.2), n_iter_no_change=np.int64(3),
    tol=np.float16(0.001), optimizer="momentum")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_numpy_scalar_hyperparameters_fit_and_save(cls, tmp_path):
    """np.int64(8), np.float32(0.1), np.False_, np.float16(0.5)... are what
    comes out of arrays and grid searches: they fit, and save (as the exact
    value the model used) and load."""
    X, y = dense_data()
    y = y if cls is FastRNN else np.random.default_rng(0).normal(size=(4, 6, M))
    model = cls(**GOOD_NUMPY_SCALARS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y)
    assert model.n_iter_ == 3 and model.params_["W_h"].shape == (8, 8)
    plain = cls(**{name: (tuple(float(b) for b in value) if isinstance(value, tuple) else
                          value.item() if isinstance(value, np.generic) else value)
                   for name, value in GOOD_NUMPY_SCALARS.items()}).fit(X, y)
    assert same_params(plain.params_, model.params_)
    path = model.save(tmp_path / "m.npz")
    loaded = cls.load(path)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.learning_rate == float(np.float32(0.1))
    assert loaded.momentum == 0.5 and loaded.shuffle is False and loaded.n_hidden == 8
    # and the early stopping flag as a NumPy bool
    model.set_params(early_stopping=np.True_).fit(X, y)
    assert cls.load(model.save(tmp_path / "es.npz")).early_stopping is True


# ------------------------------------------------------- bad input
def with_value(array, index, value):
    array = np.array(array, dtype=float)
    array[index] = value
    return array


# (id, X, y, argument name the message must start with, exception type)
BAD_DATA = [
    ("X-None", None, Y0, "X", TypeError),
    ("X-str", "abc", Y0, "X", TypeError),
    ("X-object", X0.astype(object), Y0, "X", TypeError),
    ("X-complex", X0.astype(complex), Y0, "X", TypeError),
    ("X-bool", X0 > 0, Y0, "X", TypeError),
    ("X-4d", X0[None], Y0, "X", ValueError),
    ("X-1d-float", np.zeros(3), np.zeros(3, dtype=int), "X", ValueError),
    ("X-scalar", 1.0, Y0, "X", ValueError),
    ("X-empty-batch", np.zeros((0, 3, K)), np.zeros((0, 3), dtype=int), "X", ValueError),
    ("X-empty-steps", np.zeros((2, 0, K)), np.zeros((2, 0), dtype=int), "X", ValueError),
    ("X-empty-ids", np.zeros(0, dtype=int), np.zeros(0, dtype=int), "X", ValueError),
    ("X-empty-list", [], [], "X", ValueError),
    ("X-list-empty-sequence", [X0[0], np.zeros((0, K))], [Y0[0], np.zeros(0, dtype=int)],
     "X", ValueError),
    ("X-list-mixed-widths", [X0[0], np.zeros((3, K + 1))], [Y0[0], Y0[1]], "X", ValueError),
    ("X-list-mixed-kinds", [X0[0], XI0[0]], [Y0[0], Y0[1]], "X", ValueError),
    ("X-nan", with_value(X0, (1, 2, 0), np.nan), Y0, "X", ValueError),
    ("X-inf", with_value(X0, (0, 0, 4), -np.inf), Y0, "X", ValueError),
    ("X-list-nan", [with_value(X0[0], (1, 1), np.nan)], [Y0[0]], "X", ValueError),
    ("X-negative-id", np.where(XI0 == XI0[0, 1], -1, XI0), YI0, "X", ValueError),
    ("X-id-too-large-to-learn", np.array([0, _limits.MAX_LEARNED_CLASSES]), np.array([0, 1]),
     "X", ValueError),
    ("y-None", X0, None, "y", (TypeError, ValueError)),
    ("y-str", X0, "abc", "y", ValueError),
    ("y-object-with-None", X0, np.array([[None, 1, 2], [0, 1, 2]], dtype=object), "y",
     TypeError),
    ("y-complex", X0, SOFT0.astype(complex), "y", TypeError),
    ("y-bool", X0, Y0 > 0, "y", TypeError),
    ("y-non-integer-labels", X0, Y0 + 0.5, "y", ValueError),
    ("y-nan-soft", X0, with_value(SOFT0, (0, 1, 1), np.nan), "y", ValueError),
    ("y-inf-soft", X0, with_value(SOFT0, (1, 2, 0), np.inf), "y", ValueError),
    ("y-soft-not-summing-to-1", X0, SOFT0 * 0.9, "y", ValueError),
    ("y-soft-negative", X0, with_value(SOFT0, (0, 0), [1.5, -0.5, 0.0]), "y", ValueError),
    ("y-too-short", X0, Y0[:, :2], "y", ValueError),
    ("y-too-few-sequences", X0, Y0[:1], "y", ValueError),
    ("y-too-many-sequences", X0, np.concatenate([Y0, Y0]), "y", ValueError),
    ("y-list-length", [X0[0], X0[1]], [Y0[0]], "y", ValueError),
    ("y-list-step-count", [X0[0], X0[1]], [Y0[0], Y0[1][:2]], "y", ValueError),
    ("y-array-for-list", [X0[0], X0[1]], Y0, "y", ValueError),
    ("y-one-hot-as-int", X0, np.eye(M, dtype=int)[Y0], "y", ValueError),
    ("y-negative-id-for-ids", XI0, np.where(YI0 == YI0[0, 0], -1, YI0), "y", ValueError),
    ("y-id-too-large-to-learn", XI0, np.full_like(YI0, _limits.MAX_LEARNED_CLASSES), "y",
     ValueError),
]


@pytest.mark.parametrize("X,y,name,error", [case[1:] for case in BAD_DATA],
                         ids=[case[0] for case in BAD_DATA])
def test_bad_training_data(X, y, name, error):
    model = FastRNN(n_hidden=D, epochs=2, random_state=0)
    with pytest.raises(error, match=rf"^{name}\b"):
        model.fit(X, y)
    assert not hasattr(model, "params_")


def test_ids_beyond_the_learned_bound_ask_for_n_inputs_or_n_outputs():
    """Sizes learned from the data stop at MAX_LEARNED_CLASSES (2**17): an
    id at or beyond it is refused with a message saying to give the size
    explicitly, and is accepted when it is given."""
    big = _limits.MAX_LEARNED_CLASSES
    with pytest.raises(ValueError, match=r"^X\b.*n_inputs="):
        FastRNN(n_hidden=2, epochs=1).fit(np.array([0, big, 1]), np.array([0, 1, 0]))
    with pytest.raises(ValueError, match=r"^y\b.*n_outputs="):
        FastRNN(n_hidden=2, epochs=1).fit(np.array([0, 1, 1]), np.array([0, big, 1]))
    model = FastRNN(n_hidden=2, epochs=1, n_inputs=big + 1).fit(np.array([0, big, 1]),
                                                                np.array([0, 1, 0]))
    assert model.n_inputs_ == big + 1
    # a language model over a vocabulary of n_inputs: its next ids, beyond the
    # bound but within n_inputs, are ids of that vocabulary
    ids = np.array([0, big, 1, 2])
    model = FastRNN(n_hidden=2, epochs=1, n_inputs=big + 1).fit(ids[:-1], ids[1:])
    assert model.n_outputs_ == big + 1
    # labels (not token ids) are encoded, so any integer is a label
    assert np.array_equal(fitted(X0, np.array([0, 2**40]), epochs=1).classes_, [0, 2**40])


def test_out_of_range_targets_with_a_given_n_outputs():
    with pytest.raises(ValueError, match=r"^y\b"):
        FastRNN(n_hidden=D, epochs=1, n_outputs=K).fit(XI0, np.full((2, 3), K))
    with pytest.raises(ValueError, match=r"^X\b"):
        FastRNN(n_hidden=D, epochs=1, n_inputs=K).fit(np.full((2, 3), K), YI0)
    with pytest.raises(ValueError, match=r"^n_outputs\b"):
        FastRNN(n_hidden=D, epochs=1, n_outputs=5).fit(X0, np.array(["a", "b"]))


def test_bad_data_after_fit():
    dense_model = fitted(X0, Y0, epochs=2)
    ids_model = fitted(XI0, YI0, epochs=2)
    for method in (lambda X: dense_model.predict(X), lambda X: dense_model.predict_proba(X),
                   lambda X: dense_model.score(X, Y0), lambda X: dense_model.loss(X, Y0)):
        with pytest.raises(ValueError, match=r"^X\b.*features"):
            method(np.zeros((2, 3, K + 1)))                 # k changed since fit
        with pytest.raises(ValueError, match=r"^X\b"):
            method(np.zeros((2, 3, K - 1)))
        with pytest.raises(TypeError, match=r"^X\b"):
            method(None)
        with pytest.raises(ValueError, match=r"^X\b"):
            method(with_value(X0, (0, 0, 0), np.nan))
    with pytest.raises(ValueError, match=r"^X\b"):
        ids_model.predict(np.array([0, 1, K]))              # id out of the fitted range
    with pytest.raises(ValueError, match=r"^X\b"):
        ids_model.predict_proba(np.array([[0, -1]]))
    with pytest.raises(ValueError, match=r"^y\b"):
        dense_model.score(X0, np.full((2, 3), M + 7))       # a label it never saw
    with pytest.raises(ValueError, match=r"^y\b"):
        ids_model.loss(XI0, np.full((2, 3), -1))
    with pytest.raises(ValueError, match=r"^y\b"):
        dense_model.score(X0, Y0[:, :2])
    with pytest.raises(ValueError, match=r"^y\b"):
        dense_model.loss(X0, np.full((2, 3, M + 1), 1 / (M + 1)))


def test_bad_vocab():
    with pytest.raises(TypeError, match="^vocab"):
        FastRNN(n_hidden=D, epochs=1).fit(XI0, YI0, vocab="abcde")


def test_vocab_too_small_for_the_ids():
    vocab = CharVocab("abc")                                 # 3 ids, data uses 5
    with pytest.raises(ValueError, match=r"^X\b"):
        FastRNN(n_hidden=D, epochs=1).fit(XI0, YI0, vocab=vocab)


# ---------------------------------------- caller's arrays and layouts
def fit_predict(X, y, Xp, **kwargs):
    model = FastRNN(n_hidden=D, epochs=15, batch_size=2, random_state=0, **kwargs).fit(X, y)
    return model, model.predict_proba(Xp), model.score(Xp, y), model.loss(Xp, y)


def assert_same_fit(a, b):
    (ma, pa, sa, la), (mb, pb, sb, lb) = a, b
    assert same_params(ma.params_, mb.params_)
    assert ma.loss_curve_ == mb.loss_curve_
    if isinstance(pa, list):
        assert all(np.array_equal(u, v) for u, v in zip(pa, pb))
    else:
        assert np.array_equal(pa, pb)
    assert sa == sb and la == lb


def frozen(array):
    array = np.array(array)
    array.setflags(write=False)
    return array


@pytest.mark.parametrize("kind", ["dense", "soft", "ids", "list"])
def test_callers_arrays_are_not_modified(kind):
    rng = np.random.default_rng(0)
    if kind in ("dense", "soft"):
        X, y = dense_data(B=3)
        if kind == "soft":
            y = rng.dirichlet(np.ones(M), size=y.shape)
    elif kind == "ids":
        X, y = ids_data(B=3)
    else:
        X, y = list_data()
    weights = rng.uniform(0.5, 1.5, size=len(X))
    before = [np.array(a, copy=True) for a in (X if isinstance(X, list) else [X])] + \
             [np.array(a, copy=True) for a in (y if isinstance(y, list) else [y])] + \
             [weights.copy()]
    model = FastRNN(n_hidden=D, epochs=5, batch_size=2, bptt=2, random_state=0).fit(
        X, y, sample_weight=weights)
    model.predict(X)
    model.predict_proba(X)
    model.score(X, y, sample_weight=weights)
    model.loss(X, y, sample_weight=weights)
    after = [a for a in (X if isinstance(X, list) else [X])] + \
            [a for a in (y if isinstance(y, list) else [y])] + [weights]
    for b, a in zip(before, after):
        assert np.array_equal(a, b) and a.dtype == b.dtype


def test_read_only_inputs():
    X, y = dense_data(B=3)
    reference = fit_predict(X, y, X)
    assert_same_fit(fit_predict(frozen(X), frozen(y), frozen(X)), reference)
    Xl, yl = list_data()
    assert_same_fit(fit_predict([frozen(x) for x in Xl], [frozen(t) for t in yl],
                                [frozen(x) for x in Xl]),
                    fit_predict(Xl, yl, Xl))
    Xi, yi = ids_data(B=3)
    assert_same_fit(fit_predict(frozen(Xi), frozen(yi), frozen(Xi)), fit_predict(Xi, yi, Xi))


def test_fortran_and_strided_inputs():
    X, y = dense_data(B=3)
    reference = fit_predict(X, y, X)
    assert_same_fit(fit_predict(np.asfortranarray(X), np.asfortranarray(y),
                                np.asfortranarray(X)), reference)
    wide = np.zeros((3, 6, 2 * K))
    wide[:, :, ::2] = X
    strided_X = wide[:, :, ::2]
    tall = np.zeros((6, 12), dtype=y.dtype)
    tall[::2, ::2] = y
    strided_y = tall[::2, ::2]
    assert not strided_X.flags.c_contiguous and not strided_y.flags.c_contiguous
    assert_same_fit(fit_predict(strided_X, strided_y, strided_X), reference)
    # a reversed view
    assert_same_fit(fit_predict(X[::-1][::-1], y[::-1][::-1], X[::-1][::-1]), reference)


def test_float32_and_other_integer_dtypes():
    X, y = dense_data(B=3)
    X32 = X.astype(np.float32)
    assert_same_fit(fit_predict(X32, y, X32),
                    fit_predict(X32.astype(np.float64), y, X32.astype(np.float64)))
    assert_same_fit(fit_predict(X, y.astype(np.int32), X), fit_predict(X, y, X))
    assert_same_fit(fit_predict(X, y.astype(np.uint8), X), fit_predict(X, y, X))
    soft = np.random.default_rng(1).dirichlet(np.ones(M), size=y.shape)
    soft32 = soft.astype(np.float32)
    # float32 rows sum to 1 only to float32 precision, which is accepted
    assert_same_fit(fit_predict(X, soft32, X), fit_predict(X, soft32.astype(np.float64), X))
    Xi, yi = ids_data(B=3)
    reference = fit_predict(Xi, yi, Xi)
    for dtype in (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32, np.uint64):
        assert_same_fit(fit_predict(Xi.astype(dtype), yi.astype(dtype), Xi.astype(dtype)),
                        reference)


def test_nested_python_lists_are_a_list_of_sequences():
    """X.tolist() is a list of B sequences: same training as the array,
    and the outputs come back as a list."""
    X, y = dense_data(B=3)
    as_lists = fit_predict(X.tolist(), y.tolist(), X.tolist())
    as_array = fit_predict(X, y, X)
    assert same_params(as_lists[0].params_, as_array[0].params_)
    assert isinstance(as_lists[1], list)
    assert np.array_equal(np.stack(as_lists[1]), as_array[1])
    assert as_lists[2] == as_array[2] and as_lists[3] == pytest.approx(as_array[3], rel=1e-14)


# ------------------------------------------------------- non-finite loss
# The squared error of a network driven far off by a huge learning rate
# overflows (the cross-entropy, computed from the logits, stays finite).
FAULTY = dict(n_hidden=D, optimizer="sgd", learning_rate=1e200, random_state=0)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_non_finite_loss_raises_and_keeps_the_completed_epochs(backend):
    X, y = dense_data()
    y = y * 1.0
    model = FastRNNRegressor(epochs=50, backend=backend, **FAULTY)
    with pytest.raises(FloatingPointError, match=r"^fit: the (loss|gradient) became non-finite "
                                                 r"in epoch 2, update 1\b") as info:
        model.fit(X, y)
    assert "learning_rate" in str(info.value)
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 1
    assert all(math.isfinite(v) for v in model.loss_curve_)
    for key in KEYS:
        assert np.isfinite(model.params_[key]).all()
    # params_ are those after the completed epoch
    one = FastRNNRegressor(epochs=1, backend=backend, **FAULTY).fit(X, y)
    assert same_params(model.params_, one.params_)
    assert model.loss_curve_ == one.loss_curve_
    # and the model still predicts
    assert model.predict(X).shape == (4, 6)


def test_non_finite_loss_within_the_first_epoch():
    X, y = dense_data()
    model = FastRNNRegressor(epochs=50, batch_size=1, **FAULTY)
    with pytest.raises(FloatingPointError, match=r"epoch 1, update 2\b"):
        model.fit(X, y * 1.0)
    assert model.n_iter_ == 0 and model.loss_curve_ == []
    assert all(np.isfinite(model.params_[key]).all() for key in KEYS)
    assert not np.array_equal(model.params_["W_y"],
                              fastrnn.init_params(K, D, 1, random_state=0)["W_y"])


def test_non_finite_loss_under_warm_start_keeps_the_earlier_curve():
    X, y = dense_data()
    model = FastRNNRegressor(n_hidden=D, epochs=3, random_state=0, warm_start=True).fit(X, y * 1.0)
    curve = list(model.loss_curve_)
    model.set_params(**dict(FAULTY, epochs=50))
    with pytest.raises(FloatingPointError, match=r"epoch 2, update 1\b"):
        model.fit(X, y * 1.0)
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 4
    assert model.loss_curve_[:3] == curve


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_an_update_that_would_overflow_is_not_applied(backend):
    """learning_rate 1.7e308: the first update would make parameters
    infinite; it is refused and the model keeps its initial parameters."""
    X, y = dense_data()
    model = FastRNN(n_hidden=D, optimizer="sgd", learning_rate=1.7e308, epochs=5,
                    backend=backend, random_state=0)
    with pytest.raises(FloatingPointError, match=r"^fit: an update would have made a parameter "
                                                 r".*non-finite in epoch 1, update 1\b"):
        model.fit(X * 100, y)
    assert model.n_iter_ == 0 and model.loss_curve_ == []
    assert same_params(model.params_, fastrnn.init_params(K, D, M, random_state=0))
    assert model.predict(X).shape == (4, 6)


# ------------------------------------------------------------------ fuzzing
# The issue: FastRNN(n_hidden=3, epochs=2, random_state=0).fit(X, y) with
# X = np.array([0, 1, 2**63 + 10**9, 1], dtype=np.uint64) died with a
# segmentation fault, and so did the large value in y. Each runs in a child
# process, so that a crash fails the test instead of ending pytest.
CRASH_REPRO = textwrap.dedent("""
    import sys
    import numpy as np
    from fastrnn import FastRNN
    big = np.array([0, 1, 2**63 + 10**9, 1], dtype=np.uint64)
    small = np.array([0, 1, 2, 1], dtype=np.uint64)
    X, y = (big, np.array([1, 0, 1, 0])) if sys.argv[1] == "X" else (small, big)
    try:
        FastRNN(n_hidden=3, epochs=2, random_state=0).fit(X, y)
    except (ValueError, TypeError) as exc:
        print(type(exc).__name__, exc)
    else:
        print("fitted")
""")


def run_child(script, *args, timeout=300):
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("where", ["X", "y"])
def test_huge_uint64_id_is_refused_not_a_crash(where):
    result = run_child(CRASH_REPRO, where)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stderr == ""
    hint = "n_inputs=" if where == "X" else "n_outputs="
    assert result.stdout.startswith(f"ValueError {where}:"), result.stdout
    assert "9223372037854775808" in result.stdout and hint in result.stdout, result.stdout


FUZZ_CHILD = textwrap.dedent('''
    """Every entry point with every integer dtype and extreme value; one JSON
    line per case (printed before it runs, so a crash names its case)."""
    import json, resource, sys, time
    import numpy as np
    # A refused size must be refused, not allocated: bound the address space
    # so that an attempt shows as a MemoryError instead of the OOM killer.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = 6 * 2**30
    if hard == resource.RLIM_INFINITY or hard > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    from fastrnn import FastRNN, FastRNNRegressor
    from fastrnn._limits import MAX_LEARNED_CLASSES as BIG, MAX_SAMPLE_STEPS

    DTYPES = [np.int8, np.int16, np.int32, np.int64,
              np.uint8, np.uint16, np.uint32, np.uint64]
    BASE = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    DENSE = np.random.default_rng(0).normal(size=(2, 4, 2))

    def extremes(dtype):
        info = np.iinfo(dtype)
        values = {0, 1, 3, 4, info.max, info.min, info.max - 1, info.min + 1, BIG - 1, BIG,
                  BIG + 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**62, 2**63 - 1,
                  2**63, 2**63 + 1, 2**63 + 10**9, 2**64 - 1, -1, -2, -2**31, -2**63}
        return sorted(v for v in values if info.min <= v <= info.max)

    def put(v, dtype):
        a = BASE.astype(dtype)
        a[0, 2] = v
        return a

    def case(entry, argument, dtype, value, call):
        print(json.dumps({"case": [entry, argument, np.dtype(dtype).name, str(value)]}),
              flush=True)
        start = time.perf_counter()
        try:
            call()
            outcome, message = "ok", ""
        except (ValueError, TypeError) as exc:
            outcome, message = type(exc).__name__, str(exc)
        except BaseException as exc:                # reported, judged by the test
            outcome, message = "other:" + type(exc).__name__, str(exc)
        print(json.dumps({"outcome": outcome, "message": message[:300],
                          "seconds": time.perf_counter() - start}), flush=True)

    def new(**kw):
        return FastRNN(n_hidden=3, epochs=2, random_state=0, **kw)

    ids_model = new().fit(BASE, BASE)
    label_model = new().fit(BASE, np.array([5, 7]))
    # compile (or load) every kernel used below before timing the cases
    FastRNNRegressor(n_hidden=3, epochs=2).fit(BASE, BASE * 0.5)
    new().fit(DENSE, BASE)
    ids_model.loss(BASE, BASE), ids_model.score(BASE, BASE), label_model.score(BASE, [5, 7])
    ids_model.sample(3, start=0, random_state=0), label_model.predict(BASE)
    for dtype in DTYPES:
        for v in extremes(dtype):
            A = put(v, dtype)
            entries = [
                ("fit", "X", lambda: new().fit(A, BASE)),
                ("fit-single", "X", lambda: new().fit(A[0], BASE[0])),
                ("fit-list", "X[0]", lambda: new().fit([A[0], A[1][:2]], [BASE[0], BASE[1][:2]])),
                ("fit-n_inputs", "X", lambda: new(n_inputs=4).fit(A, BASE)),
                ("fit-regressor", "X", lambda: FastRNNRegressor(n_hidden=3, epochs=2).fit(A, BASE * 0.5)),
                ("fit", "y", lambda: new().fit(BASE, A)),
                ("fit-single", "y", lambda: new().fit(BASE[0], A[0])),
                ("fit-n_outputs", "y", lambda: new(n_outputs=4).fit(BASE, A)),
                ("fit-labels", "y", lambda: new().fit(DENSE, A)),
                ("fit-labels-per-sequence", "y", lambda: new().fit(BASE, A[:, 2])),
                ("predict", "X", lambda: ids_model.predict(A)),
                ("predict_proba", "X", lambda: ids_model.predict_proba(A)),
                ("predict-labels", "X", lambda: label_model.predict(A)),
                ("score", "X", lambda: ids_model.score(A, BASE)),
                ("score", "y", lambda: ids_model.score(BASE, A)),
                ("score-labels", "y", lambda: label_model.score(BASE, A[:, 2])),
                ("loss", "y", lambda: ids_model.loss(BASE, A)),
                ("sample", "start", lambda: ids_model.sample(3, start=dtype(v), random_state=0)),
                ("sample-sequence", "start", lambda: ids_model.sample(3, start=A[0], random_state=0)),
            ]
            if v <= 50 or v > MAX_SAMPLE_STEPS:
                entries.append(("sample", "n_steps",
                                lambda: ids_model.sample(dtype(v), start=0, random_state=0)))
            for entry, argument, call in entries:
                case(entry, argument, dtype, v, call)
    # then random arrays: random dtype, shape and extreme values in random places
    rng = np.random.default_rng(12345)
    for i in range(300):
        dtype = DTYPES[rng.integers(len(DTYPES))]
        pool = extremes(dtype)
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 5)))
        A = rng.integers(0, 4, size=shape).astype(dtype)
        for _ in range(int(rng.integers(1, 3))):
            A[tuple(int(rng.integers(s)) for s in shape)] = pool[rng.integers(len(pool))]
        B = rng.integers(0, 4, size=shape)
        which = i % 4
        if which == 0:
            case("random-fit", "X", dtype, A.tolist(), lambda: new().fit(A, B))
        elif which == 1:
            case("random-fit", "y", dtype, A.tolist(), lambda: new().fit(B, A))
        elif which == 2:
            case("random-predict", "X", dtype, A.tolist(), lambda: ids_model.predict_proba(A))
        else:
            case("random-sample", "start", dtype, A[0].tolist(),
                 lambda: ids_model.sample(2, start=A[0], random_state=0))
    print(json.dumps({"done": True}), flush=True)
''')


def test_fuzz_every_entry_point_with_every_integer_dtype_and_extreme_value():
    """fit (X and y, every input form), predict, predict_proba, score, loss
    and sample (start and n_steps) with int8..int64 and uint8..uint64 arrays
    holding 0, the dtype's min and max, 2**63 ± k, ids at and beyond
    MAX_LEARNED_CLASSES...: each call succeeds or raises a ValueError or
    TypeError naming its argument, never anything else, never a crash.
    Sizes learned from the data beyond the bound are refused with a message
    saying to give n_inputs / n_outputs."""
    result = run_child(FUZZ_CHILD, timeout=600)
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    cases = [r["case"] for r in records if "case" in r]
    outcomes = [r for r in records if "outcome" in r]
    assert result.returncode == 0 and records and records[-1] == {"done": True}, (
        f"the child died (exit {result.returncode}) during {cases[-1] if cases else None}: "
        f"{result.stderr[-2000:]}")
    assert len(cases) == len(outcomes) > 2000
    problems = []
    for (entry, argument, dtype, value), r in zip(cases, outcomes):
        where = f"{entry}({argument}={value} as {dtype})"
        if r["outcome"] == "ok":
            continue
        if r["outcome"] not in ("ValueError", "TypeError"):
            problems.append(f"{where}: {r['outcome']}: {r['message']}")
        elif not re.match(rf"{re.escape(argument.split('[')[0])}\b", r["message"]):
            problems.append(f"{where}: the message does not name {argument}: {r['message']}")
        if entry in ("fit", "fit-single", "fit-list") and r["outcome"] == "ValueError":
            learned = value.lstrip("-").isdigit() and int(value) >= _limits.MAX_LEARNED_CLASSES
            hint = "n_inputs=" if argument.startswith("X") else "n_outputs="
            if learned and hint not in r["message"]:
                problems.append(f"{where}: no hint to give {hint}...: {r['message']}")
    for (entry, argument, dtype, value), r in zip(cases, outcomes):
        if entry in ("fit", "fit-single", "fit-list") and value.lstrip("-").isdigit() and \
                int(value) >= _limits.MAX_LEARNED_CLASSES and r["outcome"] == "ok":
            problems.append(f"{entry}({argument}={value} as {dtype}): accepted an id beyond "
                            f"the learned bound {_limits.MAX_LEARNED_CLASSES - 1}")
        if r["seconds"] > 5:
            problems.append(f"{entry}({argument}={value} as {dtype}): took {r['seconds']:.1f} s")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
