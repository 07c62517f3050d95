"""The training loop exists three times: ``fastrnn.kernels.train`` (whole
epochs in one compiled call), its NumPy twin ``fastrnn.reference.train``,
and ``fastrnn._train_threads`` (a Python step per update around the
kernels, run on threads; fit uses it when an update is big). docs/math.md,
section 10: identical, stable training (same seed, data, order and
options) ends with parameters that agree to ≤ 1e-9 normwise per array
after 100 epochs.

The grid below is driven by the registry (tests/_registry.py): every cell
× layers (1, 2, 3) × direction appears twice, the second time with dropout
0.3 between the layers when it has layers; the input forms (dense or ids;
one sequence, a batch, a ragged list), the heads (cross-entropy or squared
error, every step or last step), hard and soft targets, and weights per
sequence and per step rotate through it. It is not the full product of the
training options either: every optimizer, clip mode (with a clip small
enough to act), batch size (None, 1, and sizes that do not divide the five
sequences), bptt (None, 1, 3 and longer than every sequence; only with a
target at every step and one direction) and shuffle setting appears, each
time with the other options varied (test_grid_covers_every_option). Each
case also checks that its options reached the trainers: without the clip,
the dropout, the weights, the truncation or the shuffling the result
differs.

The learning rates are small enough that training is well conditioned. With
larger ones (sgd 0.1 on these data, rmsprop 0.01 with batches of 2) the loss
spikes and the trajectory amplifies round-off exponentially: in the NumPy
twin alone, changing one initial weight by 1 part in 1e15 moves the
parameters after 100 epochs by 3e-7 (that sgd) to 1e-3 (that rmsprop),
normwise, so no two float64 implementations could agree to 1e-9 there; the
bound presumes training that does not amplify its round-off. Measured with
the rates below: the largest twin difference over the grid is 5e-13 (with
rmsprop at 0.003 or adagrad at 0.03 some cases reach 1e-9 and 1e-11).
Some cases end on a plateau where the epoch loss drifts up by 1e-4 for
many epochs (truncated BPTT's gradient is not the loss's, and mini-batches
see changing parameters); fit's advisory warning about a rising loss is
ignored here (it has its own tests in test_learning.py).

The threaded trainer is forced on (its thresholds lowered to 0, so that
every update of more than one sequence runs in chunks) and compared with
the reference's own loop, never with itself; with 1, 2 or 3 threads its
results are identical to the bit.

Faults (docs/math.md, section 8): a non-finite loss, gradient or update is
provoked through fit for each backend and trainer, and through each
trainer's ``train_epochs`` directly. Where the network's weights are all
zero every hidden state is 0 and only b_y learns, so the whole trajectory,
where it fails and what is kept can be computed by hand (``simulate``):
the tests hold every trainer to it. On random networks the expected
parameters come from fits that stop before the fault.

The optimizers and the clipping are also checked against formulas written
out here (the torch.optim comparison is in test_optim_torch.py).
"""
import math
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import pytest

import fastrnn
from fastrnn import FastRNN, FastRNNRegressor, _parallel, _train_threads
from fastrnn import estimator as estimator_module
from fastrnn._cells import CELLS
from fastrnn._codes import (ADAGRAD, ADAM, CLIP_NONE, CLIP_NORM, CLIP_VALUE, GRAD_NOT_FINITE,
                            LOSS_NOT_FINITE, MOMENTUM, OK, OPTIMIZERS, RMSPROP, SGD,
                            SQUARED_ERROR, UPDATE_NOT_FINITE)
from fastrnn._layout import Architecture
from fastrnn.kernels import optim as kernel_optim
from fastrnn.kernels import train as kernel_train
from fastrnn.reference import optim as reference_optim
from fastrnn.reference import train as reference_train
from _metrics import normwise
from _registry import ARCHITECTURES, FORMS, HEADS, K, D, M, WEIGHTS, arch_id, head_id

pytestmark = pytest.mark.kernels

FIT_FORMS = tuple(form for form in FORMS if form != "h0")
S, T = 5, 6                          # a batch: 5 sequences of 6 steps
LENGTHS = (3, 8, 5, 1, 6)            # a ragged list
T_SINGLE = 8
T_MAX = max(LENGTHS + (T, T_SINGLE))
EPOCHS = 100
SEED = 7

# Stable learning rates (see the module docstring).
LEARNING_RATES = {"sgd": 0.02, "momentum": 0.003, "adagrad": 0.01, "rmsprop": 0.001,
                  "adam": 0.003}
CLIPS = ((None, "norm"), (0.1, "norm"), (0.02, "value"), (0.05, "norm"), (0.05, "value"))
BATCH_SIZES = (None, 1, 2, 3)
BPTTS = (None, 1, 3, 20)


class Case(NamedTuple):
    arch: tuple
    form: str
    head: tuple
    soft: bool                # distributions (cross-entropy) or m = M values (squared error)
    weights: object           # None, "sequence" or "step"
    dropout: float
    optimizer: str
    clip: object
    clip_mode: str
    batch_size: object
    bptt: object
    shuffle: bool


def case_id(case):
    return "-".join([arch_id(case.arch), case.form, head_id(case.head),
                     "soft" if case.soft else "hard", f"w{case.weights}",
                     f"p{case.dropout}", case.optimizer, f"clip{case.clip}{case.clip_mode[0]}",
                     f"b{case.batch_size}", f"bptt{case.bptt}",
                     "shuffle" if case.shuffle else "ordered"])


def _grid():
    """Two cases per architecture. The second has several sequences in
    mini-batches of more than one (so that the threaded trainer runs it
    too) and, when there are layers, dropout between them. The other
    options rotate at different periods."""
    cases, n, n_bptt = [], 0, 0
    for a, arch in enumerate(ARCHITECTURES):
        cell, layers, bidirectional = arch
        for j in range(2):
            head = HEADS[(a + 2 * j) % 4]
            form = FIT_FORMS[a % 6] if j == 0 else FIT_FORMS[2 + (a + a // 6) % 4]
            batch_size = BATCH_SIZES[(n // 5 + n) % 4]
            if j == 1 and batch_size == 1:
                batch_size = 2
            bptt = None
            if head[1] == "every_step" and not bidirectional:
                bptt = BPTTS[n_bptt % 4]
                n_bptt += 1
            clip, clip_mode = CLIPS[(n + n // 5) % 5]
            weights = WEIGHTS[(n // 2) % 3]
            if weights == "step" and head[1] == "last_step":
                weights = "sequence"
            # One sequence with one class label would be a single class.
            soft = (n // 3) % 2 == 1 or (form.startswith("single") and head == HEADS[1])
            cases.append(Case(arch, form, head, soft=soft, weights=weights,
                              dropout=0.3 if j == 1 and layers > 1 else 0.0,
                              optimizer=OPTIMIZERS[n % 5], clip=clip, clip_mode=clip_mode,
                              batch_size=batch_size, bptt=bptt, shuffle=n % 3 != 1))
            n += 1
    return cases


GRID = _grid()


# ------------------------------------------------------------------ the data
def make_data(case, seed=0):
    """(X, y, sample_weight) of a case: its input form, head and weights."""
    rng = np.random.default_rng([seed, FIT_FORMS.index(case.form), HEADS.index(case.head),
                                 int(case.soft), WEIGHTS.index(case.weights)])
    kind, inputs = case.form.split("_")
    lengths = {"single": [T_SINGLE], "batch": [T] * S, "list": list(LENGTHS)}[kind]
    loss, output = case.head

    def x_of(n):
        return rng.integers(0, K, n) if inputs == "ids" else rng.normal(0, 1, (n, K))

    def y_of(lead):
        if loss == "cross_entropy":
            return rng.dirichlet(np.ones(M), lead) if case.soft else rng.integers(0, M, lead)
        return rng.normal(0, 1, lead + ((M,) if case.soft else ()))

    def pack(parts):
        return parts if kind == "list" else parts[0] if kind == "single" else np.stack(parts)

    X = pack([x_of(n) for n in lengths])
    lead = () if kind == "single" else (len(lengths),)
    y = y_of(lead) if output == "last_step" else pack([y_of((n,)) for n in lengths])
    if case.weights == "sequence":
        w = rng.uniform(0.2, 2.0, lead)
    elif case.weights == "step":
        w = pack([rng.uniform(0.0, 2.0, n) for n in lengths])
    else:
        w = None
    return X, y, w


def n_sequences(case):
    return 1 if case.form.startswith("single") else S


def estimator(case, backend, **changes):
    cell, layers, bidirectional = case.arch
    settings = dict(n_hidden=D, cell=cell, n_layers=layers, bidirectional=bidirectional,
                    dropout=case.dropout, backend=backend, optimizer=case.optimizer,
                    learning_rate=LEARNING_RATES[case.optimizer], epochs=EPOCHS,
                    batch_size=case.batch_size, shuffle=case.shuffle, clip=case.clip,
                    clip_mode=case.clip_mode, bptt=case.bptt, random_state=SEED,
                    n_inputs=K, output=case.head[1])
    settings.update(changes)
    cls = FastRNN if case.head[0] == "cross_entropy" else FastRNNRegressor
    return cls(**settings)


def fit(case, X, y, w, backend, **changes):
    return estimator(case, backend, **changes).fit(X, y, sample_weight=w)


def effective_batch(case):
    n = n_sequences(case)
    return n if case.batch_size is None else min(case.batch_size, n)


def longest(case):
    return {"single": T_SINGLE, "batch": T, "list": max(LENGTHS)}[case.form.split("_")[0]]


def test_grid_covers_every_option():
    assert sorted(c.arch for c in GRID) == sorted(ARCHITECTURES * 2)
    for arch in ARCHITECTURES:
        cases = [c for c in GRID if c.arch == arch]
        assert {c.dropout for c in cases} == ({0.0, 0.3} if arch[1] > 1 else {0.0})
        assert {c.head[0] for c in cases} == {"cross_entropy", "squared_error"}
    for cell in CELLS:
        assert {c.head for c in GRID if c.arch[0] == cell} == set(HEADS)
        assert {c.form for c in GRID if c.arch[0] == cell} == set(FIT_FORMS)
    dropped = [c for c in GRID if c.dropout]
    assert {c.head for c in dropped} == set(HEADS) and {c.arch[2] for c in dropped} == {False, True}
    assert {c.arch[1] for c in dropped} == {2, 3}
    for loss in ("cross_entropy", "squared_error"):
        assert {c.soft for c in GRID if c.head[0] == loss} == {False, True}
    several = [c for c in GRID if n_sequences(c) > 1]
    assert any(c.weights == "sequence" for c in several)
    assert any(c.weights == "step" for c in several) and any(c.weights is None for c in GRID)
    assert all(c.head[1] == "every_step" for c in GRID if c.weights == "step")
    assert {c.optimizer for c in GRID} == set(OPTIMIZERS)
    assert {c.clip_mode for c in GRID if c.clip is not None} == {"norm", "value"}
    assert any(c.clip is None for c in GRID)
    assert {c.batch_size for c in several} == {None, 1, 2, 3}       # 2 and 3 do not divide 5
    assert all(c.head[1] == "every_step" and not c.arch[2] for c in GRID if c.bptt)
    for bptt in (1, 3):
        assert any(c.bptt == bptt and effective_batch(c) > 1 for c in GRID)
    assert any(c.bptt is not None and c.bptt > T_MAX for c in GRID)
    assert any(c.bptt is None and c.head[1] == "every_step" for c in GRID)
    assert any(c.shuffle and effective_batch(c) < n_sequences(c) for c in GRID)
    assert any(not c.shuffle and effective_batch(c) < n_sequences(c) for c in GRID)
    assert {c.arch for c in THREADED} == set(ARCHITECTURES)
    assert {c.arch for c in THREADED if c.dropout} == {a for a in ARCHITECTURES if a[1] > 1}


THREADED = [c for c in GRID if effective_batch(c) > 1]
# fit's advisory warning (see the module docstring); tested in test_learning.py.
RISING = pytest.mark.filterwarnings("ignore:.*the training loss has risen:RuntimeWarning")


# ---------------------------------------------------------------- trainers
@pytest.fixture
def spy(monkeypatch):
    """The calls of the threaded trainer."""
    calls = []
    threaded = _train_threads.train_epochs

    def train_epochs(*args, **kwargs):
        calls.append(args[10].shape[0])                # the epochs of the call
        return threaded(*args, **kwargs)
    monkeypatch.setattr(_train_threads, "train_epochs", train_epochs)
    return calls


def force_threads(monkeypatch, threads):
    """fit's threaded trainer for every update of more than one sequence,
    each cut into chunks (up to 4) run on ``threads`` threads."""
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_FIT_WORK", 0)
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_WORK", 0)
    monkeypatch.setenv("FASTRNN_NUM_THREADS", str(threads))


_reference_fits = {}


def reference_fit(case):
    """The numpy fit of a case, made once."""
    key = GRID.index(case)
    if key not in _reference_fits:
        X, y, w = make_data(case)
        _reference_fits[key] = fit(case, X, y, w, "numpy")
    return _reference_fits[key]


def assert_twins(fast, slow, tol=1e-9):
    assert fast.n_iter_ == slow.n_iter_ == EPOCHS
    assert fast.params_.keys() == slow.params_.keys()
    for key in slow.params_:
        assert fast.params_[key].shape == slow.params_[key].shape
        err = normwise(fast.params_[key], slow.params_[key])
        assert err <= tol, f"{key}: normwise twin difference {err:.2e}"
    assert len(fast.loss_curve_) == len(slow.loss_curve_) == EPOCHS
    np.testing.assert_allclose(fast.loss_curve_, slow.loss_curve_, rtol=1e-9, atol=0)


def difference(a, b):
    return max(normwise(a.params_[key], b.params_[key]) for key in b.params_)


def assert_identical(a, b):
    assert a.params_.keys() == b.params_.keys()
    for key in a.params_:
        assert np.array_equal(a.params_[key], b.params_[key]), key
    assert a.loss_curve_ == b.loss_curve_


# Far above the twins' round-off: an option that changes the result by
# this much would show if one trainer ignored it.
ACTS = 1e-6


@RISING
@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_compiled_trainer_agrees_with_the_reference(case, spy):
    X, y, w = make_data(case)
    fast = fit(case, X, y, w, "numba")
    assert not spy                         # small updates: the whole loop in compiled calls
    assert_twins(fast, reference_fit(case))
    # The training did something: every array left its initial value.
    cell, layers, bidirectional = case.arch
    init = fastrnn.init_params(K, D, fast.n_outputs_, cell=cell, random_state=SEED,
                               n_layers=layers, bidirectional=bidirectional)
    assert all(normwise(fast.params_[key], init[key]) > ACTS for key in init)

    # Every option reached the trainers: without it the result differs.
    if case.clip is not None:
        assert difference(fit(case, X, y, w, "numba", clip=None), fast) > ACTS
    if case.dropout:
        assert difference(fit(case, X, y, w, "numba", dropout=0.0), fast) > ACTS
    if case.weights is not None:
        unweighted = fit(case, X, y, None, "numba")
        # Per-sequence weights are shares within each update: with one
        # sequence per update they weigh only the epoch losses.
        if case.weights == "step" or effective_batch(case) > 1:
            assert difference(unweighted, fast) > ACTS
        elif n_sequences(case) > 1:
            assert normwise(unweighted.loss_curve_, fast.loss_curve_) > ACTS
    if case.bptt is not None and case.bptt < longest(case):
        assert difference(fit(case, X, y, w, "numba", bptt=None), fast) > ACTS
    if effective_batch(case) < n_sequences(case):
        assert difference(fit(case, X, y, w, "numba", batch_size=None), fast) > ACTS
        if case.shuffle:
            assert difference(fit(case, X, y, w, "numba", shuffle=False), fast) > ACTS


@RISING
@pytest.mark.parametrize("case", THREADED, ids=case_id)
def test_threaded_trainer_agrees_with_the_reference(case, monkeypatch, spy):
    X, y, w = make_data(case)
    fits = []
    for threads in (1, 2, 3):
        force_threads(monkeypatch, threads)
        spy.clear()
        fits.append(fit(case, X, y, w, "numba"))
        assert sum(spy) == EPOCHS          # every epoch ran in the threaded trainer
    assert_identical(fits[0], fits[1])
    assert_identical(fits[0], fits[2])
    assert_twins(fits[1], reference_fit(case))


# ------------------------------------------------------------------ dropout
def dropout_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(S, T, K))
    y = rng.integers(0, M, size=(S, T))
    y[0, :M] = np.arange(M)                          # every class occurs: m = M
    return X, y


DROPOUT = dict(n_hidden=D, cell="lstm", n_layers=3, bidirectional=True, dropout=0.3,
               batch_size=2, shuffle=True, optimizer="adam", learning_rate=0.003)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_dropout_masks_do_not_depend_on_the_blocks_of_epochs(backend, monkeypatch):
    """fit cuts the epochs into blocks (one train_epochs call each) by
    timing; the masks depend on the epoch's seed, the update, the row, the
    layer and the unit only, so any cut gives the same result to the bit."""
    X, y = dropout_data()
    module = kernel_train if backend == "numba" else reference_train
    calls = []
    train = module.train_epochs

    def spy(*args):
        calls.append(args[10].shape[0])
        return train(*args)
    monkeypatch.setattr(module, "train_epochs", spy)
    fits = {}
    for block_seconds in (0.0, 1e9):            # one epoch per call; blocks growing 8x
        monkeypatch.setattr(estimator_module, "_BLOCK_SECONDS", block_seconds)
        calls.clear()
        fits[block_seconds] = FastRNN(backend=backend, epochs=20, random_state=3,
                                      **DROPOUT).fit(X, y)
        assert sum(calls) == 20
        assert calls == ([1] * 20 if block_seconds == 0.0 else [1, 8, 11])
    assert_identical(fits[0.0], fits[1e9])


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_epochs_in_warm_started_calls_equal_one_fit(dropout):
    """With a Generator as random_state, 20 warm-started fits of one epoch
    continue one random stream and one optimizer state: they end where one
    fit of 20 epochs ends, dropout masks and shuffled orders included."""
    X, y = dropout_data()
    settings = dict(DROPOUT, dropout=dropout)
    whole = FastRNN(epochs=20, random_state=np.random.default_rng(5), **settings).fit(X, y)
    parts = FastRNN(epochs=1, random_state=np.random.default_rng(5), warm_start=True,
                    **settings)
    for _ in range(20):
        parts.fit(X, y)
    assert parts.n_iter_ == 1 and len(parts.loss_curve_) == 20
    assert_identical(parts, whole)


def test_without_dropout_nothing_is_drawn():
    """With dropout=0 fit draws no dropout seeds: a warm start that does not
    shuffle leaves its Generator untouched (and draws with dropout, the
    control), and a fresh fit draws only the initial weights."""
    X, y = dropout_data()
    settings = dict(DROPOUT, shuffle=False, epochs=3)
    model = FastRNN(random_state=0, **settings).fit(X, y)
    model.set_params(warm_start=True)
    for dropout in (0.0, 0.3, 0.0):
        stream = np.random.default_rng(11)
        before = stream.bit_generator.state
        model.set_params(dropout=dropout, random_state=stream).fit(X, y)
        assert (stream.bit_generator.state != before) == bool(dropout)
    stream, replay = np.random.default_rng(12), np.random.default_rng(12)
    FastRNN(random_state=stream, **dict(settings, dropout=0.0)).fit(X, y)
    fastrnn.init_params(K, D, M, cell="lstm", n_layers=3, bidirectional=True,
                        random_state=replay)
    assert stream.bit_generator.state == replay.bit_generator.state


# ------------------------------------------- train_epochs called directly
def train_arguments(arch, X, Y, theta, optimizer, lr, batch_size, epochs, *, loss=SQUARED_ERROR,
                    dropout=0.0, seeds=None):
    """The arguments of every train_epochs twin for ``epochs`` epochs over
    the sequences of the list X in their order (Y packed, a row per step)."""
    cell, layers, bidirectional = arch
    a = Architecture(cell, K, D, 1 if loss == SQUARED_ERROR else M, layers, bidirectional)
    info = CELLS[cell]
    lengths = np.array([len(x) for x in X], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    dims = np.array([layers, a.n_directions, len(info.states), info.cache_blocks],
                    dtype=np.int64)
    order = np.broadcast_to(np.arange(len(X)), (epochs, len(X))).copy()
    if seeds is None:
        seeds = np.zeros(epochs, dtype=np.uint64)
    return SimpleNamespace(
        args=(info.tag, theta, a.table(), dims, np.concatenate(X), Y, starts, lengths,
              np.ones(len(X)), np.empty(0), order, seeds, batch_size, int(lengths.max()), loss,
              False, dropout, OPTIMIZERS.index(optimizer),
              np.array([lr, 0.9, 0.9, 0.999, 1e-8]), CLIP_NONE, 0.0),
        state=np.zeros((2, a.n_params)), step=np.zeros(1, dtype=np.int64),
        losses=np.full(epochs, np.nan), progress=np.zeros(3, dtype=np.int64),
        stop=np.zeros(1, dtype=np.int64), architecture=a)


def call_train(twin, t):
    return twin(*t.args, t.state, t.step, t.losses, t.progress, t.stop)


TWINS = {"reference": reference_train.train_epochs, "kernels": kernel_train.train_epochs,
         "threads": _train_threads.train_epochs}


@pytest.mark.parametrize("twin", TWINS)
def test_without_dropout_the_seeds_change_nothing(twin, monkeypatch):
    """dropout=0: whatever the epochs' seeds, the result of a network
    without dropout (no mask is drawn); with dropout they matter."""
    force_threads(monkeypatch, 2)
    rng = np.random.default_rng(4)
    X = [rng.normal(size=(n, K)) for n in LENGTHS]
    Y = rng.normal(size=(sum(LENGTHS), 1))
    arch = ("gru", 2, True)
    init = fastrnn.init_params(K, D, 1, cell="gru", n_layers=2, bidirectional=True,
                               random_state=0)
    results = {}
    for dropout, seeds in ((0.0, 0), (0.0, 1), (0.3, 0), (0.3, 1)):
        theta = np.concatenate([np.ravel(v) for v in init.values()])
        t = train_arguments(arch, X, Y, theta, "adam", 0.01, 2, 4, dropout=dropout,
                            seeds=np.random.default_rng(seeds).integers(0, 2**63, 4)
                            .astype(np.uint64) if seeds else None)
        assert call_train(TWINS[twin], t) == OK
        results[dropout, seeds] = theta
    assert np.array_equal(results[0.0, 0], results[0.0, 1])
    assert normwise(results[0.3, 0], results[0.3, 1]) > ACTS
    assert normwise(results[0.3, 0], results[0.0, 0]) > ACTS


# ------------------------------------------------------------------- faults
class Fault(NamedTuple):
    code: int
    reason: str                  # as fit's FloatingPointError says it
    arch: tuple
    optimizer: str
    lr: float
    rows: int                    # steps of every sequence
    targets: tuple               # the target of every step of each pair of sequences


# Six sequences in pairs, two per update, three updates per epoch. With
# every weight 0 every h_t is 0 and only b_y learns (``simulate``):
# * sgd at lr 3 with one step per sequence: each update doubles the error
#   e = b_y - y; in epoch 5, update 2, e² ≈ 3.5e308 overflows (the update
#   before, 0.9e308 did not) while e itself is finite;
# * sgd at lr 3/8 with 8 steps per sequence: the same doubling; in epoch 15,
#   update 3, the gradient Σ e = 8 e has a square that overflows, while the
#   loss 8 · ½ e² is still finite (a factor 2.8 from each bound);
# * adagrad: every update adds g² ≈ 2.3e307 to the state s, which stays
#   finite for 7 updates; the 8th would make it inf (epoch 3, update 2),
#   while θ itself stays finite.
FAULTS = {
    "loss": Fault(LOSS_NOT_FINITE, "the loss became non-finite", ("lstm", 2, True), "sgd", 3.0,
                  1, (1.4e150, -2.8e149, 7e149)),
    "gradient": Fault(GRAD_NOT_FINITE, "the gradient became non-finite", ("gru", 1, False),
                      "sgd", 3 / 8, 8, (1e140, -3e139, 2e139)),
    "update": Fault(UPDATE_NOT_FINITE, "an update would have made a parameter or the "
                    "optimizer's state non-finite", ("rnn", 3, False), "adagrad", 0.1, 1,
                    (4.8e153,) * 3),
}
FAULT_EPOCHS = 30


def simulate(fault, targets=None, epochs=FAULT_EPOCHS, eps=1e-8):
    """The training of b_y alone, written out: in each update the two
    sequences share the loss (a factor ½ each), e = b - y at every step,
    loss = Σ ½ · ½ e², g = Σ ½ e. Returns where it fails (or None) and what
    the last good update left."""
    targets = fault.targets if targets is None else targets
    rows = [[y] * fault.rows for y in targets for _ in range(2)]
    b = s = 0.0
    good, losses, steps = 0, [], 0
    for epoch in range(1, epochs + 1):
        total, steps = 0.0, 0
        for update in range(1, 4):
            loss = g = 0.0
            for seq in rows[2 * update - 2:2 * update]:
                for y in seq:
                    e = b - y
                    loss += 0.5 * (0.5 * (e * e))
                    g += 0.5 * e
            code = OK
            if not math.isfinite(loss):
                code = LOSS_NOT_FINITE
            elif not math.isfinite(g * g):
                code = GRAD_NOT_FINITE
            else:
                if fault.optimizer == "sgd":
                    new_b, new_s = b - fault.lr * g, s
                else:
                    new_s = s + g * g
                    new_b = b - fault.lr * g / math.sqrt(new_s + eps)
                if not (math.isfinite(new_b) and math.isfinite(new_s)):
                    code = UPDATE_NOT_FINITE
            if code != OK:
                return SimpleNamespace(code=code, epoch=epoch, update=update, b=b, s=s,
                                       good=good, losses=losses, steps=steps)
            b, s, good = new_b, new_s, good + 1
            total += 2 * loss
            steps += 2 * fault.rows
        losses.append(total / 6)
    return SimpleNamespace(code=OK, epoch=None, update=None, b=b, s=s, good=good,
                           losses=losses, steps=steps)


def fault_data(fault, targets=None, seed=0):
    rng = np.random.default_rng(seed)
    targets = fault.targets if targets is None else targets
    X = [rng.normal(size=(fault.rows, K)) for _ in range(6)]
    y = [np.full(fault.rows, t) for t in targets for _ in range(2)]
    return X, y


def test_the_fault_scenarios_fail_where_intended():
    """Each scenario fails, by hand, with its fault, after complete epochs
    and in the middle of an epoch; with harmless targets it does not."""
    for name, fault in FAULTS.items():
        result = simulate(fault)
        assert result.code == fault.code, name
        assert result.epoch >= 3 and result.update >= 2, name
        assert len(result.losses) == result.epoch - 1
        assert simulate(fault, targets=(1.0, -0.5, 2.0)).code == OK


def zero_model(fault, backend, **settings):
    """A regressor of the fault's network with every parameter 0, ready to
    continue (warm start) with the fault's optimizer and a fresh state."""
    cell, layers, bidirectional = fault.arch
    X, _ = fault_data(fault)
    model = FastRNNRegressor(n_hidden=D, cell=cell, n_layers=layers, bidirectional=bidirectional,
                             backend=backend, optimizer="momentum", learning_rate=1e-3, epochs=1,
                             batch_size=2, shuffle=False, random_state=0)
    model.fit(X, [np.zeros(fault.rows)] * 6)                   # 1 epoch, another optimizer
    model.params_ = {key: np.zeros_like(value) for key, value in model.params_.items()}
    return model.set_params(**dict(dict(warm_start=True, optimizer=fault.optimizer,
                                        learning_rate=fault.lr, epochs=FAULT_EPOCHS), **settings))


TRAINERS = ("numpy", "compiled", "threads")


def use_trainer(trainer, monkeypatch):
    if trainer == "threads":
        force_threads(monkeypatch, 2)
    return "numpy" if trainer == "numpy" else "numba"


def kept_text(epoch, update):
    """What fit's error says it kept, for a fault in ``update`` of ``epoch``."""
    if update > 1:
        return f"{epoch - 1} complete epochs and {update - 1} updates of epoch {epoch}"
    return f"{epoch - 1} complete epochs"


def assert_bias_only(model, b):
    for key, value in model.params_.items():
        assert np.isfinite(value).all(), key
        if key == "b_y":
            assert value[0] == pytest.approx(b, rel=1e-12, abs=0), (value, b)
        else:
            assert not value.any(), key


def continue_both(a, b, fault, near):
    """Continue two models on harmless data (one step per sequence, targets
    near b_y = ``near``, a small learning rate) for 3 epochs: they must stay
    identical."""
    X, y = fault_data(fault._replace(rows=1), targets=(near * 1.001, near * 0.999, near * 1.002),
                      seed=1)
    for model in (a, b):
        model.set_params(epochs=3, learning_rate=1e-3 if fault.optimizer == "sgd" else fault.lr)
        model.fit(X, y)
    for key in a.params_:
        assert np.array_equal(a.params_[key], b.params_[key]), key
    assert a.loss_curve_[-3:] == b.loss_curve_[-3:]


@RISING
@pytest.mark.parametrize("trainer", TRAINERS)
@pytest.mark.parametrize("name", FAULTS)
def test_fault_through_fit(name, trainer, monkeypatch, spy):
    """fit raises FloatingPointError naming the fault, the epoch and the
    update; params_ and the optimizer's state are those after the last good
    update (computed by hand, and equal to those of fits that stopped
    there: a warm start continues identically); loss_curve_ holds the
    complete epochs only."""
    fault = FAULTS[name]
    backend = use_trainer(trainer, monkeypatch)
    expected = simulate(fault)
    E, U = expected.epoch, expected.update
    model = zero_model(fault, backend)
    curve = list(model.loss_curve_)
    X, y = fault_data(fault)
    spy.clear()
    with pytest.raises(FloatingPointError) as info:
        model.fit(X, y)
    assert bool(spy) == (trainer == "threads")
    message = str(info.value)
    assert message.startswith(f"fit: {fault.reason} in epoch {E}, update {U}; that update "
                              f"was not applied: "), message
    assert f"are those after {kept_text(E, U)} (loss_curve_ holds" in message, message
    assert model.n_iter_ == E - 1
    assert model.loss_curve_[:len(curve)] == curve
    np.testing.assert_allclose(model.loss_curve_[len(curve):], expected.losses, rtol=1e-12,
                               atol=0)
    assert_bias_only(model, expected.b)
    assert model.predict(X[0]).shape == (fault.rows,)

    # The same training stopped before the fault: E - 1 epochs, then the
    # first U - 1 updates of epoch E.
    stopped = zero_model(fault, backend, epochs=E - 1)
    stopped.fit(X, y)
    stopped.set_params(epochs=1).fit(X[:2 * (U - 1)], y[:2 * (U - 1)])
    for key in model.params_:
        assert np.array_equal(model.params_[key], stopped.params_[key]), key
    continue_both(model, stopped, fault, expected.b)


def zero_arguments(fault, epochs=FAULT_EPOCHS, targets=None):
    X, y = fault_data(fault, targets)
    a = Architecture(fault.arch[0], K, D, 1, fault.arch[1], fault.arch[2])
    theta = np.zeros(a.n_params)
    return train_arguments(fault.arch, X, np.concatenate(y)[:, None], theta, fault.optimizer,
                           fault.lr, 2, epochs)


def assert_theta_bias_only(t, b):
    b_y = t.architecture.table()[-1, 0]
    theta = t.args[1]
    assert theta[b_y] == pytest.approx(b, rel=1e-12, abs=0)
    assert not np.delete(theta, b_y).any()


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("name", FAULTS)
def test_train_epochs_returns_the_fault_and_where(name, twin, monkeypatch):
    """Each twin returns the fault's code; ``progress`` says how far it got
    (epochs completed, updates and steps done in the running one); theta,
    the optimizer's state and its step counter are those of the last good
    update; only the complete epochs' losses are written."""
    force_threads(monkeypatch, 2)
    fault = FAULTS[name]
    expected = simulate(fault)
    t = zero_arguments(fault)
    assert call_train(TWINS[twin], t) == fault.code
    E, U = expected.epoch, expected.update
    assert t.progress.tolist() == [E - 1, U - 1, expected.steps]
    assert expected.steps == 2 * (U - 1) * fault.rows
    assert_theta_bias_only(t, expected.b)
    np.testing.assert_allclose(t.losses[:E - 1], expected.losses, rtol=1e-12, atol=0)
    assert np.isnan(t.losses[E - 1:]).all()
    assert t.step.tolist() == [expected.good]
    b_y = t.architecture.table()[-1, 0]
    if fault.optimizer == "adagrad":
        assert t.state[0, b_y] == pytest.approx(expected.s, rel=1e-12, abs=0)
        assert not np.delete(t.state[0], b_y).any()
    else:
        assert not t.state[0].any()
    assert not t.state[1].any()


@pytest.mark.parametrize("twin", TWINS)
def test_train_epochs_without_a_fault_and_stopped(twin, monkeypatch):
    """The same trainings with harmless targets run every epoch (by hand
    too); with ``stop`` set, each twin returns STOPPED before its next
    update (here the first: nothing changes)."""
    force_threads(monkeypatch, 2)
    fault = FAULTS["update"]
    targets = (1.0, -0.5, 2.0)
    expected = simulate(fault, targets=targets, epochs=4)
    t = zero_arguments(fault, epochs=4, targets=targets)
    assert call_train(TWINS[twin], t) == OK
    assert t.progress.tolist() == [4, 3, 6 * fault.rows]
    assert_theta_bias_only(t, expected.b)
    np.testing.assert_allclose(t.losses, expected.losses, rtol=1e-12, atol=0)
    assert t.step.tolist() == [12]
    t = zero_arguments(fault, epochs=4, targets=targets)
    t.stop[0] = 1
    theta = t.args[1].copy()
    assert call_train(TWINS[twin], t) == fastrnn._codes.STOPPED
    assert t.progress.tolist() == [0, 0, 0] and t.step.tolist() == [0]
    assert np.array_equal(t.args[1], theta)
    assert np.isnan(t.losses).all()


@pytest.mark.parametrize("trainer", TRAINERS)
@pytest.mark.parametrize("cell", list(CELLS))
def test_an_overflowing_first_update_keeps_the_initial_parameters(cell, trainer, monkeypatch,
                                                                  spy):
    """The probe of the issue: learning rate 1e308 on 200-step sequences.
    The first update would overflow θ; it is not applied, so params_ are the
    initial ones, finite, and fit says so."""
    backend = use_trainer(trainer, monkeypatch)
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(2, 200, K)), rng.integers(0, M, size=(2, 200))
    model = FastRNN(n_hidden=D, cell=cell, n_layers=2, backend=backend, optimizer="sgd",
                    learning_rate=1e308, epochs=3, random_state=0)
    with pytest.raises(FloatingPointError) as info:
        model.fit(X, y)
    assert bool(spy) == (trainer == "threads")
    assert str(info.value).startswith(f"fit: {FAULTS['update'].reason} in epoch 1, update 1; "
                                      f"that update was not applied"), str(info.value)
    assert "are those after 0 complete epochs (" in str(info.value)
    assert model.n_iter_ == 0 and model.loss_curve_ == []
    init = fastrnn.init_params(K, D, M, cell=cell, n_layers=2, random_state=0)
    assert model.params_.keys() == init.keys()
    for key in init:
        assert np.array_equal(model.params_[key], init[key]), key


@pytest.mark.parametrize("trainer", TRAINERS)
def test_a_non_finite_loss_keeps_the_updates_before_it(trainer, monkeypatch):
    """A random deep LSTM with dropout, Adam and ragged sequences; the 5th
    sequence has a target of 1e300, so the 3rd update's loss overflows.
    params_ equal those of a fit on the first four sequences (the two good
    updates), and from there both continue alike (Adam's moments and step
    counter kept)."""
    backend = use_trainer(trainer, monkeypatch)
    rng = np.random.default_rng(2)
    X = [rng.normal(size=(n, K)) for n in (4, 7, 2, 5, 6, 3)]
    y = [rng.normal(size=len(x)) for x in X]
    y[4][2] = 1e300
    settings = dict(n_hidden=D, cell="lstm", n_layers=2, dropout=0.3, backend=backend,
                    optimizer="adam", learning_rate=0.01, batch_size=2, shuffle=False,
                    random_state=4, epochs=5)
    model = FastRNNRegressor(**settings)
    with pytest.raises(FloatingPointError) as info:
        model.fit(X, y)
    assert str(info.value).startswith(f"fit: {FAULTS['loss'].reason} in epoch 1, update 3;")
    assert "are those after 0 complete epochs and 2 updates of epoch 1 (" in str(info.value)
    assert model.n_iter_ == 0 and model.loss_curve_ == []
    before = FastRNNRegressor(**dict(settings, epochs=1)).fit(X[:4], y[:4])
    for key in before.params_:
        assert np.array_equal(model.params_[key], before.params_[key]), key
    for m in (model, before):
        m.set_params(warm_start=True, epochs=3).fit(X[:4], y[:4])
    for key in before.params_:
        assert np.array_equal(model.params_[key], before.params_[key]), key
    assert model.loss_curve_ == before.loss_curve_[1:]


# ------------------------------------------------------- optimizer twins
CLIP_CASES = [(CLIP_NONE, 0.0), (CLIP_NORM, 0.8), (CLIP_VALUE, 0.3)]
HYPER = np.array([0.05, 0.9, 0.9, 0.999, 1e-8])   # lr, momentum, beta1, beta2, eps


def optimizer_step(module, theta, grad, optimizer, hyper, state, step):
    return module.optimizer_step(theta, grad, optimizer, hyper, state, step,
                                 np.empty((3, len(theta))))


@pytest.mark.parametrize("clip_mode,clip", CLIP_CASES, ids=["none", "norm", "value"])
@pytest.mark.parametrize("optimizer", range(len(OPTIMIZERS)), ids=OPTIMIZERS)
def test_optimizer_and_clipping_twins(optimizer, clip_mode, clip):
    """Several clipped updates in place: the kernels agree with the
    reference to 1e-12 in theta, the optimizer state, the step counter, the
    clipped gradient and the returned norm."""
    rng = np.random.default_rng(optimizer * 10 + clip_mode)
    P = 37
    theta0 = rng.normal(size=P)
    runs = {}
    for name, module in (("kernel", kernel_optim), ("reference", reference_optim)):
        theta = theta0.copy()
        state = np.zeros((2, P))
        step = np.zeros(1, dtype=np.int64)
        grads, norms = [], []
        g_rng = np.random.default_rng(1)
        for _ in range(6):
            grad = g_rng.normal(size=P)      # ‖g‖ ≈ 6 > 0.8, max|g| > 0.3: both clips act
            norms.append(module.clip_gradient(grad, clip_mode, clip))
            grads.append(grad)
            assert optimizer_step(module, theta, grad, optimizer, HYPER, state, step)
        runs[name] = (theta, state, step, np.array(grads), np.array(norms))
    (theta_k, state_k, step_k, grads_k, norms_k) = runs["kernel"]
    (theta_r, state_r, step_r, grads_r, norms_r) = runs["reference"]
    assert step_k[0] == step_r[0] == 6
    assert normwise(theta_k, theta_r) <= 1e-12
    assert normwise(state_k, state_r) <= 1e-12
    assert normwise(grads_k, grads_r) <= 1e-12
    np.testing.assert_allclose(norms_k, norms_r, rtol=1e-12)
    assert not np.array_equal(theta_k, theta0)


@pytest.mark.parametrize("module", [kernel_optim, reference_optim], ids=["kernel", "reference"])
@pytest.mark.parametrize("optimizer", range(len(OPTIMIZERS)), ids=OPTIMIZERS)
def test_a_non_finite_update_is_undone(module, optimizer):
    """An update that would make theta or the state non-finite returns
    False and leaves theta, the state and the step counter exactly as they
    were: a learning rate of 1e308 with gradients of about 10, or a gradient
    entry whose square overflows (sgd and momentum never square it: their
    update stays finite)."""
    rng = np.random.default_rng(optimizer)
    P = 11
    theta0, state0 = rng.normal(size=P), np.abs(rng.normal(size=(2, P)))
    huge_lr = (np.array([1e308, 0.9, 0.9, 0.999, 1e-8]), rng.normal(size=P) * 10, True)
    huge_g = (HYPER, np.where(np.arange(P) == 4, 1e160, 0.5), optimizer not in (SGD, MOMENTUM))
    for hyper, grad, overflows in (huge_lr, huge_g):
        theta, state = theta0.copy(), state0.copy()
        step = np.array([5], dtype=np.int64)
        with np.errstate(over="ignore", invalid="ignore"):   # as in train_epochs
            finite = optimizer_step(module, theta, grad, optimizer, hyper, state, step)
        assert bool(finite) == (not overflows)
        if overflows:
            assert np.array_equal(theta, theta0) and np.array_equal(state, state0)
            assert step.tolist() == [5]
        else:
            assert np.isfinite(theta).all() and np.isfinite(state).all()
            assert step.tolist() == [6] and not np.array_equal(theta, theta0)


def clip_by_hand(g, clip_mode, clip):
    norm = math.sqrt(sum(v * v for v in g))
    if clip_mode == CLIP_NORM:
        return (g * (clip / (norm + 1e-6)) if norm > clip else g.copy()), norm
    if clip_mode == CLIP_VALUE:
        return np.array([min(max(v, -clip), clip) for v in g]), norm
    return g.copy(), norm


@pytest.mark.parametrize("module", [kernel_optim, reference_optim], ids=["kernel", "reference"])
@pytest.mark.parametrize("clip_mode,clip", CLIP_CASES + [(CLIP_NORM, 100.0)],
                         ids=["none", "norm", "value", "norm-inactive"])
def test_clipping_by_hand(module, clip_mode, clip):
    g = np.random.default_rng(5).normal(size=23)
    expected, expected_norm = clip_by_hand(g, clip_mode, clip)
    grad = g.copy()
    norm = module.clip_gradient(grad, clip_mode, clip)
    assert norm == pytest.approx(expected_norm, rel=1e-14)
    np.testing.assert_allclose(grad, expected, rtol=1e-14, atol=0)
    if clip_mode == CLIP_NORM and clip < expected_norm:
        assert np.linalg.norm(grad) == pytest.approx(clip, rel=1e-6)
    if clip_mode == CLIP_VALUE:
        assert np.abs(grad).max() == clip


def steps_by_hand(optimizer, theta, grads, lr, mu, beta1, beta2, eps):
    """The five update rules of docs/math.md, section 8, written out element
    by element (adagrad: min-char-rnn's θ -= lr g / √(s + eps))."""
    theta = [float(v) for v in theta]
    n = len(theta)
    a, b = [0.0] * n, [0.0] * n
    for t, g in enumerate(grads, start=1):
        for p in range(n):
            if optimizer == SGD:
                theta[p] -= lr * g[p]
            elif optimizer == MOMENTUM:
                a[p] = mu * a[p] + g[p]
                theta[p] -= lr * a[p]
            elif optimizer == ADAGRAD:
                a[p] += g[p] ** 2
                theta[p] -= lr * g[p] / math.sqrt(a[p] + eps)
            elif optimizer == RMSPROP:
                a[p] = beta2 * a[p] + (1 - beta2) * g[p] ** 2
                theta[p] -= lr * g[p] / (math.sqrt(a[p]) + eps)
            else:
                assert optimizer == ADAM
                a[p] = beta1 * a[p] + (1 - beta1) * g[p]
                b[p] = beta2 * b[p] + (1 - beta2) * g[p] ** 2
                m_hat = a[p] / (1 - beta1 ** t)
                v_hat = b[p] / (1 - beta2 ** t)
                theta[p] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return np.array(theta)


@pytest.mark.parametrize("module", [kernel_optim, reference_optim], ids=["kernel", "reference"])
@pytest.mark.parametrize("optimizer", range(len(OPTIMIZERS)), ids=OPTIMIZERS)
def test_optimizers_by_hand(module, optimizer):
    rng = np.random.default_rng(11)
    P = 9
    theta0 = rng.normal(size=P)
    # Some tiny gradients, so eps matters for adagrad (√(s + eps) ≠ √s + eps).
    grads = [rng.normal(size=P) * scale for scale in (1.0, 1e-4, 0.3, 2.0, 1e-5)]
    hyper = np.array([0.07, 0.8, 0.85, 0.99, 1e-6])
    expected = steps_by_hand(optimizer, theta0, grads, *hyper)
    theta = theta0.copy()
    state = np.zeros((2, P))
    step = np.zeros(1, dtype=np.int64)
    for g in grads:
        optimizer_step(module, theta, g.copy(), optimizer, hyper, state, step)
    np.testing.assert_allclose(theta, expected, rtol=1e-13, atol=1e-15)
    assert step.tolist() == [len(grads)]


def test_adagrad_eps_inside_the_root():
    """min-char-rnn's adagrad puts eps under the square root: with s = 0
    before the step and g = 1e-4, s + eps = 1e-8 + 1e-6, a step of
    lr · 1e-4 / √(1.01e-6) ≈ 0.0995 lr, while eps outside the root
    (√s + eps) would give ≈ 0.990 lr."""
    for module in (kernel_optim, reference_optim):
        theta = np.zeros(1)
        optimizer_step(module, theta, np.array([1e-4]), ADAGRAD,
                       np.array([1.0, 0.9, 0.9, 0.999, 1e-6]), np.zeros((2, 1)),
                       np.zeros(1, dtype=np.int64))
        assert theta[0] == pytest.approx(-1e-4 / math.sqrt(1e-8 + 1e-6), rel=1e-14)
