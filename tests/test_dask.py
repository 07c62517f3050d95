"""fastrnn on an existing Dask cluster: a hyperparameter search under
joblib's "dask" backend and one model per series with ``client.map`` give
the same models, bit for bit, as a local run; inside a worker given one
thread fastrnn uses one thread, and the number the worker's environment
gives in FASTRNN_NUM_THREADS (docs/scale-out.md).

Dask is optional (the ``dask`` extra): skipped without it, except in CI
(FASTRNN_REQUIRE_OPTIONAL=1). One LocalCluster of two worker processes with
one thread each serves the module (starting one costs seconds).
"""
import re
import threading

import numpy as np
import pytest

import fastrnn
from fastrnn import FastRNN, FastRNNRegressor
from fastrnn._many import clone

from _optional import require

pytestmark = pytest.mark.slow


def start_cluster(**options):
    distributed = require("distributed", "fastrnn's scale-out on Dask (the dask extra)")
    cluster = distributed.LocalCluster(processes=True, dashboard_address=":0", **options)
    return cluster, distributed.Client(cluster)


@pytest.fixture(scope="module")
def client():
    cluster, client = start_cluster(n_workers=2, threads_per_worker=1)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def params_equal(a, b):
    return a.params_.keys() == b.params_.keys() and \
        all(np.array_equal(a.params_[key], b.params_[key]) for key in a.params_)


def threads_in_this_process():
    """Predict on a batch big enough to be cut into chunks (one per thread),
    then report fastrnn's thread count, its thread pools and its threads."""
    from fastrnn import _parallel
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 100, 32))
    model = FastRNNRegressor(n_hidden=64, epochs=1, random_state=0).fit(X[:1, :5], X[:1, :5, 0])
    assert len(_parallel.chunk_bounds(8, 800, _parallel.work_per_row(model._net))) > 2
    model.predict(X)
    return (_parallel.num_threads(), sorted(_parallel._pools),
            sorted(t.name for t in threading.enumerate() if t.name.startswith("fastrnn")))


def test_a_worker_with_one_thread_runs_fastrnn_on_one_thread(client):
    """Dask's nanny sets OMP_NUM_THREADS=1 in its workers, which fastrnn
    honours: no thread pool of its own, whatever the batch."""
    seen = client.run(threads_in_this_process)
    assert len(seen) == 2
    assert all(threads == (1, [], []) for threads in seen.values()), seen


def test_the_worker_environment_gives_fastrnn_more_threads():
    cluster, client = start_cluster(n_workers=1, threads_per_worker=2,
                                    env={"FASTRNN_NUM_THREADS": "2"})
    try:
        (threads, pools, names), = client.run(threads_in_this_process).values()
    finally:
        client.close()
        cluster.close()
    assert (threads, pools, len(names)) == (2, [2], 2), (threads, pools, names)


def test_a_not_fitted_error_on_a_worker_reaches_the_caller(client):
    """Raised on a worker that never loaded scikit-learn, it is scikit-learn's
    NotFittedError too where it is caught (and scikit-learn is loaded)."""
    sklearn_exceptions = require("sklearn.exceptions", "scikit-learn's NotFittedError")
    future = client.submit(FastRNN().predict, np.zeros((2, 3, 1)))
    with pytest.raises(fastrnn.NotFittedError, match="not fitted") as info:
        future.result()
    assert isinstance(info.value, sklearn_exceptions.NotFittedError)


def series(n, length=60, seed=0):
    """n random walks; X a walk's steps (T, 1), y the next step."""
    rng = np.random.default_rng(seed)
    walks = np.cumsum(rng.normal(size=(n, length + 1)), axis=1)
    return [walk[:-1, None] for walk in walks], [walk[1:] for walk in walks]


def fit_one(X, y, estimator):
    from dask.distributed import get_worker
    return get_worker().address, clone(estimator).fit(X, y)


def test_client_map_over_many_series_equals_fitting_them_here(client):
    Xs, ys = series(12)
    estimator = FastRNNRegressor(n_hidden=6, epochs=30, random_state=0)
    here = [clone(estimator).fit(X, y) for X, y in zip(Xs, ys)]
    results = client.gather(client.map(fit_one, Xs, ys, estimator=estimator))
    assert {address for address, _ in results} == set(client.scheduler_info()["workers"])
    assert all(params_equal(model, local) for (_, model), local in zip(results, here))
    assert all(model.loss_curve_ == local.loss_curve_ for (_, model), local in zip(results, here))
    # fastrnn.fit_many on a share of the series per worker: the same models.
    shares = [client.submit(fastrnn.fit_many, estimator, Xs[i::2], ys[i::2]) for i in (0, 1)]
    many = client.gather(shares)
    assert all(params_equal(model, local)
               for i in (0, 1) for model, local in zip(many[i], here[i::2]))


def fit_big(X, y, estimator):
    from fastrnn import _parallel
    return _parallel.num_threads(), clone(estimator).fit(X, y)


def test_a_model_trained_on_threads_here_is_the_same_on_a_one_thread_worker(client,
                                                                           monkeypatch):
    """Updates big enough to be cut into chunks run them on 2 threads here
    and one after another on a worker: the same model, bit for bit."""
    from fastrnn import _train_threads
    from fastrnn._parallel import work_per_row
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "2")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(64, 50, 32))
    y = rng.integers(0, 3, 64)
    estimator = FastRNN(n_hidden=64, epochs=2, random_state=0)
    here = clone(estimator).fit(X, y)
    assert _train_threads.is_worth_it(work_per_row(here._net), 64, 50)     # trained on threads
    threads, there = client.submit(fit_big, X, y, estimator).result()
    assert threads == 1
    assert params_equal(here, there) and here.loss_curve_ == there.loss_curve_
    assert np.array_equal(here.predict_proba(X), there.predict_proba(X))


def test_grid_search_under_the_dask_backend_equals_the_local_search(client):
    joblib = require("joblib", "joblib's dask backend (scikit-learn depends on it)")
    require("sklearn", "GridSearchCV")
    from dask.distributed import get_task_stream
    from sklearn.model_selection import GridSearchCV
    rng = np.random.default_rng(0)
    X = rng.normal(size=(36, 8, 3))
    y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    search = GridSearchCV(FastRNN(epochs=15, random_state=0),
                          {"n_hidden": [2, 4, 8], "learning_rate": [0.003, 0.03]}, cv=3,
                          error_score="raise")
    here = clone_search(search).fit(X, y)
    with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        there = clone_search(search).fit(X, y)
    # joblib sends the calls in batches (keys "batch_of__fit_and_score_<n>_calls-...",
    # "mixed_batch_of_..."): every one of the 6 candidates x 3 folds ran on the workers.
    keys = [task["key"] for task in tasks.data]
    calls = [re.search(r"batch_of__fit_and_score_(\d+)_calls", key) for key in keys]
    assert sum(int(call.group(1)) for call in calls if call) >= 18, keys
    assert np.array_equal(here.cv_results_["mean_test_score"],
                          there.cv_results_["mean_test_score"])
    assert len(set(here.cv_results_["mean_test_score"])) > 1
    assert here.best_params_ == there.best_params_
    assert params_equal(here.best_estimator_, there.best_estimator_)


def clone_search(search):
    from sklearn.base import clone as sklearn_clone
    return sklearn_clone(search)
