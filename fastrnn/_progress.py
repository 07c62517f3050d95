"""A one-line progress bar on stderr: fastrnn's only need of one does not
justify a dependency."""
import sys
import time


class ProgressBar:
    def __init__(self, total, label="epoch", stream=None, width=24):
        self.total, self.label, self.width = total, label, width
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()

    def update(self, done, loss, extra=""):
        filled = int(self.width * done / self.total)
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.label} "
                          f"{done}/{self.total}  loss {loss:.4f}  {elapsed:6.1f}s{extra}")
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()
