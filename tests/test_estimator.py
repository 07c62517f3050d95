"""FastRNN, the scikit-learn style estimator: its conventions, what it
learns (the toy of the notes, a character-level language model), inference
and its shapes, warm starts, the progress bar, refusal of bad input, faults
(a non-finite loss, Ctrl-C), and inputs in every layout.

Persistence is in test_persistence.py, backend agreement in
test_training_twins.py.
"""
import codecs
import contextlib
import inspect
import io
import math
import os
import re
import signal
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import fastrnn
from fastrnn import CharVocab, FastRNN, NotFittedError
from fastrnn import estimator as estimator_module
from fastrnn._interrupt import HeldInterrupt

KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
K, D, M = 5, 4, 3


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


def hand_forward(params, x):
    """ŷ_t of one sequence, written out from SPEC.md step by step: dense
    (T, k) inputs or (T,) ids (then x_t is one-hot)."""
    W_x, W_h, b_h, W_y, b_y = (params[key] for key in KEYS)
    h = np.zeros(W_h.shape[0])
    out = []
    for x_t in x:
        wx = W_x[:, x_t] if np.ndim(x_t) == 0 else W_x @ x_t
        h = np.tanh(W_h @ h + wx + b_h)
        z = W_y @ h + b_y
        e = np.exp(z - z.max())
        out.append(e / e.sum())
    return np.array(out)


def fitted(X=None, y=None, **kwargs):
    if X is None:
        X, y = dense_data()
    settings = dict(n_hidden=D, epochs=20, random_state=0)
    settings.update(kwargs)
    return FastRNN(**settings).fit(X, y)


# ------------------------------------------------------- sklearn conventions
def test_constructor_only_stores_its_arguments():
    """Anything is accepted and kept as is: validation happens in fit."""
    odd = dict(n_hidden="many", cell="gru", backend="cuda", optimizer="lbfgs",
               learning_rate=-1, epochs=0, batch_size=0, shuffle="yes", clip=-3,
               clip_mode="l1", bptt=0, random_state="seed", verbose=-2, warm_start=None,
               n_inputs=0, n_outputs=2.5, momentum=7, betas=object(), eps=0)
    model = FastRNN(**odd)
    params = model.get_params()
    assert set(params) == set(odd)
    for name, value in odd.items():
        assert params[name] is value
        assert getattr(model, name) is value
    assert not any(name.endswith("_") for name in vars(model))
    with pytest.raises((TypeError, ValueError)):
        model.fit(*dense_data())


def test_get_params_lists_the_constructor_arguments_with_their_defaults():
    signature = inspect.signature(FastRNN.__init__)
    defaults = {name: p.default for name, p in signature.parameters.items() if name != "self"}
    assert FastRNN().get_params() == defaults
    assert FastRNN().get_params(deep=False) == defaults
    assert defaults["n_hidden"] == 32 and defaults["backend"] == "numba"


def test_set_params():
    model = FastRNN()
    assert model.set_params(n_hidden=7, optimizer="adam") is model
    assert model.n_hidden == 7 and model.optimizer == "adam"
    assert model.get_params()["n_hidden"] == 7
    assert model.set_params() is model
    with pytest.raises(ValueError, match="n_hiden"):
        model.set_params(n_hiden=3)
    with pytest.raises(ValueError, match="params_"):
        model.set_params(params_={})


def test_clone_by_get_params():
    """sklearn.base.clone does FastRNN(**model.get_params()): the clone is
    unfitted and fits to the same result."""
    X, y = dense_data()
    model = fitted(X, y, optimizer="adam", learning_rate=0.01, batch_size=3)
    clone = FastRNN(**model.get_params())
    assert clone.get_params() == model.get_params()
    assert not hasattr(clone, "params_")
    clone.fit(X, y)
    for key in KEYS:
        assert np.array_equal(clone.params_[key], model.params_[key])


def test_repr_shows_the_changed_arguments():
    assert repr(FastRNN()) == "FastRNN()"
    text = repr(FastRNN(n_hidden=5, optimizer="adam"))
    assert "n_hidden=5" in text and "optimizer='adam'" in text and "epochs" not in text


def test_fit_returns_self_and_sets_the_learned_state():
    X, y = dense_data()
    model = FastRNN(n_hidden=D, epochs=7, random_state=0)
    for name in ("params_", "loss_curve_", "n_inputs_", "n_outputs_", "n_iter_"):
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
    assert model.n_iter_ == 7
    assert isinstance(model.loss_curve_, list) and len(model.loss_curve_) == 7
    assert all(type(v) is float and math.isfinite(v) for v in model.loss_curve_)
    # The hyperparameters are not touched by fit.
    assert model.get_params() == FastRNN(n_hidden=D, epochs=7, random_state=0).get_params()


def test_learned_sizes():
    """k from the feature count or the largest id + 1; m from the targets,
    at least k for token ids (next-symbol prediction); or as given."""
    X, _ = ids_data()
    model = fitted(X, np.zeros_like(X), epochs=1)          # targets only use class 0
    assert (model.n_inputs_, model.n_outputs_) == (K, K)
    model = fitted(X, np.zeros_like(X), epochs=1, n_inputs=9, n_outputs=11)
    assert (model.n_inputs_, model.n_outputs_) == (9, 11)
    assert model.params_["W_x"].shape == (D, 9) and model.params_["W_y"].shape == (11, D)
    Xd, yd = dense_data()
    soft = np.full(yd.shape + (6,), 1 / 6)
    assert fitted(Xd, soft, epochs=1).n_outputs_ == 6


UNFITTED_CALLS = {
    "predict": lambda m, X, y, path: m.predict(X),
    "predict_proba": lambda m, X, y, path: m.predict_proba(X),
    "score": lambda m, X, y, path: m.score(X, y),
    "loss": lambda m, X, y, path: m.loss(X, y),
    "sample": lambda m, X, y, path: m.sample(5, start=0),
    "sample_text": lambda m, X, y, path: m.sample_text(5),
    "save": lambda m, X, y, path: m.save(path),
}


@pytest.mark.parametrize("method", UNFITTED_CALLS)
def test_unfitted_model_raises_not_fitted(method, tmp_path):
    assert issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, AttributeError)
    X, y = dense_data()
    path = tmp_path / "model.npz"
    with pytest.raises(NotFittedError, match="fit"):
        UNFITTED_CALLS[method](FastRNN(), X, y, path)
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_failed_fit_leaves_a_fresh_model_unfitted():
    model = FastRNN(n_hidden=D, epochs=0)
    with pytest.raises(ValueError, match="^epochs"):
        model.fit(*dense_data())
    assert not hasattr(model, "params_")
    with pytest.raises(ValueError, match="^X"):
        FastRNN(n_hidden=D).fit(np.full((2, 3, K), np.nan), np.zeros((2, 3), dtype=int))


# ------------------------------------------------------ shuffling and seeds
def test_same_random_state_is_bit_identical():
    X, y = dense_data(B=5)
    kwargs = dict(n_hidden=D, epochs=30, batch_size=2, shuffle=True, optimizer="adam",
                  learning_rate=0.01)
    a = FastRNN(random_state=4, **kwargs).fit(X, y)
    b = FastRNN(random_state=4, **kwargs).fit(X, y)
    for key in KEYS:
        assert np.array_equal(a.params_[key], b.params_[key])
    assert a.loss_curve_ == b.loss_curve_
    # An int seed and a Generator seeded with it are the same stream.
    c = FastRNN(random_state=np.random.default_rng(4), **kwargs).fit(X, y)
    for key in KEYS:
        assert np.array_equal(a.params_[key], c.params_[key])


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
                learning_rate=1e-300).fit(X, y)
    for key in KEYS:
        np.testing.assert_allclose(c.params_[key], init[key], rtol=0, atol=1e-290)


def test_blocks_of_epochs_do_not_change_the_result(monkeypatch):
    """fit cuts the epochs into blocks (one kernel call each) by timing;
    whatever the cut, the result is the same to the bit."""
    X, y = dense_data(B=5)
    kwargs = dict(n_hidden=D, epochs=40, batch_size=2, shuffle=True, random_state=3,
                  optimizer="momentum")
    default = FastRNN(**kwargs).fit(X, y)
    monkeypatch.setattr(estimator_module, "_BLOCK_SECONDS", 0.0)   # one epoch per call
    one_by_one = FastRNN(**kwargs).fit(X, y)
    monkeypatch.setattr(estimator_module, "_BLOCK_SECONDS", 1e9)   # blocks grow 8x per call
    growing = FastRNN(**kwargs).fit(X, y)
    for key in KEYS:
        assert np.array_equal(default.params_[key], one_by_one.params_[key])
        assert np.array_equal(default.params_[key], growing.params_[key])
    assert default.loss_curve_ == one_by_one.loss_curve_ == growing.loss_curve_


# -------------------------------------------------------- the toy of the notes
TOY_X = np.eye(4)[[0, 1, 2]]
TOY_Y = np.eye(4)[[1, 2, 3]]


@pytest.mark.parametrize("seed", range(10))
def test_toy_of_the_notes(seed):
    model = FastRNN(n_hidden=3, random_state=seed).fit(TOY_X, TOY_Y)
    assert np.array_equal(model.predict(TOY_X), [1, 2, 3])
    assert model.score(TOY_X, TOY_Y) == 1.0
    # Uniform guessing loses 3 log 4 ≈ 4.16; the defaults (sgd, lr 0.1,
    # 100 epochs) bring it below 0.5.
    assert model.loss_curve_[0] > 3.0 and model.loss_curve_[-1] < 0.5
    assert all(b < a for a, b in zip(model.loss_curve_, model.loss_curve_[1:]))


def test_toy_with_ids_and_the_numpy_backend():
    ids_model = FastRNN(n_hidden=3, random_state=0).fit(np.array([0, 1, 2]), np.array([1, 2, 3]))
    assert np.array_equal(ids_model.predict(np.array([0, 1, 2])), [1, 2, 3])
    assert (ids_model.n_inputs_, ids_model.n_outputs_) == (3, 4)
    numpy_model = FastRNN(n_hidden=3, random_state=0, backend="numpy").fit(TOY_X, TOY_Y)
    assert np.array_equal(numpy_model.predict(TOY_X), [1, 2, 3])


# ------------------------------------------------- a character-level LM
def zen_and_json_text():
    """About 3,700 characters from the standard library: the Zen of Python
    (stored rot13-encoded in ``this``) and the docstring of ``json``."""
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    import json
    return codecs.encode(this.s, "rot13") + "\n" + json.__doc__


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
    assert model.input_kind_ == "ids"


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


def test_char_lm_low_temperature_is_the_argmax_path(char_lm):
    """At temperature → 0 each token is the most probable one, so running
    the model over start + generated, its prediction after each step is the
    token that was generated next."""
    text, vocab, ids, model = char_lm
    start = ids[:20]
    greedy = model.sample(60, start=start, temperature=1e-3, random_state=0)
    predicted = model.predict(np.concatenate([start, greedy]))
    assert np.array_equal(predicted[len(start) - 1:-1], greedy)
    assert np.array_equal(model.sample(60, start=start, temperature=1e-3, random_state=9),
                          greedy)
    # At temperature 1 it is not the argmax path (and high temperature is
    # closer to uniform: more distinct characters).
    warm = model.sample(60, start=start, temperature=1.0, random_state=0)
    assert not np.array_equal(warm, greedy)
    hot = model.sample(400, start=start, temperature=5.0, random_state=0)
    cold = model.sample(400, start=start, temperature=0.5, random_state=0)
    assert len(set(hot)) > len(set(cold))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_sets_the_distribution(temperature):
    """One step sampled from many seeds: the frequencies follow
    p^(1/T) / Σ p^(1/T), computed here from predict_proba."""
    X, y = ids_data()
    model = fitted(X, y, epochs=30, optimizer="adam", learning_rate=0.05)
    p = model.predict_proba(np.array([2, 0, 3]))[-1]
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


def test_sample_needs_an_ids_model():
    model = fitted()
    with pytest.raises(ValueError, match="sample"):
        model.sample(5, start=0)
    X, y = ids_data()
    ids_model = fitted(X, y)
    with pytest.raises(ValueError, match="sample_text"):
        ids_model.sample_text(5)
    with pytest.raises(TypeError, match="start"):
        ids_model.sample(5, start="abc")
    with pytest.raises(ValueError, match="^start"):
        ids_model.sample(5, start=K)
    with pytest.raises(ValueError, match="^n_steps"):
        ids_model.sample(0)
    with pytest.raises(ValueError, match="^temperature"):
        ids_model.sample(3, temperature=0.0)


# --------------------------------------------- predict, score and loss
@pytest.fixture(scope="module")
def dense_model():
    X, y = dense_data()
    return fitted(X, y, epochs=30)


@pytest.fixture(scope="module")
def ids_model():
    X, y = ids_data()
    return fitted(X, y, epochs=30)


def test_predict_proba_matches_a_forward_pass_by_hand(dense_model, ids_model):
    X, _ = dense_data(seed=1)
    probs = dense_model.predict_proba(X)
    for b in range(len(X)):
        np.testing.assert_allclose(probs[b], hand_forward(dense_model.params_, X[b]),
                                   rtol=1e-12, atol=1e-15)
    Xi, _ = ids_data(seed=1)
    probs = ids_model.predict_proba(Xi)
    for b in range(len(Xi)):
        np.testing.assert_allclose(probs[b], hand_forward(ids_model.params_, Xi[b]),
                                   rtol=1e-12, atol=1e-15)


def test_output_shapes_follow_the_input(dense_model, ids_model):
    X, _ = dense_data(B=3, T=5, seed=2)
    assert dense_model.predict_proba(X).shape == (3, 5, M)
    assert dense_model.predict(X).shape == (3, 5)
    assert dense_model.predict_proba(X[0]).shape == (5, M)
    assert dense_model.predict(X[0]).shape == (5,)
    Xl, _ = list_data()
    probs = dense_model.predict_proba(Xl)
    labels = dense_model.predict(Xl)
    assert isinstance(probs, list) and isinstance(labels, list)
    assert [p.shape for p in probs] == [(len(x), M) for x in Xl]
    assert [p.shape for p in labels] == [(len(x),) for x in Xl]
    for x, p, lab in zip(Xl, probs, labels):
        np.testing.assert_allclose(p, hand_forward(dense_model.params_, x), rtol=1e-12,
                                   atol=1e-15)
        assert np.array_equal(lab, p.argmax(axis=1))
        assert np.issubdtype(lab.dtype, np.integer)
    np.testing.assert_allclose(dense_model.predict_proba(X).sum(axis=-1), 1.0, rtol=1e-14)

    Xi, _ = ids_data(B=3, T=5, seed=2)
    assert ids_model.predict_proba(Xi).shape == (3, 5, K)
    assert ids_model.predict(Xi).shape == (3, 5)
    assert ids_model.predict_proba(Xi[1]).shape == (5, K)
    assert ids_model.predict(Xi[1]).shape == (5,)
    assert np.array_equal(ids_model.predict(Xi[1]), ids_model.predict(Xi)[1])
    ragged = [Xi[0], Xi[1][:2], Xi[2][:1]]
    assert [p.shape for p in ids_model.predict(ragged)] == [(5,), (2,), (1,)]
    assert np.array_equal(ids_model.predict(ragged)[1], ids_model.predict(Xi[1][:2]))


def manual_accuracy(model, X, y):
    """Fraction of steps whose most probable class (by the forward pass
    written out here) is the target's class."""
    hits = total = 0
    for x, t in zip(X, y):
        predicted = hand_forward(model.params_, x).argmax(axis=1)
        labels = t if np.ndim(t) == 1 else np.argmax(t, axis=1)
        hits += int((predicted == labels).sum())
        total += len(labels)
    return hits / total


def test_score_is_the_mean_accuracy_over_steps(dense_model):
    X, y = dense_data(B=6, T=7, seed=3)
    expected = manual_accuracy(dense_model, X, y)
    assert 0 < expected < 1
    assert dense_model.score(X, y) == pytest.approx(expected, abs=1e-15)
    # Single sequence, list (steps weigh equally, not sequences), soft targets.
    assert dense_model.score(X[2], y[2]) == pytest.approx(
        manual_accuracy(dense_model, X[2:3], y[2:3]), abs=1e-15)
    Xl, yl = list_data(seed=4)
    assert dense_model.score(Xl, yl) == pytest.approx(manual_accuracy(dense_model, Xl, yl),
                                                      abs=1e-15)
    soft = np.eye(M)[y] * 0.7 + 0.1
    assert dense_model.score(X, soft) == pytest.approx(expected, abs=1e-15)
    assert type(dense_model.score(X, y)) is float


def test_score_weighs_steps_not_sequences(dense_model):
    """A list of a 1-step and a 9-step sequence: per-step mean."""
    rng = np.random.default_rng(8)
    Xl = [rng.normal(size=(1, K)), rng.normal(size=(9, K))]
    predicted = [hand_forward(dense_model.params_, x).argmax(axis=1) for x in Xl]
    y = [predicted[0], predicted[1].copy()]
    y[1][:3] = (y[1][:3] + 1) % M                 # 3 of 10 steps wrong
    assert dense_model.score(Xl, y) == pytest.approx(0.7, abs=1e-15)


def test_loss_equals_the_functional_loss(dense_model, ids_model):
    X, y = dense_data(seed=5)
    assert dense_model.loss(X, y) == fastrnn.loss_and_grad(dense_model.params_, X, y)[0]
    Xl, yl = list_data(seed=5)
    assert dense_model.loss(Xl, yl) == fastrnn.loss_and_grad(dense_model.params_, Xl, yl)[0]
    Xi, yi = ids_data(seed=5)
    assert ids_model.loss(Xi, yi) == fastrnn.loss_and_grad(ids_model.params_, Xi, yi)[0]
    # and is the mean over sequences of the summed cross-entropy, by hand:
    by_hand = np.mean([-np.log(hand_forward(dense_model.params_, x)[np.arange(len(t)), t]).sum()
                       for x, t in zip(X, y)])
    assert dense_model.loss(X, y) == pytest.approx(by_hand, rel=1e-12)


def test_loss_curve_is_the_training_loss(dense_model):
    """Full batch without truncation: each epoch's entry is the loss at the
    parameters the epoch started from; after the last update, one more
    full-batch epoch would record model.loss at the final parameters."""
    X, y = dense_data()
    a = fitted(X, y, epochs=5)
    b = fitted(X, y, epochs=6)
    assert a.loss_curve_ == pytest.approx(b.loss_curve_[:5], rel=1e-14)
    assert a.loss(X, y) == pytest.approx(b.loss_curve_[5], rel=1e-12)


# ------------------------------------------------------------- warm start
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_warm_start_continues(optimizer):
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
    for key in KEYS:
        diff = np.linalg.norm(twice.params_[key] - once.params_[key])
        assert diff <= 1e-12 * np.linalg.norm(once.params_[key]), key
    np.testing.assert_allclose(twice.loss_curve_, once.loss_curve_, rtol=1e-12)


def test_without_warm_start_fit_starts_over():
    X, y = dense_data()
    model = FastRNN(n_hidden=D, epochs=5, random_state=0)
    first = {key: a.copy() for key, a in model.fit(X, y).params_.items()}
    model.fit(X, y)
    assert len(model.loss_curve_) == 5 and model.n_iter_ == 5
    for key in KEYS:
        assert np.array_equal(model.params_[key], first[key])


def test_warm_start_refuses_a_different_network():
    X, y = dense_data()
    model = fitted(X, y, epochs=2, warm_start=True)
    with pytest.raises(ValueError, match="^n_hidden"):
        model.set_params(n_hidden=D + 1).fit(X, y)
    model.set_params(n_hidden=D)
    with pytest.raises(ValueError, match="^X"):
        model.fit(np.zeros((2, 3, K + 1)), np.zeros((2, 3), dtype=int))
    # The refused fits changed nothing.
    assert len(model.loss_curve_) == 2


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


# ------------------------------------------------------------------ verbose
def test_verbose_writes_a_progress_bar_to_stderr(capsys):
    X, y = dense_data()
    FastRNN(n_hidden=D, epochs=6, verbose=1, random_state=0).fit(X, y)
    out, err = capsys.readouterr()
    assert out == ""
    assert "epoch 6/6" in err and "loss" in err and "#" in err
    assert err.endswith("\n")


def test_verbose_0_writes_nothing(capsys):
    X, y = dense_data()
    model = FastRNN(n_hidden=D, epochs=6, verbose=0, random_state=0).fit(X, y)
    model.predict(X)
    model.score(X, y)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


# ------------------------------------------------------- bad input
def with_value(array, index, value):
    array = np.array(array, dtype=float)
    array[index] = value
    return array


X0, Y0 = dense_data(B=2, T=3)
XI, YI = ids_data(B=2, T=3)
SOFT0 = np.full((2, 3, M), 1 / M)

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
    ("X-list-mixed-kinds", [X0[0], XI[0]], [Y0[0], Y0[1]], "X", ValueError),
    ("X-nan", with_value(X0, (1, 2, 0), np.nan), Y0, "X", ValueError),
    ("X-inf", with_value(X0, (0, 0, 4), -np.inf), Y0, "X", ValueError),
    ("X-list-nan", [with_value(X0[0], (1, 1), np.nan)], [Y0[0]], "X", ValueError),
    ("X-negative-id", np.where(XI == XI[0, 1], -1, XI), YI, "X", ValueError),
    ("y-None", X0, None, "y", TypeError),
    ("y-str", X0, "abc", "y", TypeError),
    ("y-object", X0, Y0.astype(object), "y", TypeError),
    ("y-complex", X0, SOFT0.astype(complex), "y", TypeError),
    ("y-negative-label", X0, np.where(Y0 == Y0[0, 0], -1, Y0), "y", ValueError),
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
]


@pytest.mark.parametrize("X,y,name,error", [case[1:] for case in BAD_DATA],
                         ids=[case[0] for case in BAD_DATA])
def test_bad_training_data(X, y, name, error):
    model = FastRNN(n_hidden=D, epochs=2, random_state=0)
    with pytest.raises(error, match=rf"^{name}\b"):
        model.fit(X, y)
    assert not hasattr(model, "params_")


def test_out_of_range_targets_with_a_given_n_outputs():
    with pytest.raises(ValueError, match=r"^y\b"):
        FastRNN(n_hidden=D, epochs=1, n_outputs=M).fit(X0, np.full((2, 3), M))
    with pytest.raises(ValueError, match=r"^X\b"):
        FastRNN(n_hidden=D, epochs=1, n_inputs=K).fit(np.full((2, 3), K), YI)


def test_bad_data_after_fit(dense_model, ids_model):
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
        dense_model.score(X0, np.full((2, 3), M))           # class out of range
    with pytest.raises(ValueError, match=r"^y\b"):
        dense_model.loss(X0, np.full((2, 3), -1))
    with pytest.raises(ValueError, match=r"^y\b"):
        dense_model.score(X0, Y0[:, :2])
    with pytest.raises(ValueError, match=r"^y\b"):
        dense_model.loss(X0, np.full((2, 3, M + 1), 1 / (M + 1)))


# (hyperparameter, bad value, exception type)
BAD_HYPER = [
    ("n_hidden", 0, ValueError), ("n_hidden", -3, ValueError), ("n_hidden", 2.0, TypeError),
    ("n_hidden", 2.5, TypeError), ("n_hidden", True, TypeError), ("n_hidden", "4", TypeError),
    ("n_hidden", None, TypeError),
    ("learning_rate", 0, ValueError), ("learning_rate", -0.1, ValueError),
    ("learning_rate", float("nan"), ValueError), ("learning_rate", float("inf"), ValueError),
    ("learning_rate", "0.1", TypeError), ("learning_rate", True, TypeError),
    ("epochs", 0, ValueError), ("epochs", -1, ValueError), ("epochs", 1.5, TypeError),
    ("epochs", None, TypeError),
    ("batch_size", 0, ValueError), ("batch_size", -2, ValueError), ("batch_size", 2.0, TypeError),
    ("bptt", 0, ValueError), ("bptt", -1, ValueError), ("bptt", 2.5, TypeError),
    ("clip", 0, ValueError), ("clip", -1.0, ValueError), ("clip", float("nan"), ValueError),
    ("clip", float("inf"), ValueError), ("clip", "5", TypeError),
    ("optimizer", "lbfgs", ValueError), ("optimizer", None, ValueError),
    ("optimizer", "SGD", ValueError),
    ("cell", "gru", ValueError), ("cell", None, ValueError),
    ("backend", "cuda", ValueError), ("backend", None, ValueError),
    ("clip_mode", "l1", ValueError), ("clip_mode", None, ValueError),
    ("momentum", 1.0, ValueError), ("momentum", -0.1, ValueError),
    ("momentum", float("nan"), ValueError), ("momentum", "0.9", TypeError),
    ("betas", (0.9, 1.0), ValueError), ("betas", (1.0, 0.999), ValueError),
    ("betas", (-0.1, 0.999), ValueError), ("betas", (0.9,), ValueError),
    ("betas", 0.9, ValueError), ("betas", (0.9, "x"), TypeError),
    ("eps", 0, ValueError), ("eps", -1e-8, ValueError),
    ("random_state", "0", TypeError), ("random_state", -1, TypeError),
    ("random_state", 1.5, TypeError),
    ("shuffle", "yes", TypeError), ("shuffle", None, TypeError),
    ("warm_start", 1, TypeError),
    ("verbose", -1, ValueError), ("verbose", "loud", ValueError),
    ("n_inputs", 0, ValueError), ("n_outputs", 1.5, TypeError),
]


@pytest.mark.parametrize("name,value,error", BAD_HYPER,
                         ids=[f"{n}={v!r}" for n, v, _ in BAD_HYPER])
def test_bad_hyperparameters_are_refused_by_fit(name, value, error):
    model = FastRNN(**dict(dict(n_hidden=D, epochs=2, random_state=0), **{name: value}))
    assert getattr(model, name) is value                     # stored as given
    with pytest.raises(error, match=rf"^{re.escape(name)}\b"):
        model.fit(X0, Y0)
    assert not hasattr(model, "params_")


def test_bad_vocab():
    with pytest.raises(TypeError, match="^vocab"):
        FastRNN(n_hidden=D, epochs=1).fit(XI, YI, vocab="abcde")


def test_vocab_too_small_for_the_ids():
    vocab = CharVocab("abc")                                 # 3 ids, data uses 5
    with pytest.raises(ValueError, match=r"^X\b"):
        FastRNN(n_hidden=D, epochs=1).fit(XI, YI, vocab=vocab)


# ---------------------------------------- caller's arrays and layouts
def fit_predict(X, y, Xp, **kwargs):
    model = FastRNN(n_hidden=D, epochs=15, batch_size=2, random_state=0, **kwargs).fit(X, y)
    return model, model.predict_proba(Xp), model.score(Xp, y), model.loss(Xp, y)


def assert_same_fit(a, b):
    (ma, pa, sa, la), (mb, pb, sb, lb) = a, b
    for key in KEYS:
        assert np.array_equal(ma.params_[key], mb.params_[key]), key
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
    before = [np.array(a, copy=True) for a in (X if isinstance(X, list) else [X])] + \
             [np.array(a, copy=True) for a in (y if isinstance(y, list) else [y])]
    model = FastRNN(n_hidden=D, epochs=5, batch_size=2, bptt=2, random_state=0).fit(X, y)
    model.predict(X)
    model.predict_proba(X)
    model.score(X, y)
    model.loss(X, y)
    after = [a for a in (X if isinstance(X, list) else [X])] + \
            [a for a in (y if isinstance(y, list) else [y])]
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
    for dtype in (np.int32, np.int16, np.uint8, np.uint64):
        assert_same_fit(fit_predict(Xi.astype(dtype), yi.astype(dtype), Xi.astype(dtype)),
                        reference)


def test_nested_python_lists_are_a_list_of_sequences():
    """X.tolist() is a list of B sequences: same training as the array,
    and the outputs come back as a list."""
    X, y = dense_data(B=3)
    as_lists = fit_predict(X.tolist(), y.tolist(), X.tolist())
    as_array = fit_predict(X, y, X)
    for key in KEYS:
        assert np.array_equal(as_lists[0].params_[key], as_array[0].params_[key])
    assert isinstance(as_lists[1], list)
    assert np.array_equal(np.stack(as_lists[1]), as_array[1])
    assert as_lists[2] == as_array[2] and as_lists[3] == pytest.approx(as_array[3], rel=1e-14)


# ------------------------------------------------------- non-finite loss
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_non_finite_loss_raises_and_keeps_the_completed_epochs(backend):
    X, y = dense_data()
    model = FastRNN(n_hidden=D, backend=backend, learning_rate=1e10, epochs=50, random_state=0)
    with pytest.raises(FloatingPointError, match=r"epoch 2, update 1\b") as info:
        model.fit(X, y)
    assert "learning_rate" in str(info.value)
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 1
    assert all(math.isfinite(v) for v in model.loss_curve_)
    for key in KEYS:
        assert np.isfinite(model.params_[key]).all()
    # params_ are those after the completed epoch
    one = FastRNN(n_hidden=D, backend=backend, learning_rate=1e10, epochs=1,
                  random_state=0).fit(X, y)
    for key in KEYS:
        assert np.array_equal(model.params_[key], one.params_[key])
    assert model.loss_curve_ == one.loss_curve_
    # and the model still predicts
    assert model.predict(X).shape == (4, 6)


def test_non_finite_loss_within_the_first_epoch():
    X, y = dense_data()
    model = FastRNN(n_hidden=D, learning_rate=1e10, epochs=50, batch_size=1, random_state=0)
    with pytest.raises(FloatingPointError, match=r"epoch 1, update 2\b"):
        model.fit(X, y)
    assert model.n_iter_ == 0 and model.loss_curve_ == []
    assert all(np.isfinite(model.params_[key]).all() for key in KEYS)
    assert not np.array_equal(model.params_["W_y"],
                              fastrnn.init_params(K, D, M, random_state=0)["W_y"])


def test_non_finite_loss_under_warm_start_keeps_the_earlier_curve():
    X, y = dense_data()
    model = FastRNN(n_hidden=D, epochs=3, random_state=0, warm_start=True).fit(X, y)
    curve = list(model.loss_curve_)
    model.set_params(learning_rate=1e10, epochs=50)
    with pytest.raises(FloatingPointError, match=r"epoch 2, update 1\b"):
        model.fit(X, y)
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 4
    assert model.loss_curve_[:3] == curve


# ----------------------------------------------------------------- Ctrl-C
def long_fit_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 40, K)), rng.integers(0, M, size=(32, 40))


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(SIGINT) ends the process on Windows")
def test_ctrl_c_stops_at_a_completed_epoch():
    X, y = long_fit_data()
    # Warm the kernels, so the signal arrives during training, not compiling.
    FastRNN(n_hidden=8, epochs=1, batch_size=4).fit(X, y)
    epochs = 10**7              # about an hour: the signal must be what ends it
    model = FastRNN(n_hidden=8, epochs=epochs, batch_size=4, random_state=0)
    before = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.warns(RuntimeWarning, match="interrupted") as record:
            model.fit(X, y)
    finally:
        timer.cancel()
    assert len(record) == 1
    assert signal.getsignal(signal.SIGINT) is before
    assert 0 < model.n_iter_ < epochs
    assert len(model.loss_curve_) == model.n_iter_
    assert all(math.isfinite(v) for v in model.loss_curve_)
    assert f"after {model.n_iter_} of {epochs} epochs" in str(record[0].message)
    assert model.predict(X).shape == (32, 40)
    assert all(np.isfinite(model.params_[key]).all() for key in KEYS)


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(SIGINT) ends the process on Windows")
def test_held_interrupt_holds_one_ctrl_c_and_lets_a_second_through():
    """The guard fit trains under. Python runs a signal handler between
    bytecodes, so a Ctrl-C that arrives while a kernel runs is seen when
    the call returns; two that arrive during the same call count as one.
    Here they arrive one after the other."""
    before = signal.getsignal(signal.SIGINT)
    with HeldInterrupt() as guard:
        assert signal.getsignal(signal.SIGINT) is not before
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):                    # the handler runs at the next bytecodes
            if guard.hit:
                break
            time.sleep(0.001)
        assert guard.hit
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                time.sleep(0.001)
    assert signal.getsignal(signal.SIGINT) is before


def test_handler_restored_after_a_failed_fit():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(FloatingPointError):
        FastRNN(n_hidden=D, learning_rate=1e10, epochs=5, random_state=0).fit(*dense_data())
    assert signal.getsignal(signal.SIGINT) is before


def test_fit_off_the_main_thread():
    """No signal handler can be installed there; fit still works and leaves
    the main thread's handler alone."""
    X, y = dense_data()
    before = signal.getsignal(signal.SIGINT)
    result = {}

    def work():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result["model"] = FastRNN(n_hidden=D, epochs=5, random_state=0).fit(X, y)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert result["model"].n_iter_ == 5
    assert signal.getsignal(signal.SIGINT) is before
    main = FastRNN(n_hidden=D, epochs=5, random_state=0).fit(X, y)
    for key in KEYS:
        assert np.array_equal(result["model"].params_[key], main.params_[key])
