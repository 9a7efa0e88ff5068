"""Progress bars for the long loops (data preparation, training, evaluation), from tqdm.

    with progress_bar(total=steps * batch, desc="epoch 3", unit="img") as bar:
        for batch in batches:
            ...
            bar.set_postfix(loss=loss, acc=accuracy, refresh=False)
            bar.update(len(batch))

On a terminal this is tqdm's usual bar, redrawn in place, with the count, the rate
(img/s), the time left and the postfix values. In a file or a CI log, redrawing in place
would pile up hundreds of '\\r' frames on one line, so there the bar writes whole lines
instead, and only when a tenth more of the work is done or ``log_seconds`` have passed:

    epoch 3: 2560/12800 (20.0%) 231.41img/s ETA 00:44, loss=2.31, acc=0.41

``initial`` is the work done before this run (a resumed job); tqdm counts the rate from
the work done in this run only, so a resumed job does not claim an impossible speed.
"""

import sys
import time

from tqdm import tqdm

LOG_SECONDS = 30.0
LOG_FORMAT = "{n_fmt}/{total_fmt} ({percentage:.1f}%) {rate_fmt} ETA {remaining}{postfix}"
LOG_FORMAT_NO_TOTAL = "{n_fmt} {rate_fmt}{postfix}"


def progress_bar(total=None, desc="", unit="it", initial=0, iterable=None, file=None, log_seconds=LOG_SECONDS):
    """A tqdm bar for ``total`` units; a plain-line log of it when ``file`` is not a terminal.

    file: where to write (stderr by default). log_seconds: in a log, the longest gap
    between two lines.
    """
    file = sys.stderr if file is None else file
    settings = dict(iterable=iterable, total=total, desc=desc, unit=unit, initial=initial, file=file)
    if hasattr(file, "isatty") and file.isatty():
        return tqdm(**settings, dynamic_ncols=True)
    has_total = total is not None or (iterable is not None and hasattr(iterable, "__len__"))
    line = LOG_FORMAT if has_total else LOG_FORMAT_NO_TOTAL
    return LogLines(**settings, log_seconds=log_seconds, bar_format="{desc}: " + line if desc else line)


class LogLines(tqdm):
    """tqdm writing one whole line per report, at each tenth of the work and at least every
    ``log_seconds``, for output that is read later rather than watched."""

    def __init__(self, *args, log_seconds=LOG_SECONDS, **kwargs):
        self.log_seconds = log_seconds
        self.logged_n, self.logged_at = None, 0.0
        # tqdm asks display() after every update; display() decides whether a line is due
        super().__init__(*args, mininterval=0, miniters=1, maxinterval=0, smoothing=0, **kwargs)

    def display(self, msg=None, pos=None):
        if msg is not None:     # tqdm clearing its line: a log keeps its lines
            return False
        if self.line_due():
            self.write_line()
        return True

    def line_due(self):
        if self.logged_n is None or time.monotonic() - self.logged_at >= self.log_seconds:
            return True
        return bool(self.total) and 10 * self.n // self.total > 10 * self.logged_n // self.total

    def write_line(self):
        self.fp.write(self.__str__() + "\n")
        self.fp.flush()
        self.logged_n, self.logged_at = self.n, time.monotonic()

    def close(self):
        if not self.disable and self.n != self.logged_n:
            self.write_line()    # the final state, once
        self.leave = False       # nothing to clear or redraw
        super().close()
