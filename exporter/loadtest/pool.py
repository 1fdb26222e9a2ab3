"""One worker process per vCPU, started with ``spawn`` and driven one window at a time."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType

from exporter.loadtest.worker import READY, WindowCommand, WindowReport, serve

READY_TIMEOUT = 120.0  # seconds for every worker to start and run its first unit
REPORT_GRACE = 30.0  # seconds past a deadline a worker may take to report
STOP_TIMEOUT = 5.0


class PoolError(Exception):
    """A worker failed to start, died or stopped answering."""


def split_quota(total: int, workers: int) -> list[int]:
    """``total`` units as evenly as possible over ``workers`` (the first ones take the remainder)."""
    base, extra = divmod(total, workers)
    return [base + (1 if index < extra else 0) for index in range(workers)]


class WorkerPool:
    def __init__(self, workers: int, pin_cpus: Sequence[int] | None = None) -> None:
        if workers < 1:
            raise ValueError("at least one worker is needed")
        self.workers = workers
        self.pin_cpus = list(pin_cpus) if pin_cpus else None
        self._processes: list[BaseProcess] = []
        self._connections: list[Connection] = []

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:  # a worker that failed to start, or Ctrl-C while starting
            self.close()
            raise

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        for index in range(self.workers):
            cpu = self.pin_cpus[index % len(self.pin_cpus)] if self.pin_cpus else None
            ours, theirs = context.Pipe()
            process = context.Process(
                target=serve, args=(theirs, cpu), name=f"loadtest-worker-{index}", daemon=True
            )
            process.start()
            theirs.close()
            self._processes.append(process)
            self._connections.append(ours)
        until = time.monotonic() + READY_TIMEOUT
        for index, connection in enumerate(self._connections):
            if self._receive(index, connection, until) != READY:
                raise PoolError(f"worker {index} sent an unexpected greeting")

    def dispatch(self, start: float, deadline: float, quota: int | None) -> None:
        """Send every worker the window; ``quota`` is the total for all workers (None: flat out)."""
        shares: list[int | None] = (
            [None] * self.workers if quota is None else list(split_quota(quota, self.workers))
        )
        for index, (connection, share) in enumerate(zip(self._connections, shares, strict=True)):
            try:
                connection.send(WindowCommand(start, deadline, share))
            except OSError as exc:
                raise PoolError(f"worker {index} is gone: {exc}") from None

    def collect(self, deadline: float) -> list[WindowReport]:
        until = deadline + REPORT_GRACE
        reports = []
        for index, connection in enumerate(self._connections):
            report = self._receive(index, connection, until)
            if not isinstance(report, WindowReport):
                raise PoolError(f"worker {index} sent {report!r} instead of a window report")
            reports.append(report)
        return reports

    def _receive(self, index: int, connection: Connection, until: float) -> object:
        try:
            if not connection.poll(max(0.0, until - time.monotonic())):
                raise PoolError(f"worker {index} did not answer in time")
            return connection.recv()
        except (EOFError, OSError):
            code = self._processes[index].exitcode
            raise PoolError(f"worker {index} exited (exit code {code})") from None

    def close(self) -> None:
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.send(None)
        until = time.monotonic() + STOP_TIMEOUT
        for process in self._processes:
            process.join(max(0.0, until - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(STOP_TIMEOUT)
        for connection in self._connections:
            connection.close()
        self._processes.clear()
        self._connections.clear()
