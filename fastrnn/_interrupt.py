"""Ctrl-C held until a good moment: used by ``FastRNN.fit`` (stop after a
completed block of epochs) and by ``fastrnn train`` (save the model first)."""
import signal
import threading


class HeldInterrupt:
    """While active, the first Ctrl-C only sets ``hit``; the caller stops at
    its next good moment. A second one raises KeyboardInterrupt as soon as
    Python runs again (a compiled call cannot be stopped half-way). Off the
    main thread, where Python allows no signal handler, nothing is held."""

    def __init__(self):
        self.hit = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
