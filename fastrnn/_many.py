"""Many small models at once: one model per series, fitted on threads.

The kernels release the GIL, so threads fit models in parallel; each fit
uses one thread inside (no oversubscription: n_jobs threads in all). The
results are those of fitting the models one after another: each model
sees only its own data and its own clone of the estimator, and thread
counts never change results in fastrnn.
"""
import threading
from typing import Any, Sequence, TypeVar
from concurrent.futures import ThreadPoolExecutor, wait, FIRST_EXCEPTION

from fastrnn import _parallel
from fastrnn._interrupt import StopFlag, WAKE_SECONDS, shared_stop
from fastrnn._typing import Inputs
from fastrnn._validation import check_positive_int

Estimator = TypeVar("Estimator")


def clone(estimator: Estimator) -> Estimator:
    """A new, unfitted estimator with the same parameters (scikit-learn's
    ``clone`` without scikit-learn)."""
    return type(estimator)(**estimator.get_params())


def fit_many(estimator: Estimator, Xs: Sequence[Inputs], ys: Sequence[Inputs],
             sample_weights: Sequence[Any] | None = None, *, n_jobs: int | None = None,
             **fit_params: Any) -> list[Estimator]:
    """Fit a clone of ``estimator`` on each ``(Xs[i], ys[i])`` (and
    ``sample_weights[i]``), ``n_jobs`` at a time on threads (default: the
    CPUs fastrnn may use, ``fastrnn._parallel.num_threads()``). Returns the
    fitted models, in order.

    The models equal those fitted one by one (``clone(estimator).fit(X, y)``
    in a loop). Ctrl-C stops every running fit after its current update and
    raises KeyboardInterrupt; fits not started are not run."""
    if len(Xs) != len(ys):
        raise ValueError(f"ys: expected one target set per series of Xs ({len(Xs)}), "
                         f"got {len(ys)}")
    if sample_weights is not None and len(sample_weights) != len(Xs):
        raise ValueError(f"sample_weights: expected one per series of Xs ({len(Xs)}), got "
                         f"{len(sample_weights)}")
    threads = _parallel.num_threads() if n_jobs is None else check_positive_int(n_jobs, "n_jobs")
    models = [clone(estimator) for _ in Xs]

    def fit(i):
        with _parallel.threads_limited(1):
            weight = None if sample_weights is None else sample_weights[i]
            models[i].fit(Xs[i], ys[i], weight, **fit_params)

    if threads == 1 or len(models) < 2:
        for i in range(len(models)):
            models[i].fit(Xs[i], ys[i], None if sample_weights is None else sample_weights[i],
                          **fit_params)
        return models
    cancelled = threading.Event()

    def guarded(i):
        if not cancelled.is_set():
            with shared_stop(stop):
                fit(i)

    with StopFlag() as stop, ThreadPoolExecutor(max_workers=min(threads, len(models)),
                                                thread_name_prefix="fastrnn-fit") as pool:
        futures = [pool.submit(guarded, i) for i in range(len(models))]
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=WAKE_SECONDS, return_when=FIRST_EXCEPTION)
                for future in done:
                    if future.exception() is not None:
                        cancelled.set()
                        raise future.exception()
                if stop.hit:
                    cancelled.set()
                    raise KeyboardInterrupt
        except BaseException:
            cancelled.set()
            stop.set()                           # the running fits stop after their update
            raise
    return models
