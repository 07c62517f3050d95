"""Calls that might block forever (a FIFO), run so that a regression fails
the test instead of hanging the suite."""
import threading

import pytest


def call_with_timeout(function, seconds, unblock=None):
    """function() in a thread: its result or the exception it raised; fail
    (after calling ``unblock`` to release the thread) if it takes longer
    than ``seconds``."""
    outcome = []

    def run():
        try:
            outcome.append(function())
        except BaseException as exc:   # noqa: BLE001 - handed back to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if unblock is not None:
            unblock()
        thread.join(5)
        pytest.fail(f"blocked for more than {seconds} s")
    return outcome[0]
