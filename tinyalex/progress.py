"""A small progress bar for long loops: data preparation and training.

    with Progress(total=len(files), desc="decode", unit="img") as bar:
        for image in bar.wrap(decoded_images):
            ...

    with Progress(total=steps, desc="epoch 3", unit="img") as bar:
        for batch in batches:
            ...
            bar.update(len(batch), loss=loss, acc=accuracy)

A line reads

    epoch 3: 2560/12800 (20.0%) 231.4 img/s ETA 0:00:44 loss=2.314 acc=0.4102

Two ways of drawing it, chosen by where stderr goes:

* a terminal (a TTY): one line redrawn in place with a carriage return '\\r',
  at most ten times a second;
* a file or a CI log: plain lines, only every tenth of the work or every
  `log_seconds` seconds, whichever comes first, so logs stay short.

The rate and the time left are measured from the work done in this run only, so
a resumed job (`initial` > 0) does not claim an impossible speed.
"""

import numbers
import sys
import time

TTY_REDRAW_SECONDS = 0.1


class Progress:
    """Counts work done and shows count, percent, rate, time left and postfix values.

    total: how many units the whole job has (None if unknown: then no percent
        and no time left are shown).
    desc: a short label printed first.
    unit: the name of one unit in the rate, e.g. "img" gives "231.4 img/s".
    initial: units already done before this run started (a resumed job).
    stream: where to write; stderr by default.
    log_seconds: when not on a terminal, the longest gap between two lines.
    """

    def __init__(self, total=None, desc="", unit="it", initial=0, stream=None, log_seconds=30.0):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.initial = initial
        self.count = initial
        self.postfix = {}
        self.stream = stream if stream is not None else sys.stderr
        self.log_seconds = log_seconds
        self.is_tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start_time = time.monotonic()
        self.last_draw_time = self.start_time
        self.next_log_tenth = 1  # the next 10% mark to log, counted in tenths of the total
        self.last_width = 0
        self.drawn_count = None
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    def wrap(self, iterable):
        """Yields the items of `iterable`, counting one unit for each."""
        for item in iterable:
            yield item
            self.update(1)

    def update(self, n=1, **postfix):
        """Counts `n` more units done; keyword arguments are shown after the numbers."""
        self.count += n
        self.postfix.update(postfix)
        now = time.monotonic()
        if self.is_tty:
            if now - self.last_draw_time >= TTY_REDRAW_SECONDS:
                self._draw(now)
        elif self._log_line_due(now):
            self._draw(now)

    def close(self):
        """Draws the final state, unless it is on screen already; later calls do nothing."""
        if self.closed:
            return
        self.closed = True
        if self.drawn_count != self.count:
            self._draw(time.monotonic())
        if self.is_tty:
            self.stream.write("\n")
            self.stream.flush()

    def _log_line_due(self, now):
        if now - self.last_draw_time >= self.log_seconds:
            return True
        if self.total and 10 * self.count >= self.next_log_tenth * self.total:
            # Skip the marks a big update jumped over, so each 10% prints once.
            while 10 * self.count >= self.next_log_tenth * self.total:
                self.next_log_tenth += 1
            return True
        return False

    def _draw(self, now):
        self.last_draw_time = now
        self.drawn_count = self.count
        line = self.format_line(now - self.start_time)
        if self.is_tty:
            # Pad so that a shorter line fully covers the previous one.
            self.stream.write("\r" + line.ljust(self.last_width))
            self.last_width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def format_line(self, elapsed):
        """The text of one progress line after `elapsed` seconds."""
        parts = [f"{self.desc}:" if self.desc else ""]
        done_here = self.count - self.initial
        rate = done_here / elapsed if elapsed > 0 else 0.0
        if self.total:
            parts.append(f"{self.count}/{self.total} ({100.0 * self.count / self.total:.1f}%)")
        else:
            parts.append(f"{self.count}")
        parts.append(f"{rate:.1f} {self.unit}/s")
        if self.total and rate > 0:
            parts.append("ETA " + format_seconds((self.total - self.count) / rate))
        parts.extend(f"{key}={format_value(value)}" for key, value in self.postfix.items())
        return " ".join(part for part in parts if part)


def format_seconds(seconds):
    """3725.2 -> '1:02:05' (hours are not wrapped into days)."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def format_value(value):
    """Integers and strings as they are; other numbers (Python, NumPy or CuPy
    scalars) with four significant digits."""
    if isinstance(value, (str, numbers.Integral)):
        return str(value)
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
