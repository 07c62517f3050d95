"""FastRNN.save / FastRNN.load (and FastRNNRegressor's), and pickling: a round
trip keeps everything that predicts, for every cell, depth, direction, output
head, vocabulary and kind of classes_; files written by fastrnn 0.1 still load
and predict as they did; a file that is not a consistent model of the class
loading it is refused with a ValueError naming the file, before any big
allocation; saving follows symlinks and the umask.

The file format itself (zip members, bombs, FIFOs, atomic writes) is
fastrnn._modelfile's, tested in test_modelfile.py; here it is the estimators'
use of it.
"""
import copy
import json
import os
import pickle
import stat
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

import fastrnn
from fastrnn import CharVocab, FastRNN, FastRNNRegressor, NotFittedError
from fastrnn._modelfile import ModelFileError, write_model

KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
K, D, M = 5, 4, 3
DATA = Path(__file__).parent / "data"


def dense_data(B=4, T=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, T, K)), rng.integers(0, M, size=(B, T))


def ids_data(B=4, T=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, K, size=(B, T))
    X[0, 0] = K - 1
    return X, rng.integers(0, K, size=(B, T))


@pytest.fixture(scope="module")
def model():
    X, y = dense_data()
    return FastRNN(n_hidden=D, epochs=12, optimizer="adam", learning_rate=0.01, batch_size=3,
                   clip=2.0, clip_mode="value", bptt=4, random_state=3).fit(X, y)


@pytest.fixture(scope="module")
def text_model():
    text = "the quick brown fox jumps over the lazy dog. " * 4
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    return FastRNN(n_hidden=8, epochs=5, optimizer="adagrad", bptt=10,
                   random_state=0).fit(ids[:-1], ids[1:], vocab=vocab)


def meta_of(path):
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["meta"]))


def arrays_of(path):
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files if key != "meta"}


def assert_same_model(loaded, original):
    """Everything fit learned and every hyperparameter survived."""
    assert type(loaded) is type(original)
    expected = original.get_params()
    if isinstance(expected["random_state"], np.random.Generator):
        expected["random_state"] = None                 # a Generator has no portable form
    assert loaded.get_params() == expected
    for name, value in loaded.get_params().items():
        assert type(value) is type(expected[name]) or name == "random_state", name
    assert loaded.params_.keys() == original.params_.keys()
    for key in original.params_:
        assert np.array_equal(loaded.params_[key], original.params_[key]), key
        assert loaded.params_[key].dtype == np.float64
        assert loaded.params_[key].flags.c_contiguous
    assert loaded.loss_curve_ == original.loss_curve_
    assert all(type(v) is float for v in loaded.loss_curve_)
    assert loaded.n_iter_ == original.n_iter_
    assert (loaded.n_inputs_, loaded.n_outputs_) == (original.n_inputs_, original.n_outputs_)
    assert loaded.vocab_ == original.vocab_
    assert (loaded.cell_, loaded.output_, loaded.input_kind_) == \
        (original.cell_, original.output_, original.input_kind_)
    assert hasattr(loaded, "n_features_in_") == hasattr(original, "n_features_in_")
    if hasattr(original, "n_features_in_"):
        assert loaded.n_features_in_ == original.n_features_in_
    if hasattr(original, "classes_"):
        assert loaded.classes_.dtype == original.classes_.dtype
        assert np.array_equal(loaded.classes_, original.classes_)
        assert loaded.classes_.tolist() == original.classes_.tolist()
    else:
        assert not hasattr(loaded, "classes_")


def assert_same_predictions(loaded, original, X, y):
    if isinstance(original, FastRNN):
        a, b = loaded.predict_proba(X), original.predict_proba(X)
        if isinstance(a, list):
            assert all(np.array_equal(u, v) for u, v in zip(a, b))
        else:
            assert np.array_equal(a, b)
    a, b = loaded.predict(X), original.predict(X)
    if isinstance(a, list):
        assert all(np.array_equal(u, v) for u, v in zip(a, b))
    else:
        assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype
    assert loaded.score(X, y) == original.score(X, y)
    assert loaded.loss(X, y) == original.loss(X, y)


# ------------------------------------------------------------ round trips
def test_round_trip(model, tmp_path):
    path = tmp_path / "model.npz"
    assert os.fspath(model.save(path)) == str(path)
    loaded = FastRNN.load(path)
    assert_same_model(loaded, model)
    assert repr(loaded) == repr(model)
    X, y = dense_data(seed=1)
    assert_same_predictions(loaded, model, X, y)
    assert loaded.vocab_ is None
    # Nothing else was left in the directory (the save writes a temporary
    # file beside the target and renames it).
    assert os.listdir(tmp_path) == ["model.npz"]


def test_round_trip_with_a_str_path_and_overwrite(model, text_model, tmp_path):
    path = str(tmp_path / "m.npz")
    assert text_model.save(path) == path
    model.save(path)                                    # replaces the file
    assert_same_model(FastRNN.load(path), model)
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


HEADS = ("classifier-every", "classifier-last", "regressor-every", "regressor-last")


def head_data(head, bidirectional, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(4, 5, K))
    if head == "classifier-every":
        y = rng.integers(0, M, size=(4, 5))
    elif head == "classifier-last":
        y = np.array(["no", "yes", "yes", "maybe"])
    elif head == "regressor-every":
        y = rng.normal(size=(4, 5, 2))
    else:
        y = rng.normal(size=4)
    return X, y


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("n_layers,bidirectional", [(1, False), (2, False), (1, True),
                                                    (3, True)])
def test_round_trip_every_architecture_and_head(head, cell, n_layers, bidirectional, tmp_path):
    X, y = head_data(head, bidirectional)
    cls = FastRNN if head.startswith("classifier") else FastRNNRegressor
    original = cls(n_hidden=3, cell=cell, n_layers=n_layers, bidirectional=bidirectional,
                   dropout=0.25 if n_layers > 1 else 0.0, epochs=3, optimizer="rmsprop",
                   random_state=1).fit(X, y)
    path = original.save(tmp_path / "m.npz")
    loaded = cls.load(path)
    assert_same_model(loaded, original)
    assert_same_predictions(loaded, original, X, y)
    Xt, _ = head_data(head, bidirectional, seed=1)
    a, b = loaded.predict(Xt), original.predict(Xt)
    assert np.array_equal(a, b)
    if not bidirectional:
        # the carried state too (streaming)
        (pa, sa), (pb, sb) = (m.predict(Xt[:, :2], return_state=True) for m in (loaded,
                                                                                original))
        assert np.array_equal(pa, pb)
        for u, v in zip(sa if isinstance(sa, tuple) else (sa,),
                        sb if isinstance(sb, tuple) else (sb,)):
            assert np.array_equal(u, v)


@pytest.mark.parametrize("cls", [FastRNN, FastRNNRegressor])
@pytest.mark.parametrize("form", ["ids", "list-of-ids"])
def test_round_trip_of_token_id_models(cls, form, tmp_path):
    X, y = ids_data()
    if cls is FastRNNRegressor:
        y = y * 0.5
    if form == "list-of-ids":
        X, y = [X[0], X[1][:3]], [y[0], y[1][:3]]
    original = cls(n_hidden=D, epochs=3, random_state=0, n_inputs=K + 2).fit(X, y)
    loaded = cls.load(original.save(tmp_path / "m.npz"))
    assert_same_model(loaded, original)
    assert_same_predictions(loaded, original, X, y)
    assert loaded.input_kind_ == "ids" and not hasattr(loaded, "n_features_in_")


CLASSES = {
    "str": np.array(["cat", "dog", "cat", "emu"]),
    "unicode": np.array(["é", "ß", "é", "日本"]),
    "bytes": np.array([b"x", b"y", b"x", b"zz"]),
    "int8": np.array([-5, 3, 3, -5], dtype=np.int8),
    "int16": np.array([-300, 3, 3, 1], dtype=np.int16),
    "int32": np.array([-(2**31), 3, 2**31 - 1, 3], dtype=np.int32),
    "int64": np.array([-(2**63), 0, 2**63 - 1, 0], dtype=np.int64),
    "uint8": np.array([255, 0, 7, 7], dtype=np.uint8),
    "uint16": np.array([65535, 0, 7, 7], dtype=np.uint16),
    "uint32": np.array([2**32 - 1, 0, 7, 7], dtype=np.uint32),
    "uint64": np.array([2**63 + 5, 3, 3, 2**64 - 1], dtype=np.uint64),
    "-1/1": np.array([-1, 1, 1, -1]),
    "float16": np.array([1.0, 3.0, 1.0, 2.0], dtype=np.float16),
    "float32": np.array([-1.0, 2.0**24, 1.0, 2.0], dtype=np.float32),
    "float64": np.array([-2.0, 4.0, 2.0**60, -2.0]),
}


@pytest.mark.parametrize("kind", CLASSES)
def test_round_trip_keeps_classes_of_every_kind(kind, tmp_path):
    X, _ = dense_data()
    labels = CLASSES[kind]
    original = FastRNN(n_hidden=D, epochs=5, random_state=0).fit(X, labels)
    assert original.classes_.dtype == labels.dtype
    loaded = FastRNN.load(original.save(tmp_path / "m.npz"))
    assert_same_model(loaded, original)
    assert_same_predictions(loaded, original, X, labels)
    assert loaded.predict(X).dtype == labels.dtype
    # and per step
    per_step = np.stack([np.roll(labels, t) for t in range(6)], axis=1)
    original = FastRNN(n_hidden=D, epochs=2, random_state=0).fit(X, per_step)
    loaded = FastRNN.load(original.save(tmp_path / "s.npz"))
    assert_same_model(loaded, original)
    assert_same_predictions(loaded, original, X, per_step)


def test_round_trip_keeps_the_vocabulary(text_model, tmp_path):
    path = tmp_path / "text.npz"
    text_model.save(path)
    loaded = FastRNN.load(path)
    assert_same_model(loaded, text_model)
    assert loaded.vocab_.chars == text_model.vocab_.chars
    assert loaded.input_kind_ == "ids"
    assert np.array_equal(loaded.classes_, np.arange(len(text_model.vocab_)))
    assert loaded.sample_text(80, start="the ", random_state=4) == \
        text_model.sample_text(80, start="the ", random_state=4)


def test_round_trip_of_a_vocabulary_of_any_characters(tmp_path):
    text = "\x00\t\n\"\\{}[]'é日本\U0001F600\u2028 zZ"
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    original = FastRNN(n_hidden=3, epochs=2, random_state=0).fit(ids[:-1], ids[1:],
                                                                  vocab=vocab)
    loaded = FastRNN.load(original.save(tmp_path / "v.npz"))
    assert loaded.vocab_.chars == vocab.chars
    assert loaded.sample_text(30, start="日", random_state=0) == \
        original.sample_text(30, start="日", random_state=0)


def test_numpy_backend_model(tmp_path):
    X, y = dense_data()
    original = FastRNN(n_hidden=D, backend="numpy", epochs=3, random_state=0).fit(X, y)
    original.save(tmp_path / "np.npz")
    loaded = FastRNN.load(tmp_path / "np.npz")
    assert loaded.backend == "numpy"
    assert_same_model(loaded, original)
    assert np.array_equal(loaded.predict_proba(X), original.predict_proba(X))


def test_early_stopping_model(tmp_path):
    X, y = dense_data(B=6)
    original = FastRNN(n_hidden=D, epochs=30, early_stopping=True, n_iter_no_change=2,
                       validation_fraction=0.3, tol=0.5, random_state=0).fit(X, y)
    loaded = FastRNN.load(original.save(tmp_path / "es.npz"))
    assert_same_model(loaded, original)
    assert (loaded.early_stopping, loaded.validation_fraction, loaded.n_iter_no_change,
            loaded.tol) == (True, 0.3, 2, 0.5)


def test_a_generator_random_state_is_saved_as_none(tmp_path):
    X, y = dense_data()
    original = FastRNN(n_hidden=D, epochs=2, random_state=np.random.default_rng(0)).fit(X, y)
    original.save(tmp_path / "g.npz")
    loaded = FastRNN.load(tmp_path / "g.npz")
    assert loaded.random_state is None
    assert np.array_equal(loaded.predict_proba(X), original.predict_proba(X))


def test_numpy_scalar_hyperparameters_are_saved_as_their_values(tmp_path):
    X, y = dense_data()
    original = FastRNN(n_hidden=np.int64(D), learning_rate=np.float32(0.1), shuffle=np.False_,
                       momentum=np.float16(0.5), epochs=np.uint8(2), random_state=np.int32(4),
                       betas=(np.float32(0.8), 0.99), dropout=np.float64(0.0)).fit(X, y)
    loaded = FastRNN.load(original.save(tmp_path / "n.npz"))
    params = loaded.get_params()
    assert params["n_hidden"] == D and type(params["n_hidden"]) is int
    assert params["learning_rate"] == float(np.float32(0.1))
    assert params["shuffle"] is False and params["momentum"] == 0.5
    assert params["epochs"] == 2 and params["random_state"] == 4
    assert params["betas"] == (float(np.float32(0.8)), 0.99)
    assert np.array_equal(loaded.predict(X), original.predict(X))


def test_the_file_needs_no_pickle(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    contents = arrays_of(path)
    assert set(contents) == set(KEYS) | {"loss_curve"}
    for key in KEYS:
        assert np.array_equal(contents[key], model.params_[key])
    assert np.array_equal(contents["loss_curve"], model.loss_curve_)
    meta = meta_of(path)
    assert meta["format"] == "fastrnn-model" and meta["version"] == 2
    assert meta["estimator"] == "FastRNN"
    assert meta["hyperparameters"]["n_hidden"] == D
    assert meta["architecture"] == {"cell": "rnn", "n_inputs": K, "n_hidden": D,
                                    "n_outputs": M, "n_layers": 1, "bidirectional": False}
    assert meta["loss_curve_length"] == len(model.loss_curve_)


def test_loaded_model_continues_training(model, tmp_path):
    """With warm_start a loaded model continues from its parameters (the
    optimizer state is not saved, so it starts afresh): one full-batch sgd
    epoch is θ − lr ∇L(θ)."""
    X, y = dense_data()
    model.save(tmp_path / "m.npz")
    loaded = FastRNN.load(tmp_path / "m.npz")
    start = {key: a.copy() for key, a in loaded.params_.items()}
    loaded.set_params(warm_start=True, optimizer="sgd", learning_rate=0.05, epochs=1,
                      batch_size=None, bptt=None, clip=None)
    loaded.fit(X, y)
    grads = fastrnn.loss_and_grad(start, X, y)[1]
    for key in KEYS:
        np.testing.assert_allclose(loaded.params_[key], start[key] - 0.05 * grads[key],
                                   rtol=1e-12, atol=1e-15)
    assert len(loaded.loss_curve_) == len(model.loss_curve_) + 1
    # and refuses another network, as a fitted one does
    loaded.set_params(n_hidden=D + 1)
    with pytest.raises(ValueError, match="^warm_start"):
        loaded.fit(X, y)


@pytest.mark.parametrize("change", [dict(n_hidden=D + 3), dict(n_layers=2),
                                    dict(bidirectional=True), dict(cell="lstm"),
                                    dict(backend="torch"), dict(epochs=0),
                                    dict(output="sideways")],
                         ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_save_never_writes_a_file_that_load_refuses(change, tmp_path):
    """Hyperparameters changed with set_params after fit (for the next fit):
    save either refuses them up front, naming them, or writes a file that
    loads, predicting as the model does."""
    X, y = dense_data()
    original = FastRNN(n_hidden=D, epochs=2, random_state=0).fit(X, y)
    original.set_params(**change)
    path = tmp_path / "m.npz"
    (name, value), = change.items()
    try:
        original.save(path)
    except (ValueError, TypeError) as exc:
        assert str(exc).startswith(name), exc
        assert not path.exists()
        return
    loaded = FastRNN.load(path)
    assert getattr(loaded, name) == value
    assert np.array_equal(loaded.predict_proba(X), original.predict_proba(X))


def test_pickle(model, text_model):
    X, _ = dense_data(seed=2)
    clone = pickle.loads(pickle.dumps(model))
    assert_same_model(clone, model)
    assert np.array_equal(clone.predict_proba(X), model.predict_proba(X))
    text_clone = pickle.loads(pickle.dumps(text_model))
    assert text_clone.sample_text(50, start="a", random_state=1) == \
        text_model.sample_text(50, start="a", random_state=1)
    unfitted = pickle.loads(pickle.dumps(FastRNN(n_hidden=3)))
    assert unfitted.get_params() == FastRNN(n_hidden=3).get_params()
    with pytest.raises(NotFittedError):
        unfitted.predict(X)
    regressor = FastRNNRegressor(n_hidden=3, epochs=2, cell="gru").fit(X, X[..., 0])
    assert np.array_equal(pickle.loads(pickle.dumps(regressor)).predict(X), regressor.predict(X))


# ----------------------------------------------------- files of fastrnn 0.1
@pytest.fixture(scope="module")
def v1_expected():
    with np.load(DATA / "v1_expected.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def test_v1_files_of_fastrnn_0_1_still_load(v1_expected):
    chars = FastRNN.load(DATA / "v1_rnn_chars.npz")
    lstm = FastRNN.load(DATA / "v1_lstm_dense.npz")
    for loaded, name in ((chars, "v1_rnn_chars.npz"), (lstm, "v1_lstm_dense.npz")):
        stored = arrays_of(DATA / name)
        assert loaded.params_.keys() == set(KEYS)
        for key in KEYS:                                     # the file's arrays, exactly
            assert np.array_equal(loaded.params_[key], stored[key])
        assert loaded.loss_curve_ == stored["loss_curve"].tolist()
        meta = meta_of(DATA / name)
        assert meta["version"] == 1
        for key, value in meta["hyperparameters"].items():
            assert loaded.get_params()[key] == (tuple(value) if key == "betas" else value)
        # what 0.1 did not have takes its default
        assert (loaded.n_layers, loaded.bidirectional, loaded.dropout, loaded.output) == \
            (1, False, 0.0, "auto")
        assert loaded.output_ == "every_step"
        assert np.array_equal(loaded.classes_, np.arange(loaded.n_outputs_))
    assert chars.cell_ == "rnn" and chars.input_kind_ == "ids"
    assert chars.vocab_ == CharVocab(" ,.adefhilmnorstw") and chars.n_iter_ == 3
    assert not hasattr(chars, "n_features_in_")
    assert lstm.cell_ == "lstm" and lstm.input_kind_ == "dense" and lstm.n_features_in_ == 3
    assert lstm.vocab_ is None and lstm.n_iter_ == 4


def test_v1_files_predict_as_they_did(v1_expected):
    """The probabilities fastrnn 0.1 computed from these files (stored with
    them): the same classes, and probabilities equal to float64 round-off
    (the output layer now computes the softmax from the log-sum-exp, which
    may differ from 0.1's in the last place)."""
    chars = FastRNN.load(DATA / "v1_rnn_chars.npz")
    lstm = FastRNN.load(DATA / "v1_lstm_dense.npz")
    for loaded, X, expected in ((chars, v1_expected["ids"], v1_expected["chars_probs"]),
                                (lstm, v1_expected["X"], v1_expected["lstm_probs"])):
        probs = loaded.predict_proba(X)
        assert probs.shape == expected.shape
        assert np.max(np.abs(probs - expected)) <= 4 * np.finfo(float).eps
        assert np.array_equal(loaded.predict(X), expected.argmax(axis=-1))
    assert chars.sample_text(20, start="hel", random_state=3) == "hellaaf,rdnnhelolo f"


def test_v1_model_resaved_is_a_v2_file_that_loads_the_same(tmp_path, v1_expected):
    for name in ("v1_rnn_chars.npz", "v1_lstm_dense.npz"):
        old = FastRNN.load(DATA / name)
        path = old.save(tmp_path / name)
        assert meta_of(path)["version"] == 2
        new = FastRNN.load(path)
        assert_same_model(new, old)
    new = FastRNN.load(tmp_path / "v1_rnn_chars.npz")
    assert new.sample_text(20, start="hel", random_state=3) == "hellaaf,rdnnhelolo f"


def test_v1_files_are_not_regressors():
    with pytest.raises(ValueError, match=r"v1_lstm_dense\.npz.*FastRNN.*not a FastRNNRegressor"):
        FastRNNRegressor.load(DATA / "v1_lstm_dense.npz")


# ------------------------------------------------------------ bad files
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        FastRNN.load(tmp_path / "nowhere.npz")


def assert_refused(path, cls=FastRNN, match=None):
    with pytest.raises(ValueError) as info:
        cls.load(path)
    assert isinstance(info.value, ModelFileError)
    assert str(info.value).startswith(f"{path}: "), info.value
    if match is not None:
        assert match in str(info.value), info.value
    return info.value


def test_truncated_file(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    data = path.read_bytes()
    for size in (0, 10, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{size}.npz"
        bad.write_bytes(data[:size])
        assert_refused(bad)


def test_random_bytes_and_text(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    assert_refused(path)
    text = tmp_path / "text.npz"
    text.write_text("W_x,W_h\n1,2\n")
    assert_refused(text)


def test_a_directory(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    assert_refused(tmp_path / "dir.npz")


def test_other_npz_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3), b=np.eye(2))
    assert_refused(path)
    single = tmp_path / "single.npy"
    np.save(single, np.arange(4))
    assert_refused(single)
    params = fastrnn.init_params(K, D, M, random_state=0)
    nometa = tmp_path / "nometa.npz"
    np.savez(nometa, **params)
    assert_refused(nometa)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"format": "fastrnn-model"}], dtype=object), **params)
    assert_refused(pickled)


@pytest.mark.parametrize("saved,loading", [(FastRNNRegressor, FastRNN),
                                           (FastRNN, FastRNNRegressor)])
def test_a_model_loads_only_as_its_own_class(saved, loading, tmp_path):
    X, y = dense_data()
    model = saved(n_hidden=D, epochs=2, random_state=0).fit(X, y[:, 0] * 1)
    path = model.save(tmp_path / "m.npz")
    assert_refused(path, loading, match=f"a {saved.__name__} model, not a {loading.__name__}")
    assert_same_model(saved.load(path), model)


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    """(meta, arrays) of a genuine saved model with a vocabulary."""
    text = "hello world"
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    original = FastRNN(n_hidden=3, epochs=2, random_state=0).fit(ids[:-1], ids[1:],
                                                                  vocab=vocab)
    path = original.save(tmp_path_factory.mktemp("genuine") / "g.npz")
    return meta_of(path), arrays_of(path)


def changed(meta, **updates):
    """A deep copy of meta with keys set (a dotted key reaches into a dict;
    the value KeyError deletes)."""
    meta = copy.deepcopy(meta)
    for dotted, value in updates.items():
        *parents, key = dotted.split(".")
        target = meta
        for parent in parents:
            target = target[parent]
        if value is KeyError:
            del target[key]
        else:
            target[key] = value
    return meta


def u(**updates):
    """Keyword arguments for changed(), with '__' for the dots."""
    return {key.replace("__", "."): value for key, value in updates.items()}


# (name, meta updates, array updates, a fragment of the message)
INCONSISTENT = [
    ("vocab-longer-than-k", u(vocab=" dehlorwx"), {}, "vocabulary"),
    ("vocab-shorter-than-k", u(vocab=" dehlor"), {}, "vocabulary"),
    ("vocab-unsorted", u(vocab="d ehlorw"), {}, "vocabulary"),
    ("vocab-repeated-character", u(vocab=" dehlorr"), {}, "vocabulary"),
    ("vocab-not-a-string", u(vocab=["a"]), {}, None),
    ("vocab-empty", u(vocab=""), {}, None),
    ("backend-torch", u(hyperparameters__backend="torch"), {}, "backend"),
    ("epochs-0", u(hyperparameters__epochs=0), {}, "epochs"),
    ("n_layers-0", u(hyperparameters__n_layers=0), {}, "n_layers"),
    ("dropout-1", u(hyperparameters__dropout=1.0), {}, "dropout"),
    ("betas-triple", u(hyperparameters__betas=[0.9, 0.9, 0.9]), {}, "betas"),
    ("random_state-negative", u(hyperparameters__random_state=-1), {}, "random_state"),
    ("unknown-hyperparameter", u(hyperparameters__bogus=1), {}, "bogus"),
    ("hyperparameters-a-list", u(hyperparameters=[1]), {}, None),
    ("cell-disagrees", u(hyperparameters__cell="lstm"), {}, "cell"),
    ("n_hidden-disagrees", u(hyperparameters__n_hidden=5), {}, "n_hidden"),
    ("n_layers-disagrees", u(hyperparameters__n_layers=2), {}, "n_layers"),
    ("bidirectional-disagrees", u(hyperparameters__bidirectional=True), {}, "bidirectional"),
    ("n_inputs-disagrees", u(hyperparameters__n_inputs=9), {}, "n_inputs"),
    ("n_outputs-disagrees", u(hyperparameters__n_outputs=2), {}, "n_outputs"),
    ("architecture-k-disagrees-with-W_x", u(architecture__n_inputs=9), {}, None),
    ("architecture-d-disagrees-with-W_h", u(architecture__n_hidden=4), {}, None),
    ("architecture-missing", u(architecture=KeyError), {}, None),
    ("architecture-not-an-object", u(architecture=[1]), {}, "architecture"),
    ("architecture-bidirectional-an-int", u(architecture__bidirectional=1), {},
     "bidirectional"),
    ("architecture-cell-unknown", u(architecture__cell="transformer"), {}, "cell"),
    ("classes-unsorted", u(classes__values=[1, 0, 2, 3, 4, 5, 6, 7]), {}, "classes"),
    ("classes-too-few", u(classes__values=[0, 1, 2]), {}, "classes"),
    ("classes-repeated", u(classes__values=[0, 0, 2, 3, 4, 5, 6, 7]), {}, "classes"),
    ("classes-object-dtype", u(classes__dtype="|O"), {}, "classes"),
    ("classes-a-list", u(classes=[1]), {}, None),
    # a dtype that would allocate gigabytes from a few bytes of JSON, values it
    # cannot hold, values of another kind
    ("classes-padded-to-gigabytes", u(classes__dtype="<U500000000"), {}, "classes"),
    ("classes-int-overflows", u(classes__values=[0, 1, 2, 3, 4, 5, 6, 2**70]), {}, "classes"),
    ("classes-int-wraps", u(classes__dtype="<i1", classes__values=[0, 1, 2, 3, 4, 5, 6, 300]),
     {}, "classes"),
    ("classes-float-as-int", u(classes__values=[0, 1, 2, 3, 4, 5, 6, 7.5]), {}, "classes"),
    ("classes-strings-as-int", u(classes__values=list("abcdefgh")), {}, "classes"),
    ("classes-nested", u(classes__values=[[0]] * 8), {}, "classes"),
    ("classes-float32-overflows", u(classes__dtype="<f4", classes__values=[
        0, 1, 2, 3, 4, 5, 6, 1e300]), {}, "classes"),
    ("n_iter-beyond-the-loss-curve", u(n_iter=5), {}, "n_iter"),
    ("n_iter-negative", u(n_iter=-1), {}, "n_iter"),
    ("n_iter-a-float", u(n_iter=1.0), {}, "n_iter"),
    ("n_iter-missing", u(n_iter=KeyError), {}, None),
    ("input_kind-unknown", u(input_kind="pixels"), {}, "input_kind"),
    ("input_kind-missing", u(input_kind=KeyError), {}, "input_kind"),
    ("hyperparameters-missing", u(hyperparameters=KeyError), {}, "hyperparameters"),
    ("classes-values-missing", u(classes__values=KeyError), {}, "values"),
    ("classes-dtype-unknown", u(classes__dtype="<x9"), {}, None),
    ("classes-a-string", u(classes="0123"), {}, None),
    ("output-auto", u(output="auto"), {}, "output"),
    ("version-3", u(version=3), {}, "version"),
    ("estimator-unknown", u(estimator="Pipeline"), {}, "Pipeline"),
    ("loss_curve_length-disagrees", u(loss_curve_length=3), {}, "loss_curve"),
    ("W_h-shape", {}, {"W_h": np.zeros((4, 4))}, "W_h"),
    ("W_x-wider", {}, {"W_x": np.zeros((3, 9))}, "W_x"),
    ("b_y-longer", {}, {"b_y": np.zeros(9)}, "b_y"),
    ("W_y-missing", {}, {"W_y": KeyError}, "W_y"),
    ("W_x_l1-extra", {}, {"W_x_l1": np.zeros((3, 3))}, "W_x_l1"),
    ("b_h-nan", {}, {"b_h": np.full(3, np.nan)}, "b_h"),
    ("W_h-int64", {}, {"W_h": np.zeros((3, 3), dtype=np.int64)}, "W_h"),
    ("loss_curve-missing", {}, {"loss_curve": KeyError}, "loss_curve"),
]


@pytest.mark.parametrize("name,meta_updates,array_updates,fragment", INCONSISTENT,
                         ids=[case[0] for case in INCONSISTENT])
def test_inconsistent_files_are_refused(genuine, tmp_path, name, meta_updates, array_updates,
                                        fragment):
    """Files crafted with the writer itself: a model of the right format whose
    parts do not agree (sizes with each other and with the vocabulary,
    hyperparameters that the constructor's checks refuse)."""
    meta, arrays = genuine
    write_model(tmp_path / "good.npz", meta, arrays)
    FastRNN.load(tmp_path / "good.npz")                      # the untouched file loads
    arrays = dict(arrays)
    for key, value in array_updates.items():
        if value is KeyError:
            del arrays[key]
        else:
            arrays[key] = value
    path = write_model(tmp_path / f"{name}.npz", changed(meta, **meta_updates), arrays)
    assert_refused(path, match=fragment)


def test_two_members_of_the_same_name_are_refused(genuine, tmp_path):
    """Of two W_x.npy members the last silently won."""
    meta, arrays = genuine
    path = tmp_path / "twice.npz"
    write_model(path, meta, arrays)
    other = np.random.default_rng(0).normal(size=arrays["W_x"].shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)        # zipfile: "Duplicate name"
        with zipfile.ZipFile(path, "a") as archive:
            with archive.open("W_x.npy", "w") as member:
                npy_format.write_array(member, other, allow_pickle=False)
    assert_refused(path, match="W_x.npy")


def peak_of_load(path):
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        try:
            FastRNN.load(path)
        except ValueError as exc:
            outcome = exc
        else:
            outcome = None
        return outcome, tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("updates", [
    u(architecture__n_hidden=2**24), u(architecture__n_inputs=2**24),
    u(architecture__n_hidden=20_000, architecture__n_inputs=20_000,
      architecture__n_outputs=20_000, hyperparameters__n_hidden=20_000),
    u(architecture__n_layers=64, architecture__n_hidden=4000, hyperparameters__n_hidden=4000,
      hyperparameters__n_layers=64, architecture__bidirectional=True),
    u(loss_curve_length=10**8), u(n_iter=10**9),
    u(architecture__n_hidden=2**70), u(loss_curve_length=2**70),
], ids=["d-2**24", "k-2**24", "d-k-m-20000", "64-layers-of-4000", "loss-curve-10**8",
        "n_iter-10**9", "d-2**70", "loss-curve-2**70"])
def test_a_huge_architecture_is_refused_before_any_big_allocation(genuine, tmp_path,
                                                                  updates):
    """Meta asking for gigabytes, in a file of a few kilobytes: refused with
    the documented ValueError, having allocated next to nothing."""
    meta, arrays = genuine
    path = write_model(tmp_path / "huge.npz", changed(meta, **updates), arrays)
    FastRNN.load(write_model(tmp_path / "warm.npz", meta, arrays))        # imports done
    outcome, peak = peak_of_load(path)
    assert isinstance(outcome, ModelFileError), outcome
    assert str(outcome).startswith(f"{path}: ")
    assert peak < 2**21, peak


def test_flipping_any_byte_gives_the_same_model_or_the_documented_error(tmp_path):
    """Every byte of a small genuine model file flipped (all 8 bits), loaded
    by the estimator: each load gives the identical model or a ModelFileError
    naming the file (never another exception), in bounded memory."""
    X, y = dense_data(B=3, T=4)
    original = FastRNN(n_hidden=2, epochs=2, random_state=0).fit(X[..., :2], y % 2)
    path = original.save(tmp_path / "small.npz")
    good = Path(path).read_bytes()
    assert 3000 < len(good) < 8000
    FastRNN.load(path)
    outcomes = {"same": 0, "refused": 0}
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        with open(path, "r+b") as file:                     # in place: no truncation
            for offset in range(len(good)):
                file.seek(offset)
                file.write(bytes([good[offset] ^ 0xFF]))
                file.flush()
                try:
                    loaded = FastRNN.load(path)
                except ModelFileError as exc:
                    assert str(exc).startswith(f"{path}: "), exc
                    outcomes["refused"] += 1
                else:
                    assert_same_model(loaded, original)
                    outcomes["same"] += 1
                file.seek(offset)
                file.write(good[offset:offset + 1])
                file.flush()
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert outcomes["refused"] > 0.8 * len(good)             # nearly every byte matters
    assert outcomes["same"] > 0                              # dates, attributes: harmless
    assert peak < 8 * 2**20, peak
    assert Path(path).read_bytes() == good


# ------------------------------------------------------------------ saving
def test_saving_an_unfitted_model_is_not_fitted_error(tmp_path):
    for cls in (FastRNN, FastRNNRegressor):
        with pytest.raises(NotFittedError):
            cls().save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_save_into_a_missing_directory_fails_cleanly(model, tmp_path):
    with pytest.raises(FileNotFoundError):
        model.save(tmp_path / "missing" / "model.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and umask")
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_save_respects_the_umask(model, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = model.save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert_same_model(FastRNN.load(path), model)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_save_through_a_symlink_replaces_its_target_and_keeps_the_link(model, text_model,
                                                                       tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    target = real / "model.npz"
    text_model.save(target)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    written = model.save(link)
    assert os.path.realpath(written) == os.path.realpath(target)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert_same_model(FastRNN.load(link), model)
    assert_same_model(FastRNN.load(target), model)
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "real"]
    assert os.listdir(real) == ["model.npz"]
