"""What the load test shows while it runs, on stderr (stdout may carry the JSON result).

On a terminal: one status line rewritten in place after every window, with permanent lines for
each finished level. Elsewhere (a log, CI): plain lines, the status at most once per ``interval``
and every finished level.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

from exporter.loadtest.controller import Attempt, LevelOutcome

MODES = ("auto", "tty", "plain", "off")
CLEAR_LINE = "\r\x1b[K"


class Progress:
    def __init__(
        self,
        stream: TextIO,
        mode: str = "auto",
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}")
        if mode == "auto":
            mode = "tty" if stream.isatty() else "plain"
        self.stream = stream
        self.mode = mode
        self.interval = interval
        self.clock = clock
        self._last_status: float | None = None
        self._status_shown = False

    def status(self, text: str) -> None:
        """A transient line: replaced by the next one on a terminal, throttled elsewhere."""
        if self.mode == "tty":
            width = shutil.get_terminal_size().columns - 1
            self.stream.write(CLEAR_LINE + text[:width])
            self.stream.flush()
            self._status_shown = True
        elif self.mode == "plain":
            now = self.clock()
            if self._last_status is None or now - self._last_status >= self.interval:
                self._last_status = now
                self._write_line(text)

    def line(self, text: str) -> None:
        """A permanent line (a finished level, a warning)."""
        if self.mode != "off":
            self._write_line(text)

    def close(self) -> None:
        if self.mode == "tty" and self._status_shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self._status_shown = False

    def _write_line(self, text: str) -> None:
        prefix = CLEAR_LINE if self._status_shown else ""
        self._status_shown = False
        self.stream.write(f"{prefix}{text}\n")
        self.stream.flush()


def describe_attempt(attempt: Attempt, repeats: int) -> str:
    window = attempt.window
    own = ""
    if window.own_busy_percent is not None:
        own = f" (ours {window.own_busy_percent:.1f}%)"
    return (
        f"level {attempt.target:>3}% repeat {attempt.repeat}/{repeats} attempt {attempt.attempt}: "
        f"busy {window.busy_percent:5.1f}%{own} at load {window.load_percent:.1f}%, "
        f"{window.units_per_second:.1f} units/s -> {attempt.verdict.value} ({attempt.band})"
    )


def describe_level(outcome: LevelOutcome) -> str:
    verdict = "accepted" if outcome.accepted else "FAILED"
    cv = "n/a" if outcome.cv_percent is None else f"{outcome.cv_percent:.1f}%"
    text = (
        f"level {outcome.target:>3}%: busy {outcome.busy_percent:5.1f}%, "
        f"{outcome.units_per_second:8.1f} units/s, CV {cv}, "
        f"{outcome.attempts} attempts, {verdict}"
    )
    return f"{text}: {outcome.failure}" if outcome.failure else text
