"""FastRNN.save / FastRNN.load and pickling: a round trip keeps everything
that predicts, the file is a plain .npz (no pickle inside), and anything that
is not a model written by save is refused with a ValueError naming the file.
"""
import json
import os
import pickle

import numpy as np
import pytest

import fastrnn
from fastrnn import CharVocab, FastRNN, NotFittedError

KEYS = ("W_x", "W_h", "b_h", "W_y", "b_y")
K, D, M = 5, 4, 3


def dense_data(B=4, T=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, T, K)), rng.integers(0, M, size=(B, T))


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


def assert_same_model(loaded, original):
    assert type(loaded) is FastRNN
    assert loaded.get_params() == original.get_params()
    assert repr(loaded) == repr(original)
    for key in KEYS:
        assert np.array_equal(loaded.params_[key], original.params_[key])
        assert loaded.params_[key].dtype == np.float64
        assert loaded.params_[key].flags.c_contiguous
    assert loaded.loss_curve_ == original.loss_curve_
    assert all(type(v) is float for v in loaded.loss_curve_)
    assert loaded.n_iter_ == original.n_iter_
    assert (loaded.n_inputs_, loaded.n_outputs_) == (original.n_inputs_, original.n_outputs_)
    assert loaded.vocab_ == original.vocab_
    assert loaded.cell_ == original.cell_


def test_round_trip(model, tmp_path):
    path = tmp_path / "model.npz"
    assert model.save(path) == path
    loaded = FastRNN.load(path)
    assert_same_model(loaded, model)
    X, y = dense_data(seed=1)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.score(X, y) == model.score(X, y)
    assert loaded.loss(X, y) == model.loss(X, y)
    assert loaded.vocab_ is None
    # Nothing else was left in the directory (the save writes a temporary
    # file beside the target and renames it).
    assert os.listdir(tmp_path) == ["model.npz"]


def test_round_trip_with_a_str_path_and_overwrite(model, text_model, tmp_path):
    path = str(tmp_path / "m.npz")
    text_model.save(path)
    model.save(path)                                    # replaces the file
    assert_same_model(FastRNN.load(path), model)
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_round_trip_keeps_the_vocabulary(text_model, tmp_path):
    path = tmp_path / "text.npz"
    text_model.save(path)
    loaded = FastRNN.load(path)
    assert_same_model(loaded, text_model)
    assert loaded.vocab_.chars == text_model.vocab_.chars
    assert loaded.input_kind_ == "ids"
    assert loaded.sample_text(80, start="the ", random_state=4) == \
        text_model.sample_text(80, start="the ", random_state=4)


def test_numpy_backend_model(tmp_path):
    X, y = dense_data()
    original = FastRNN(n_hidden=D, backend="numpy", epochs=3, random_state=0).fit(X, y)
    original.save(tmp_path / "np.npz")
    loaded = FastRNN.load(tmp_path / "np.npz")
    assert loaded.backend == "numpy"
    assert_same_model(loaded, original)
    assert np.array_equal(loaded.predict_proba(X), original.predict_proba(X))


def test_a_generator_random_state_is_saved_as_none(tmp_path):
    X, y = dense_data()
    original = FastRNN(n_hidden=D, epochs=2, random_state=np.random.default_rng(0)).fit(X, y)
    original.save(tmp_path / "g.npz")
    loaded = FastRNN.load(tmp_path / "g.npz")
    assert loaded.random_state is None
    assert np.array_equal(loaded.predict_proba(X), original.predict_proba(X))


def test_the_file_needs_no_pickle(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:
        contents = {key: data[key] for key in data.files}
    assert set(KEYS) <= set(contents)
    for key in KEYS:
        assert np.array_equal(contents[key], model.params_[key])
    assert np.array_equal(contents["loss_curve"], model.loss_curve_)
    meta = json.loads(str(contents["meta"]))
    assert meta["format"] == "fastrnn-model"
    assert meta["hyperparameters"]["n_hidden"] == D


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


# ------------------------------------------------------------ bad files
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        FastRNN.load(tmp_path / "nowhere.npz")


def assert_refused(path):
    with pytest.raises(ValueError) as info:
        FastRNN.load(path)
    assert str(path) in str(info.value)


def test_truncated_file(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    data = path.read_bytes()
    for size in (0, 10, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{size}.npz"
        bad.write_bytes(data[:size])
        assert_refused(bad)


def test_random_bytes(tmp_path):
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
    # A single array saved with np.save (not an archive).
    single = tmp_path / "single.npy"
    np.save(single, np.arange(4))
    assert_refused(single)
    # An archive with the parameter names but no meta.
    params = fastrnn.init_params(K, D, M, random_state=0)
    nometa = tmp_path / "nometa.npz"
    np.savez(nometa, **params)
    assert_refused(nometa)
    # An archive whose meta needs pickle to read.
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"format": "fastrnn-model"}], dtype=object), **params)
    assert_refused(pickled)


def rewrite(source, target, change):
    with np.load(source, allow_pickle=False) as data:
        contents = {key: data[key] for key in data.files}
    change(contents)
    np.savez(target, **contents)


def change_meta(**updates):
    def change(contents):
        meta = json.loads(str(contents["meta"]))
        for key, value in updates.items():
            if value is KeyError:
                del meta[key]
            else:
                meta[key] = value
        contents["meta"] = np.array(json.dumps(meta))
    return change


TAMPERINGS = {
    "W_h-shape": lambda c: c.update(W_h=np.zeros((D + 1, D + 1))),
    "W_x-rows": lambda c: c.update(W_x=np.zeros((D + 1, K))),
    "b_y-length": lambda c: c.update(b_y=np.zeros(M + 1)),
    "W_y-1d": lambda c: c.update(W_y=np.zeros(M * D)),
    "W_x-wider-than-recorded": lambda c: c.update(W_x=np.zeros((D, K + 1))),
    "b_h-nan": lambda c: c.update(b_h=np.full(D, np.nan)),
    "W_h-string": lambda c: c.update(W_h=np.array([["a"] * D] * D)),
    "W_y-missing": lambda c: c.pop("W_y"),
    "loss_curve-missing": lambda c: c.pop("loss_curve"),
    "meta-not-json": lambda c: c.update(meta=np.array("{not json")),
    "meta-a-number": lambda c: c.update(meta=np.array(3.0)),
    "meta-wrong-format": change_meta(format="something-else"),
    "meta-future-version": change_meta(version=99),
    "meta-recorded-sizes": change_meta(n_inputs=K + 1),
    "meta-unknown-hyperparameter": change_meta(hyperparameters={"n_hidden": D, "bogus": 1}),
    "meta-no-cell": change_meta(cell=KeyError),
    "meta-no-input-kind": change_meta(input_kind=KeyError),
    "meta-no-vocab": change_meta(vocab=KeyError),
    "meta-no-n-iter": change_meta(n_iter=KeyError),
    "meta-empty-vocab": change_meta(vocab=""),
    "meta-vocab-a-number": change_meta(vocab=5),
    "loss_curve-strings": lambda c: c.update(loss_curve=np.array(["a", "b"])),
    "loss_curve-2d": lambda c: c.update(loss_curve=np.zeros((2, 2))),
    "meta-input-kind": change_meta(input_kind="pixels"),
    "meta-n-iter-negative": change_meta(n_iter=-1),
    "meta-n-iter-string": change_meta(n_iter="5"),
}


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_tampered_model_files(model, tmp_path, tampering):
    good = tmp_path / "good.npz"
    model.save(good)
    FastRNN.load(good)
    bad = tmp_path / f"{tampering}.npz"
    rewrite(good, bad, TAMPERINGS[tampering])
    assert_refused(bad)


def test_save_into_a_missing_directory_fails_cleanly(model, tmp_path):
    with pytest.raises(FileNotFoundError):
        model.save(tmp_path / "missing" / "model.npz")
    assert os.listdir(tmp_path) == []
