"""FastRNN and FastRNNRegressor in scikit-learn's tools, as a new user
reaches for them: clone, get_params/set_params, check_is_fitted,
is_classifier/is_regressor, cross_val_score, cross_validate,
GridSearchCV/RandomizedSearchCV (also on two loky processes), Pipeline, the
HTML repr, and ``check_estimator`` with the checks that cannot apply to a
sequence model listed, each with its reason
(``fastrnn._sklearn.expected_failed_checks``).

scikit-learn is optional: fastrnn never imports it (a test below holds that
in a fresh process). These tests are skipped without it, except in CI
(FASTRNN_REQUIRE_OPTIONAL=1), which installs the current release. The oldest
supported release is 1.6 (the tags API, ``__sklearn_tags__``); nothing here
needs a newer one.

The shapes: a 3-D X (B, T, k) is a batch of B sequences, so scikit-learn's
splitters cut it into whole sequences; a 2-D X (T, k) is ONE sequence whose
rows are steps, so a splitter cuts it into runs of steps (KFold without
shuffling keeps each fold a contiguous piece of the sequence).
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastrnn
from fastrnn import FastRNN, FastRNNRegressor
from fastrnn._sklearn import expected_failed_checks

from _optional import require


@pytest.fixture(scope="module")
def sklearn():
    return require("sklearn", "scikit-learn's tools on fastrnn's estimators")


def batch_classification(B=30, T=6, k=3, seed=0):
    """One label per sequence: whether its first feature sums above 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, T, k))
    y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    return X, y


def batch_regression(B=30, T=6, k=3, seed=1):
    """A value per step: the running sum of the first feature."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, T, k))
    return X, np.cumsum(X[:, :, 0], axis=1)


def one_sequence(T=90, k=3, seed=2):
    """One 2-D sequence, a label per step: whether the last two steps' first
    feature sums above 0 (it needs the state)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(T, k)) * [1.0, 5.0, 0.1] + [0.0, 10.0, -3.0]   # worth scaling
    y = (X[:, 0] + np.concatenate([[0.0], X[:-1, 0]]) > 0).astype(int)
    return X, y


def small(cls, **params):
    return cls(**{"n_hidden": 4, "epochs": 20, "random_state": 0, **params})


KINDS = {"classifier": (FastRNN, batch_classification),
         "regressor": (FastRNNRegressor, batch_regression)}


def params_equal(a, b):
    return a.params_.keys() == b.params_.keys() and \
        all(np.array_equal(a.params_[key], b.params_[key]) for key in a.params_)


# --------------------------------------------------------- what sklearn reads
def test_estimator_type_and_tags(sklearn):
    from sklearn.base import is_classifier, is_regressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import get_tags
    assert is_classifier(FastRNN()) and not is_regressor(FastRNN())
    assert is_regressor(FastRNNRegressor()) and not is_classifier(FastRNNRegressor())
    assert is_classifier(make_pipeline(StandardScaler(), FastRNN()))
    assert is_regressor(make_pipeline(StandardScaler(), FastRNNRegressor()))
    for model, kind in ((FastRNN(), "classifier"), (FastRNNRegressor(), "regressor")):
        tags = get_tags(model)
        assert tags.estimator_type == kind
        assert tags.target_tags.required
        assert tags.input_tags.two_d_array and tags.input_tags.three_d_array
        assert not tags.input_tags.one_d_array and not tags.input_tags.sparse
        assert not tags.input_tags.allow_nan
    assert get_tags(FastRNNRegressor()).target_tags.multi_output
    assert get_tags(FastRNN()).classifier_tags.multi_class


def test_clone_get_params_set_params(sklearn):
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = batch_classification()
    model = FastRNN(n_hidden=3, epochs=5, betas=(0.8, 0.99), random_state=np.random.default_rng(0))
    copy = clone(model)
    assert type(copy) is FastRNN and copy is not model
    params, copied = model.get_params(), copy.get_params()
    assert params.keys() == copied.keys()
    assert all(copied[name] == params[name] for name in params if name != "random_state")
    # A Generator is deep-copied: same stream, not the same object.
    assert copy.random_state is not model.random_state
    assert copy.random_state.bit_generator.state == model.random_state.bit_generator.state
    assert params_equal(copy.fit(X, y), clone(model).fit(X, y))      # same draws, same model
    assert not hasattr(clone(copy), "params_")                       # a clone is unfitted

    pipe = make_pipeline(StandardScaler(), FastRNN(n_hidden=3))
    assert pipe.get_params()["fastrnn__n_hidden"] == 3
    pipe.set_params(fastrnn__n_hidden=5, fastrnn__cell="lstm")
    assert (pipe[-1].n_hidden, pipe[-1].cell) == (5, "lstm")
    assert clone(pipe)[-1].get_params() == pipe[-1].get_params()
    with pytest.raises(ValueError, match="n_hiden"):
        pipe.set_params(fastrnn__n_hiden=5)


@pytest.mark.parametrize("kind", KINDS)
def test_check_is_fitted_and_not_fitted_error(sklearn, kind):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
    cls, data = KINDS[kind]
    X, y = data()
    model = small(cls, epochs=2)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    try:
        model.predict(X)
    except NotFittedError as error:            # fastrnn's error is scikit-learn's too
        assert isinstance(error, fastrnn.NotFittedError)
        assert isinstance(error, ValueError) and isinstance(error, AttributeError)
        assert type(model).__name__ in str(error)
    else:
        pytest.fail("predict before fit did not raise")
    with pytest.raises(fastrnn.NotFittedError):
        model.score(X, y)
    model.fit(X, y)
    check_is_fitted(model)


def test_the_not_fitted_error_pickles(sklearn):
    """An error raised in a worker process is pickled to its caller: the
    not-fitted error, scikit-learn's too here, arrives as both."""
    import pickle
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError) as info:
        FastRNN().predict(np.zeros((2, 3, 1)))
    error = pickle.loads(pickle.dumps(info.value))
    assert isinstance(error, NotFittedError) and isinstance(error, fastrnn.NotFittedError)
    assert error.args == info.value.args


def test_fastrnn_never_imports_sklearn_or_dask():
    """Fit, predict, save, load, fit_many, clone and the not-fitted error in
    a fresh process: neither scikit-learn nor Dask is imported, and the
    not-fitted error is fastrnn's own."""
    code = "\n".join([
        "import sys, numpy as np, fastrnn",
        "from fastrnn._many import clone",
        "X = np.random.default_rng(0).normal(size=(4, 5, 2)); y = np.arange(4) % 2",
        "m = fastrnn.FastRNN(n_hidden=2, epochs=2).fit(X, y); m.predict(X); m.score(X, y)",
        "fastrnn.fit_many(clone(m), [X, X], [y, y], n_jobs=2)",
        "try:",
        "    fastrnn.FastRNNRegressor().predict(X)",
        "except fastrnn.NotFittedError as e:",
        "    assert type(e) is fastrnn.NotFittedError, type(e).__mro__",
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'dask', "
        "'distributed', 'joblib'))",
        "assert not loaded, loaded",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------- evaluation
@pytest.mark.parametrize("kind", KINDS)
def test_cross_val_score_and_cross_validate(sklearn, kind):
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, cross_validate
    cls, data = KINDS[kind]
    X, y = data()
    model = small(cls)
    scores = cross_val_score(model, X, y, cv=3, error_score="raise")
    # cv=3 means stratified folds for a classifier, plain folds for a regressor.
    folds = (StratifiedKFold if kind == "classifier" else KFold)(3).split(X, y)
    by_hand = [clone(model).fit(X[train], y[train]).score(X[test], y[test])
               for train, test in folds]
    assert np.all(np.isfinite(scores))
    assert np.array_equal(scores, by_hand)

    scoring = ["accuracy", "neg_log_loss"] if kind == "classifier" else \
        ["neg_mean_squared_error"]
    result = cross_validate(model, X, y, cv=3, scoring=scoring, return_estimator=True,
                            return_train_score=True, error_score="raise")
    for i, (fitted, (train, test)) in enumerate(zip(
            result["estimator"],
            (StratifiedKFold if kind == "classifier" else KFold)(3).split(X, y))):
        if kind == "classifier":
            assert result["test_accuracy"][i] == accuracy_score(y[test], fitted.predict(X[test]))
            assert result["test_neg_log_loss"][i] == pytest.approx(
                -log_loss(y[test], fitted.predict_proba(X[test]), labels=fitted.classes_))
        else:
            assert result["test_neg_mean_squared_error"][i] == pytest.approx(
                -mean_squared_error(y[test], fitted.predict(X[test])))
    assert all(np.all(np.isfinite(values)) for key, values in result.items()
               if key.startswith(("test_", "train_")))


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_grid_and_randomized_search_on_one_and_two_processes(sklearn, kind):
    """n_jobs=2 runs the fits in joblib's loky processes (one fastrnn thread
    each there): the same scores, the same best parameters and the same
    best model, bit for bit, as n_jobs=1."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    cls, data = KINDS[kind]
    X, y = data()
    grid = {"n_hidden": [2, 4], "learning_rate": [0.003, 0.03]}
    searches = {}
    for n_jobs in (1, 2):
        searches[n_jobs] = [
            GridSearchCV(small(cls), grid, cv=3, n_jobs=n_jobs, error_score="raise"),
            RandomizedSearchCV(small(cls), {"n_hidden": [2, 3, 4, 5], "epochs": [10, 20]},
                               n_iter=3, cv=3, random_state=0, n_jobs=n_jobs,
                               error_score="raise")]
        for search in searches[n_jobs]:
            search.fit(X, y)
    for one, two in zip(searches[1], searches[2]):
        assert np.all(np.isfinite(one.cv_results_["mean_test_score"]))
        assert np.array_equal(one.cv_results_["mean_test_score"],
                              two.cv_results_["mean_test_score"])
        assert one.best_params_ == two.best_params_
        assert params_equal(one.best_estimator_, two.best_estimator_)
        assert one.score(X, y) == two.score(X, y)
    # Different settings do score differently (the search is not vacuous).
    assert len(set(searches[1][0].cv_results_["mean_test_score"])) > 1


def threads_in_this_process():
    """fastrnn's thread count here, after a prediction on a batch big enough
    to be cut into chunks (one per thread), and the threads it started."""
    from fastrnn import _parallel
    X = np.random.default_rng(0).normal(size=(8, 100, 32))
    model = FastRNNRegressor(n_hidden=64, epochs=1, random_state=0).fit(X[:1, :5], X[:1, :5, 0])
    assert len(_parallel.chunk_bounds(8, 800, _parallel.work_per_row(model._net))) > 2
    model.predict(X)
    return _parallel.num_threads(), sorted(_parallel._pools)


@pytest.mark.slow
def test_loky_workers_split_the_cores_and_fastrnn_follows(sklearn, monkeypatch):
    """joblib's loky workers (GridSearchCV(n_jobs=...)) get OMP_NUM_THREADS =
    CPUs // n_jobs, which fastrnn honours (no pool of its own when that is
    1); parallel_config(inner_max_num_threads=k) gives each worker k."""
    import joblib
    for name in ("FASTRNN_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    threads_in_this_process()          # compiled here once, loaded from the cache there
    share = max(joblib.cpu_count() // 2, 1)
    seen = joblib.Parallel(n_jobs=2)(joblib.delayed(threads_in_this_process)() for _ in range(4))
    assert seen == [(share, [] if share == 1 else [share])] * 4, seen
    with joblib.parallel_config(backend="loky", inner_max_num_threads=2):
        seen = joblib.Parallel(n_jobs=2)(joblib.delayed(threads_in_this_process)()
                                         for _ in range(4))
    assert seen == [(2, [2])] * 4, seen


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_grid_search_over_a_pipeline_scores_real_numbers(sklearn, kind):
    """The reported bug: GridSearchCV over Pipeline(StandardScaler(),
    FastRNN()) scored NaN. Pipeline.score calls check_is_fitted on the
    pipeline, which reads the last step's tags; without __sklearn_tags__
    that raised AttributeError, which GridSearchCV's default
    error_score=np.nan turned into NaN scores and a warning. Here with the
    default error_score, every score is a real number, and the one a
    by-hand fit and score gives."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = one_sequence()
    cls = FastRNN if kind == "classifier" else FastRNNRegressor
    if kind == "regressor":
        y = X[:, 0] + np.concatenate([[0.0], X[:-1, 0]])
    pipe = make_pipeline(StandardScaler(), small(cls))
    step = pipe.steps[-1][0]
    cv = KFold(3)                    # contiguous runs of steps: the sequence's own order
    search = GridSearchCV(pipe, {f"{step}__n_hidden": [2, 4]}, cv=cv).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)), scores
    for n_hidden, score in zip((2, 4), scores):
        by_hand = [clone(pipe).set_params(**{f"{step}__n_hidden": n_hidden})
                   .fit(X[train], y[train]).score(X[test], y[test])
                   for train, test in cv.split(X)]
        assert score == pytest.approx(np.mean(by_hand), rel=1e-12)
    assert np.all(np.isfinite(cross_val_score(pipe, X, y, cv=cv)))
    assert search.best_estimator_.predict(X).shape == y.shape


def test_html_repr(sklearn):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import estimator_html_repr
    for cls in (FastRNN, FastRNNRegressor):
        html = estimator_html_repr(cls(n_hidden=3, cell="gru"))
        assert f"{cls.__name__}(n_hidden=3, cell=&#x27;gru&#x27;)" in html
        assert "Not fitted" in html
    X, y = one_sequence()
    pipe = make_pipeline(StandardScaler(), small(FastRNN, epochs=2))
    html = estimator_html_repr(pipe)
    assert "StandardScaler" in html and "FastRNN" in html and "Not fitted" in html
    pipe.fit(X, y)
    html = pipe._repr_html_()                  # what a notebook shows
    assert "FastRNN" in html and "Not fitted" not in html
    assert 'class="sk-estimator fitted' in html


# --------------------------------------------------------- check_estimator
# Skipped by scikit-learn itself when an optional package or setting is
# absent: the pandas half of the "data not an array" checks (their NotAnArray
# half has already run and passed when this skip is raised), and the array
# API check (fastrnn's kernels take NumPy arrays only).
SKIPPED_WHEN = {
    "check_sample_weights_pandas_series": "pandas is not installed",
    "check_classifier_data_not_an_array": "pandas is not installed",
    "check_regressor_data_not_an_array": "pandas is not installed",
    "check_array_api_input": "SCIPY_ARRAY_API is not set",
}


@pytest.mark.parametrize("kind", KINDS)
def test_check_estimator(sklearn, kind):
    """Every check of sklearn.utils.estimator_checks passes, except those
    listed in fastrnn._sklearn.expected_failed_checks, which must fail (a
    stale entry is an error too); their reasons are printed with -rA."""
    from sklearn.utils.estimator_checks import check_estimator
    cls = KINDS[kind][0]
    expected = expected_failed_checks(kind)
    with warnings.catch_warnings():
        # fastrnn's estimators deliberately do not inherit from BaseEstimator
        # (scikit-learn is optional); they implement its protocol instead.
        warnings.filterwarnings("ignore", message=r"Estimator \w+ does not inherit from "
                                "`sklearn.base.BaseEstimator`", category=UserWarning)
        results = check_estimator(small(cls, epochs=5), expected_failed_checks=expected,
                                  on_skip=None, on_fail=None)
    statuses = {}
    for r in results:
        statuses.setdefault(r["check_name"], set()).add(r["status"])
    failed = [f"{r['check_name']}: {r['exception']!r:.1500}" for r in results
              if r["status"] == "failed"]
    assert not failed, "checks failed:\n" + "\n".join(failed)
    stale = {name for name in expected if statuses.get(name) != {"xfail"}}
    assert not stale, f"listed as expected to fail, but {statuses_of(stale, statuses)}"
    for r in results:
        if r["status"] == "skipped":
            assert SKIPPED_WHEN.get(r["check_name"], "\0") in str(r["exception"]), r
    passed = sorted(name for name, s in statuses.items() if s == {"passed"})
    assert len(passed) >= 45, passed
    print(f"\n{cls.__name__}: {len(passed)} checks passed; expected to fail:")
    for name, reason in expected.items():
        print(f"  {name}: {reason}")


def statuses_of(names, statuses):
    return {name: sorted(statuses.get(name, {"not run"})) for name in names}


def _read_rows(cls):
    """``cls`` reading a list of rows (what ``X.tolist()`` gives) as the one
    2-D sequence scikit-learn means, instead of fastrnn's list of
    sequences: the rest of check_*_train can then run."""
    class Rows(cls):
        def fit(self, X, y, sample_weight=None, **kwargs):
            if isinstance(X, list) and np.ndim(X[0]) == 1:
                X, y = np.asarray(X), np.asarray(y)
            return super().fit(X, y, sample_weight, **kwargs)
    Rows.__name__ = Rows.__qualname__ = cls.__name__
    return Rows


@pytest.mark.parametrize("options", [{}, {"readonly_memmap": True}, {"X_dtype": "float32"}],
                         ids=["float64", "readonly", "float32"])
def test_train_checks_hold_apart_from_what_a_list_means(sklearn, options):
    """check_classifiers_train and check_regressors_train are listed only
    for what cannot apply (a list X is a list of sequences; a regressor's
    1-D y of another length than the sequence is one vector target): with
    lists of rows read as one sequence, and output="every_step", every other
    assertion of both checks holds (a wrong y length refused, accuracy above
    0.83 and R² above 0.5 on their data, predict's shape, a wrong feature
    count refused)."""
    from sklearn.utils.estimator_checks import check_classifiers_train, check_regressors_train
    check_classifiers_train("FastRNN", _read_rows(FastRNN)(n_hidden=4, epochs=50,
                                                           random_state=0), **options)
    check_regressors_train("FastRNNRegressor",
                           _read_rows(FastRNNRegressor)(n_hidden=4, epochs=50, random_state=0,
                                                        output="every_step"), **options)


def test_regressor_y_of_another_length_is_one_vector_target():
    """Why check_regressors_train's y[:-1] is not refused by default: for one
    sequence of T steps, a 1-D y of length m != T is one m-vector target for
    the sequence (FastRNNRegressor's documented rule); output="every_step"
    says a target per step is meant, and then the mismatch is refused."""
    X, y = one_sequence(T=12)
    y = y.astype(float)
    model = small(FastRNNRegressor, epochs=2).fit(X, y[:-1])
    assert (model.output_, model.n_outputs_, model.predict(X).shape) == ("last_step", 11, (11,))
    with pytest.raises(ValueError, match=r"^y\b"):
        small(FastRNNRegressor, epochs=2, output="every_step").fit(X, y[:-1])


def test_rows_are_steps_so_order_matters():
    """Why the order and subset invariance checks cannot apply: a 2-D X is
    one sequence, and a step's prediction depends on the steps before it."""
    X, y = one_sequence()
    model = small(FastRNNRegressor, epochs=5).fit(X, y.astype(float))
    whole = model.predict(X)
    assert not np.allclose(model.predict(X[::-1])[::-1], whole)
    assert not np.allclose(model.predict(X[30:]), whole[30:])
    state = model.predict(X[:30], return_state=True)[1]           # carried over: the same
    assert np.allclose(model.predict(X[30:], h0=state), whole[30:], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_a_sequence_weight_is_repeating_or_removing_the_sequence(kind):
    """What check_sample_weight_equivalence_on_dense_data asks, for what a
    sample is to fastrnn, a sequence of a batch: weight 2 trains as the
    sequence twice, weight 0 as the sequence left out (full batches, no
    shuffling: only the order of a sum differs)."""
    cls, data = KINDS[kind]
    X, y = data(B=6, T=5)
    weights = np.array([1.0, 2.0, 0.0, 1.0, 2.0, 1.0])
    rows = np.repeat(np.arange(len(X)), weights.astype(int))           # 0 1 1 3 4 4 5
    weighted = small(cls, epochs=10, shuffle=False).fit(X, y, weights)
    repeated = small(cls, epochs=10, shuffle=False).fit(X[rows], y[rows])
    for key in weighted.params_:
        np.testing.assert_allclose(weighted.params_[key], repeated.params_[key], rtol=1e-9,
                                   atol=1e-12)


def test_a_column_of_labels_is_read_as_labels_with_a_warning(sklearn):
    """A classifier's y of shape (T, 1) (a one-column DataFrame, say) holds
    labels: fit warns as scikit-learn's classifiers do (its
    DataConversionWarning) and fits the model the raveled y gives."""
    from sklearn.exceptions import DataConversionWarning
    X, y = one_sequence(T=30)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        column = small(FastRNN, epochs=3).fit(X, y[:, None])
    assert params_equal(column, small(FastRNN, epochs=3).fit(X, y))
    assert np.array_equal(column.classes_, [0, 1])


# ------------------------------------------ array-likes that are not arrays
class ArrayOnly:
    """An array-like that only converts (``__array__``) and refuses every
    other NumPy function (np.shape included), as scikit-learn's NotAnArray:
    an estimator must call np.asarray on it before anything else."""

    def __init__(self, data):
        self.data = np.asarray(data)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"ArrayOnly does not implement {func.__name__}")


@pytest.mark.parametrize("kind", KINDS)
def test_array_likes_are_converted_before_their_shape_is_read(kind):
    cls, data = KINDS[kind]
    X, y = data(B=8, T=4)
    weights = np.linspace(0.5, 1.5, len(X))
    model = small(cls, epochs=3).fit(X, y, weights)
    other = small(cls, epochs=3).fit(ArrayOnly(X), ArrayOnly(y), ArrayOnly(weights))
    assert params_equal(model, other)
    assert np.array_equal(other.predict(ArrayOnly(X)), model.predict(X))
    assert other.score(ArrayOnly(X), ArrayOnly(y), ArrayOnly(weights)) == \
        model.score(X, y, weights)
