"""Small pieces shared by the commands of ``fastrnn`` (see ``fastrnn.cli``)."""
import argparse
import math
import os
import statistics
import sys
import threading
import time
from typing import NamedTuple


class CLIError(Exception):
    """A user mistake or an unusable input: ``fastrnn`` prints
    ``fastrnn: error: <message>`` on one line of stderr and exits with
    ``code`` (no traceback)."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


# ------------------------------------------------- argparse value checkers
def int_between(minimum, what, maximum=None):
    def check(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"expected {what} of at most {maximum:,}, "
                                             f"got {text!r}")
        return value
    return check


positive_int = int_between(1, "a positive integer")
non_negative_int = int_between(0, "an integer >= 0")


def bounded_positive_int(maximum):
    """A positive integer of at most ``maximum`` (fastrnn._limits)."""
    return int_between(1, "a positive integer", maximum)


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


seed = non_negative_int


# ------------------------------------------------------------- formatting
def format_seconds(seconds):
    """A duration with a unit that keeps 3-4 significant digits: 83.4 us, 1.25 ms, 2.31 s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s"


class Timing(NamedTuple):
    """Seconds per call: the median and the quartiles of repeated calls."""
    median: float
    low: float
    high: float

    @property
    def noisy(self):
        """The middle half of the calls spread over more than a quarter of
        the median: something else was using the machine."""
        return self.high - self.low > 0.25 * self.median


def time_calls(func, repeat, warm_up=True, clock=time.perf_counter):
    """The :class:`Timing` of ``repeat`` calls of func (after one call that
    is not timed, unless ``warm_up`` is False)."""
    if warm_up:
        func()
    times = []
    for _ in range(repeat):
        start = clock()
        func()
        times.append(clock() - start)
    if len(times) < 4:
        return Timing(statistics.median(times), min(times), max(times))
    low, median, high = statistics.quantiles(times, n=4)
    return Timing(median, low, high)


# ---------------------------------------------------------------- files
def check_writable(path, option):
    """Fail before any work if ``path`` cannot be written later as a regular
    file (through a symlink: its target), as fastrnn writes its files."""
    if os.path.isdir(path):
        raise CLIError(f"{option} {path}: is a directory; expected a file name")
    target = os.path.realpath(path)
    directory = os.path.dirname(target) or "."
    if not os.path.isdir(directory):
        raise CLIError(f"{option} {path}: the directory {directory} does not exist")
    if os.path.lexists(target):
        if not os.path.isfile(target):
            raise CLIError(f"{option} {path}: exists and is not a regular file")
        if not os.access(target, os.W_OK):
            raise CLIError(f"{option} {path}: the file is not writable")
    # The file is written beside its target, then renamed over it.
    if not os.access(directory, os.W_OK):
        raise CLIError(f"{option} {path}: cannot write in {directory}")


def matplotlib_available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


MATPLOTLIB_MISSING = ("--plot needs matplotlib, which is not installed: "
                      "pip install matplotlib  (or: pip install \"fastrnn[plot]\")")


# -------------------------------------------------------------- signals
class SlowNote:
    """Print ``message`` if the block takes longer than ``after`` seconds
    (for the first call of a kernel, which may compile it)."""

    def __init__(self, message, out, after=1.5):
        self.message, self.out, self.after = message, out, after
        self.fired = False
        self._timer = None

    def _fire(self):
        self.fired = True
        self.out(self.message)

    def __enter__(self):
        self._timer = threading.Timer(self.after, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        return False


def stdout_is_terminal():
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
