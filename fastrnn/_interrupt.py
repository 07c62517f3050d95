"""Ctrl-C during compiled work: used by ``fit`` and by ``fastrnn train``.

Python runs a signal handler only between bytecodes, never during a
compiled call, so a call into a kernel cannot be interrupted from the
thread that made it. Instead the long call runs on a worker thread (the
kernels release the GIL) while the main thread waits in short steps, where
Python does run the handler. The handler sets a stop flag that the
training loops read between updates, so the call returns within one update
of the Ctrl-C, leaving the model consistent (the parameters of its last
completed update); the caller then raises KeyboardInterrupt.

A second Ctrl-C stops waiting at once: the caller raises KeyboardInterrupt
without the result of the running call (the work is lost, the model is
left as it was before that call). Off the main thread, where Python allows
no signal handler, calls run directly and nothing is held.
"""
import contextlib
import signal
import threading

import numpy as np

# How often the waiting main thread wakes (to run a handler, to show progress).
WAKE_SECONDS = 0.05


_local = threading.local()


@contextlib.contextmanager
def shared_stop(stop):
    """Within this block, a StopFlag made on this (worker) thread follows
    ``stop``, the main thread's: ``fastrnn.fit_many`` runs fits on threads
    and stops them all at a Ctrl-C."""
    previous = getattr(_local, "stop", None)
    _local.stop = stop
    try:
        yield
    finally:
        _local.stop = previous


class StopFlag:
    """An int64 (1,) array the kernels read between updates, set by the
    first Ctrl-C while active. ``hit`` says whether a Ctrl-C came."""

    def __init__(self):
        self.array = np.zeros(1, dtype=np.int64)
        self._hit = False
        self._previous = None
        self._shared = None

    @property
    def hit(self):
        return self._hit or (self._shared is not None and self._shared.hit)

    def _handler(self, signum, frame):
        if self._hit:
            raise KeyboardInterrupt
        self.set()

    def set(self):
        """Stop the calls that read this flag, as a first Ctrl-C does."""
        self._hit = True
        self.array[0] = 1

    @property
    def active(self):
        return self._previous is not None

    def __enter__(self):
        shared = getattr(_local, "stop", None)
        if shared is not None:
            self._shared, self.array = shared, shared.array
        else:
            self._previous = _install(self._handler)
        return self

    def __exit__(self, *exc):
        self._previous = _restore(self._previous)
        return False


def _install(handler):
    """``handler`` for SIGINT, on the main thread (the only one Python lets
    have one); the handler it replaces, or None elsewhere."""
    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGINT, handler)
    return None


def _restore(previous):
    """Put back what _install replaced; None, to clear the caller's record."""
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
    return None


def run_stoppable(call, stop, on_wait=None):
    """``call()``, on a worker thread while ``stop`` is active (otherwise
    here). The main thread wakes every WAKE_SECONDS, runs ``on_wait()`` if
    given and lets a Ctrl-C reach ``stop``; a second Ctrl-C raises
    KeyboardInterrupt here at once. Exceptions of ``call`` are re-raised."""
    if not stop.active:
        return call()
    outcome = {}

    def work():
        try:
            outcome["value"] = call()
        except BaseException as exc:             # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="fastrnn-fit", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(WAKE_SECONDS)
            if on_wait is not None and worker.is_alive():
                on_wait()
    except KeyboardInterrupt:
        stop.array[0] = 1                        # the worker stops after its update
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class HeldInterrupt:
    """Ctrl-C held back while something must finish whole (a model file
    being written after hours of training): ``hit`` says whether one came,
    and the caller acts on it afterwards. Off the main thread, nothing is
    held."""

    def __init__(self):
        self.hit = False
        self._previous = None

    def _handler(self, signum, frame):
        self.hit = True

    def __enter__(self):
        self._previous = _install(self._handler)
        return self

    def __exit__(self, *exc):
        self._previous = _restore(self._previous)
        return False
