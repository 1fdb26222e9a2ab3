"""A progress line on stderr: rewritten in place on a terminal, a line per tenth elsewhere."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(
        self, what: str, total: int, stream: TextIO | None = None, enabled: bool = True
    ) -> None:
        self.what = what
        self.total = max(1, total)
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started = time.monotonic()
        self._tty = self.stream.isatty()
        self._last_tenth = -1
        self._lock = threading.Lock()

    def advance(self, steps: int = 1) -> None:
        with self._lock:
            self.done = min(self.total, self.done + steps)
            if not self.enabled:
                return
            tenth = self.done * 10 // self.total
            if self._tty:
                self.stream.write("\r" + self.line())
            elif tenth != self._last_tenth:
                self.stream.write(self.line() + "\n")
            self._last_tenth = tenth
            self.stream.flush()

    def line(self) -> str:
        percent = 100 * self.done // self.total
        elapsed = time.monotonic() - self.started
        return f"{self.what}: {self.done}/{self.total} ({percent}%) {elapsed:.1f}s"

    def finish(self) -> None:
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()
