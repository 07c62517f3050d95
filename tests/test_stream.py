"""Streaming inference with ``model.stream()``: a Stream's steps give what
predict_proba (or the regressor's predict) gives on the whole sequence, bit
for bit, in every input form; bad inputs are refused as predict_proba
refuses them, and leave the stream as it was."""
import numpy as np
import pytest

from fastrnn import FastRNN, FastRNNRegressor, NotFittedError, Stream

# Not multiples of 8, and above it: the products' blocks of eight and their
# remainders both run (k, 4d, 3d, m, d are their lengths).
K, D, M, B, T = 11, 10, 9, 3, 6


def data(ids, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, K, (B, T)) if ids else rng.normal(size=(B, T, K)).astype(dtype)
    return X, rng.integers(0, M, (B, T))


def fitted(X, y, cls=FastRNN, **kwargs):
    settings = dict(n_hidden=D, epochs=3, random_state=0)
    if X.ndim == 2:
        settings["n_inputs"] = K
    settings.update(kwargs)
    return cls(**settings).fit(X, y)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_steps_equal_one_call(cell, n_layers, ids, dtype):
    X, y = data(ids, dtype)
    model = fitted(X, y, cell=cell, n_layers=n_layers, dtype=dtype)
    whole, last = model.predict_proba(X[1], return_state=True)
    stream = model.stream()
    assert isinstance(stream, Stream)
    steps = [stream.step(x) for x in X[1]]
    assert all(p.shape == whole.shape[1:] and p.dtype == np.dtype(dtype) for p in steps)
    assert np.array_equal(np.stack(steps), whole)
    # and one predict_proba call per step: the weights read as stored, not transposed
    state, by_calls = None, []
    for t in range(T):
        p, state = model.predict_proba(X[1, t:t + 1], h0=state, return_state=True)
        by_calls.append(p[0])
    assert np.array_equal(np.stack(steps), np.stack(by_calls))
    for got, expected in zip(stream.state if cell == "lstm" else (stream.state,),
                             last if cell == "lstm" else (last,)):
        assert np.array_equal(got, expected)
    # B streams in lock-step: step t takes X[:, t]
    whole, last = model.predict_proba(X, return_state=True)
    stream = model.stream(n_streams=B)
    steps = [stream.step(X[:, t]) for t in range(T)]
    assert all(p.shape == (B,) + whole.shape[2:] for p in steps)
    assert np.array_equal(np.stack(steps, axis=1), whole)
    for got, expected in zip(stream.state if cell == "lstm" else (stream.state,),
                             last if cell == "lstm" else (last,)):
        assert np.array_equal(got, expected)


def test_a_given_state_reset_and_a_sequence_classifier():
    X, y = data(ids=False)
    model = fitted(X, y, cell="lstm")
    rng = np.random.default_rng(5)
    h0 = (rng.normal(size=D), rng.normal(size=D))
    whole = model.predict_proba(X[0], h0=h0)
    assert not np.allclose(whole, model.predict_proba(X[0]))      # the state matters
    stream = model.stream(h0=h0)
    assert np.array_equal(np.stack([stream.step(x) for x in X[0]]), whole)
    stream.reset(h0)
    assert np.array_equal(np.stack([stream.step(x) for x in X[0]]), whole)
    stream.reset()
    assert np.array_equal(np.stack([stream.step(x) for x in X[0]]), model.predict_proba(X[0]))
    # one class per sequence: after the last step, the sequence's class probabilities
    per_sequence = fitted(X, y[:, 0])
    stream = per_sequence.stream()
    for x in X[2]:
        p = stream.step(x)
    assert np.array_equal(p, per_sequence.predict_proba(X[2]))


@pytest.mark.parametrize("m", [1, 2])
def test_regressor(m):
    X, _ = data(ids=False)
    y = np.random.default_rng(3).normal(size=(B, T, m)) * 0.3
    model = fitted(X, y[..., 0] if m == 1 else y, cls=FastRNNRegressor, cell="gru")
    whole = model.predict(X[1])
    stream = model.stream()
    steps = [stream.step(x) for x in X[1]]
    assert np.array_equal(np.stack(steps), whole)
    if m == 1:                                   # one number per step, as predict gives
        assert whole.shape == (T,) and np.ndim(steps[0]) == 0
    stream = model.stream(n_streams=B)
    assert np.array_equal(np.stack([stream.step(X[:, t]) for t in range(T)], axis=1),
                          model.predict(X))


def test_every_input_form_gives_the_same_step():
    X, y = data(ids=True)
    model = fitted(X, y)

    def first_step(x, **kwargs):
        return model.stream(**kwargs).step(x)

    expected = model.predict_proba(X[0, :1])[0]
    x = int(X[0, 0])
    for form in (x, np.int64(x), np.int32(x), np.uint8(x), np.array(x), np.array([x])[0]):
        assert np.array_equal(first_step(form), expected)
    one_hot = np.eye(K)[x]
    for form in (one_hot, list(one_hot), one_hot.astype(np.float32), np.eye(K)[:, x]):
        assert np.array_equal(first_step(form), expected)
    expected = model.predict_proba(X[:, :1])[:, 0]
    for form in (X[:, 0], list(X[:, 0]), X[:, 0].astype(np.int16), np.eye(K)[X[:, 0]]):
        assert np.array_equal(first_step(form, n_streams=B), expected)


def test_read_only_strided_and_unaligned_inputs_are_copied_not_compiled_for():
    """Such arrays take the validator's way (a copy), not the fast one, which
    would hand them to the kernel and compile it again for their type."""
    from fastrnn.kernels import network
    X, y = data(ids=False)
    model = fitted(X, y)
    expected = model.stream().step(X[0, 0])
    ids_X, ids_y = data(ids=True)
    ids_model = fitted(ids_X, ids_y)
    expected_ids = ids_model.stream(n_streams=B).step(ids_X[:, 0])
    jit = hasattr(network.forward, "signatures")
    compiled = len(network.forward.signatures) if jit else None
    read_only = X[0, 0].copy()
    read_only.flags.writeable = False
    raw = np.zeros(K * 8 + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, np.float64, K, offset=1)
    unaligned[...] = X[0, 0]
    strided = np.repeat(X[0, 0], 2)[::2]
    for x in (read_only, unaligned, strided):
        assert np.array_equal(model.stream().step(x), expected)
    column = ids_X[:, 0]                                   # strided ids
    assert not column.flags.c_contiguous
    assert np.array_equal(ids_model.stream(n_streams=B).step(column), expected_ids)
    if jit:
        assert len(network.forward.signatures) == compiled


def test_bad_inputs_are_refused_and_change_nothing():
    X, y = data(ids=False)
    model = fitted(X, y, cell="lstm")
    stream = model.stream()
    first = stream.step(X[0, 0])
    state = stream.state
    bad = X[0, 1].copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match=r"^x: expected finite numbers"):
        stream.step(bad)
    with pytest.raises(ValueError, match=r"^x: expected a token id or a vector \(k,\) for one "
                                         r"step, with k = 11; got shape \(2, 11\)"):
        stream.step(X[0, :2])
    with pytest.raises(ValueError, match=r"^x: token ids must lie in \[0, 10\], found 11"):
        stream.step(K)
    with pytest.raises(ValueError, match=r"^x: token ids must lie in \[0, 10\], found -1"):
        stream.step(np.int64(-1))
    with pytest.raises(TypeError, match="^x: expected"):
        stream.step(np.timedelta64(3))
    with pytest.raises(TypeError, match="^x: expected an array of numbers, got a string"):
        stream.step("a")
    with pytest.raises(TypeError, match="^x: expected float or integer numbers, got booleans"):
        stream.step(True)
    assert np.array_equal(np.isnan(bad), np.eye(K, dtype=bool)[2])     # the caller's array
    for got, expected in zip(stream.state, state):                      # as it was
        assert np.array_equal(got, expected)
    assert np.array_equal(stream.step(X[0, 1]), model.predict_proba(X[0, :2])[1])
    assert not np.array_equal(first, stream.step(X[0, 1]))
    streams = model.stream(n_streams=B)
    first = streams.step(X[:, 0])
    state = streams.state
    with pytest.raises(ValueError, match=r"^x: expected 3 token ids \(3,\) or 3 vectors "
                                         r"\(3, k\) for one step, with k = 11; got shape \(11,\)"):
        streams.step(X[0, 0])
    bad = X[:, 1].copy()
    bad[1, 4] = np.inf
    with pytest.raises(ValueError, match=r"^x: expected finite numbers"):
        streams.step(bad)
    for ids in (np.array([0, K, 1]), np.array([0, -1, 1])):
        with pytest.raises(ValueError, match=r"^x: token ids must lie in \[0, 10\]"):
            streams.step(ids)
    for got, expected in zip(streams.state, state):
        assert np.array_equal(got, expected)
    assert np.array_equal(streams.step(X[:, 1]), model.predict_proba(X[:, :2])[:, 1])
    assert not np.array_equal(first, streams.step(X[:, 1]))


def test_what_a_stream_returns_is_the_callers_to_keep():
    X, y = data(ids=False)
    model = fitted(X, y, cell="lstm")
    stream = model.stream()
    p = stream.step(X[0, 0])
    kept = p.copy()
    h, c = stream.state
    h[:], c[:] = 7.0, 7.0
    assert np.array_equal(stream.step(X[0, 1]), model.predict_proba(X[0, :2])[1])
    assert np.array_equal(p, kept)                       # not overwritten by the next step
    p[:] = 7.0
    assert np.array_equal(stream.step(X[0, 2]), model.predict_proba(X[0, :3])[2])
    x = X[0, 2].copy()
    stream.step(x)
    assert np.array_equal(x, X[0, 2])


def test_made_only_from_a_fitted_one_directional_model():
    X, y = data(ids=False)
    with pytest.raises(NotFittedError):
        FastRNN().stream()
    with pytest.raises(ValueError, match="^stream: a bidirectional model"):
        fitted(X, y, bidirectional=True).stream()
    model = fitted(X, y)
    for n_streams in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="^n_streams: expected None"):
            model.stream(n_streams=n_streams)
    with pytest.raises(ValueError, match="^h0: expected shape"):
        model.stream(h0=np.zeros((2, D)))
    with pytest.raises(TypeError, match="^h0"):
        fitted(X, y, cell="lstm").stream(h0=np.zeros(D))        # an LSTM needs (h0, c0)


def test_the_reference_backend_streams_too():
    X, y = data(ids=False)
    model = fitted(X, y, cell="gru", backend="numpy")
    stream, state, by_calls = model.stream(), None, []
    for t in range(T):
        p, state = model.predict_proba(X[1, t:t + 1], h0=state, return_state=True)
        by_calls.append(p[0])
    steps = np.stack([stream.step(x) for x in X[1]])
    assert np.array_equal(steps, np.stack(by_calls))
    # NumPy's products of one row and of many may round differently
    np.testing.assert_allclose(steps, model.predict_proba(X[1]), rtol=1e-13, atol=0)


def test_overflow_inside_the_network_is_reported():
    """Refused as predict_proba refuses it (the parameters edited in place
    before the stream is made: it copies them then)."""
    X, y = data(ids=False)
    model = fitted(X, y)
    model.params_["W_x"][:] = 1e308                   # W_x x overflows
    with pytest.raises(FloatingPointError, match="^X: .*inside the network"):
        model.stream().step(np.ones(K))
    model = fitted(X, y)
    model.params_["b_y"][0] = np.inf                  # the outputs are not finite
    with pytest.raises(FloatingPointError, match="^X: the outputs overflowed"):
        model.stream().step(np.ones(K))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_stream_keeps_the_parameters_it_was_made_with(cell):
    X, y = data(ids=False)
    model = fitted(X, y, cell=cell, n_layers=2)
    expected = model.predict_proba(X[0])
    stream = model.stream()
    for key in model.params_:                         # every array, edited in place
        model.params_[key][...] = 0.5
    assert np.array_equal(np.stack([stream.step(x) for x in X[0]]), expected)
    assert not np.array_equal(model.predict_proba(X[0]), expected)
