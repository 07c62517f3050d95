"""One line of progress, for ``fit(verbose=1)`` and ``fastrnn train``.

On a terminal the line is rewritten in place as often as it changes. Into a
file, a pipe or a notebook's captured output, a rewritten line would pile
up (a log once got 237 overwriting updates on one line), so only the lines
a caller keeps are written, plus one every LOG_SECONDS to show that a long
run is alive. fastrnn's only need of a progress bar does not justify a
dependency.
"""
import sys
import time

LOG_SECONDS = 10.0
LIVE_SECONDS = 0.1


def is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressLine:
    def __init__(self, stream=None, live=None):
        self.stream = stream if stream is not None else sys.stderr
        self.live = is_terminal(self.stream) if live is None else live
        self._shown = 0                      # length of the live line on screen
        self._last_write = time.perf_counter()

    def show(self, text, keep=False):
        """Show ``text``; ``keep``: as a line of its own, which stays."""
        now = time.perf_counter()
        if keep or (not self.live and now - self._last_write >= LOG_SECONDS):
            self.clear()
            self.stream.write(text + "\n")
        elif self.live:
            if now - self._last_write < LIVE_SECONDS:
                return
            self.stream.write("\r" + text + " " * max(0, self._shown - len(text)))
            self._shown = len(text)
        else:
            return
        self.stream.flush()
        self._last_write = now

    def clear(self):
        if self.live and self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0


def format_clock(seconds):
    """Elapsed time as 12.3s or 4m05s."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"
