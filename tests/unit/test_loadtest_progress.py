"""The progress display: a rewritten status line on a terminal, throttled plain lines elsewhere."""

from __future__ import annotations

import io

from exporter.loadtest.controller import Attempt, Band, LevelOutcome, Verdict, Window
from exporter.loadtest.progress import Progress, describe_attempt, describe_level


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_status_line_rewritten_in_place() -> None:
    stream = Terminal()
    progress = Progress(stream)
    progress.status("level 10%")
    progress.status("level 20%")
    progress.line("level 20%: accepted")
    progress.status("level 30%")
    progress.close()
    assert stream.getvalue() == (
        "\r\x1b[Klevel 10%\r\x1b[Klevel 20%\r\x1b[Klevel 20%: accepted\n\r\x1b[Klevel 30%\r\x1b[K"
    )


def test_elsewhere_plain_lines_at_most_one_status_per_interval() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(stream, interval=2.0, clock=lambda: now[0])
    for second in range(5):
        now[0] = float(second)
        progress.status(f"status {second}")
    progress.line("level done")
    progress.close()
    assert stream.getvalue().splitlines() == ["status 0", "status 2", "status 4", "level done"]


def test_off_shows_nothing() -> None:
    stream = Terminal()
    progress = Progress(stream, mode="off")
    progress.status("x")
    progress.line("y")
    progress.close()
    assert stream.getvalue() == ""


def test_descriptions() -> None:
    window = Window(46.0, 50.4, 138.0, own_busy_percent=48.9)
    attempt = Attempt(50, 2, 3, window, Verdict.ACCEPTED, Band(50, 3.0, 95.0))
    assert describe_attempt(attempt, 3) == (
        "level  50% repeat 2/3 attempt 3: busy  50.4% (ours 48.9%) at load 46.0%, "
        "138.0 units/s -> accepted (47-53%)"
    )
    failed = LevelOutcome(90, [Window(90.0, 80.0, 150.0)], 11, False, "level 90%: outside")
    assert describe_level(failed) == (
        "level  90%: busy  80.0%,    150.0 units/s, CV n/a, 11 attempts, FAILED: level 90%: outside"
    )
