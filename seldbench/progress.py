"""Progress of a long step (items done of a known total) on stderr, with elapsed time and ETA.

On a terminal it is a tqdm bar redrawn in place. Anywhere else (stderr redirected to a log
file, a CI job) it writes short plain lines instead: one at the start, one every ``every_frac``
of the total or every ``every_s`` seconds, whichever comes first, and one at the end::

    synth: 17/170 clips (10%), 1m12s elapsed, ETA 10m48s

API::

    with Progress(total, "synth", unit="clips") as progress:
        for item in work:
            ...
            progress.update()       # one more item done (``update(n)`` for n)

``Progress(total, desc, *, unit="items", enabled=True, stream=None, every_s=30.0,
every_frac=0.1, clock=time.monotonic)``: ``stream`` defaults to ``sys.stderr``;
``enabled=False`` makes it silent; ``clock`` (seconds) is there for tests. ``format_duration``
writes seconds as ``1h02m03s`` / ``4m05s`` / ``6s``.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``1h02m03s``, ``4m05s`` or ``6s`` (rounded to whole seconds)."""
    s = int(round(max(seconds, 0.0)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    return f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """Items done of ``total``, shown on ``stream`` (see the module docstring)."""

    def __init__(self, total: int, desc: str, *, unit: str = "items", enabled: bool = True,
                 stream: TextIO | None = None, every_s: float = 30.0, every_frac: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit = max(int(total), 0), desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every_s, self.clock = every_s, clock
        self.step = max(1, math.ceil(self.total * every_frac))
        self.done = 0
        self.enabled = enabled and self.total > 0
        self._start = clock()
        self._last_time, self._last_done = self._start, 0
        self._bar = None
        if self.enabled and _is_tty(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=f" {unit}", file=self.stream,
                             dynamic_ncols=True, leave=True)
        elif self.enabled:  # say at once that the step has started
            self._write(self._start)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self.clock()
        if (self.done >= self.total or self.done - self._last_done >= self.step
                or now - self._last_time >= self.every_s):
            self._write(now)

    def _write(self, now: float) -> None:
        self._last_time, self._last_done = now, self.done
        self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def line(self, now: float | None = None) -> str:
        """The plain progress line as of ``now`` (default: the clock)."""
        elapsed = (self.clock() if now is None else now) - self._start
        pct = 100 * self.done / self.total if self.total else 100.0
        text = (f"{self.desc}: {self.done}/{self.total} {self.unit} ({pct:.0f}%), "
                f"{format_duration(elapsed)} elapsed")
        if 0 < self.done < self.total:
            text += f", ETA {format_duration(elapsed / self.done * (self.total - self.done))}"
        return text

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
