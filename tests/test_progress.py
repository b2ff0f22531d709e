"""The shared progress display: plain lines when stderr is not a terminal, a bar when it is."""
from __future__ import annotations

import io
import re

from seldbench.progress import Progress, format_duration


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_every_tenth_with_eta():
    out, clock = io.StringIO(), _Clock()
    with Progress(170, "synth", unit="clips", stream=out, clock=clock) as p:
        for _ in range(170):
            clock.t += 1.0
            p.update()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 11  # 0, 17, 34, ..., 170
    assert lines[0] == "synth: 0/170 clips (0%), 0s elapsed"
    assert lines[1] == "synth: 17/170 clips (10%), 17s elapsed, ETA 2m33s"
    assert lines[-1] == "synth: 170/170 clips (100%), 2m50s elapsed"
    assert all(len(line) < 100 for line in lines)


def test_plain_lines_every_30_s_when_slow():
    out, clock = io.StringIO(), _Clock()
    p = Progress(1000, "cache", stream=out, clock=clock)
    for _ in range(3):
        clock.t += 31.0
        p.update()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and re.fullmatch(r"cache: 3/1000 items \(0%\), 1m33s elapsed, ETA 8h\d\dm\d\ds",
                                            lines[-1])


def test_silent_when_disabled_and_bar_on_a_terminal():
    out = io.StringIO()
    with Progress(5, "x", stream=out, enabled=False) as p:
        p.update(5)
    assert out.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    with Progress(4, "synth", unit="clips", stream=tty) as p:
        for _ in range(4):
            p.update()
    assert "\r" in tty.getvalue() and "4/4" in tty.getvalue()


def test_format_duration():
    assert [format_duration(s) for s in (0, 6.4, 245, 3723)] == ["0s", "6s", "4m05s", "1h02m03s"]
