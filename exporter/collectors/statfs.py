"""statfs(2) off the scrape path, with a deadline: a dead NFS mount can never hang a scrape.

Calls run on a few worker threads. A call that misses its deadline marks the mount point stuck:
later scrapes skip it (no new thread piles up behind it) until the blocked call returns, which
unmarks it. The number of threads is bounded by the worker count plus the stuck mounts. A call that
never started before the deadline (every worker busy on a hung mount) is cancelled and reported, but
its mount is not marked stuck: nothing is known about it yet.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

log = logging.getLogger(__name__)

StatFn = Callable[[str], Any]


class MountTimeoutError(Exception):
    """The statfs call did not return within the mount timeout."""


class StatfsRunner:
    def __init__(self, workers: int = 4, timeout: float = 5.0, statfs: StatFn = os.statvfs) -> None:
        self.workers = workers
        self.timeout = timeout
        self.statfs = statfs
        self._jobs: queue.SimpleQueue[tuple[str, Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # workers waiting for a job that no submitted job has claimed yet
        self._backlog = 0  # queued jobs that no worker has been claimed for
        self._stuck: dict[str, Future[Any]] = {}

    @property
    def stuck(self) -> list[str]:
        with self._lock:
            return sorted(self._stuck)

    def stat_many(self, paths: Iterable[str]) -> dict[str, Any]:
        """Map each path to its statvfs result or the exception it raised (MountTimeoutError)."""
        results: dict[str, Any] = {}
        pending: list[tuple[str, Future[Any]]] = []
        for path in paths:
            with self._lock:
                if path in self._stuck:
                    results[path] = MountTimeoutError("mountpoint timeout")
                    continue
            job: Future[Any] = Future()
            pending.append((path, job))
            self._submit(path, job)
        deadline = time.monotonic() + self.timeout
        for path, job in pending:
            try:
                results[path] = job.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                if job.cancel():  # still queued: its statfs never ran, the mount is not to blame
                    results[path] = MountTimeoutError("no free statfs worker")
                    continue
                self._mark_stuck(path, job)
                results[path] = MountTimeoutError("mountpoint timeout")
            except Exception as exc:
                results[path] = exc
        return results

    def _submit(self, path: str, job: Future[Any]) -> None:
        with self._lock:
            start = False
            if self._idle:
                self._idle -= 1  # claim a waiting worker: the next job must not count it again
            elif self._threads < self.workers + len(self._stuck):
                self._threads += 1
                start = True
            else:
                self._backlog += 1
        if start:
            threading.Thread(target=self._work, name="statfs", daemon=True).start()
        self._jobs.put((path, job))

    def _work(self) -> None:
        while True:
            path, job = self._jobs.get()
            if job.set_running_or_notify_cancel():
                try:
                    job.set_result(self.statfs(path))
                except BaseException as exc:
                    job.set_exception(exc)
            with self._lock:
                if self._backlog:
                    self._backlog -= 1  # take a job that was queued without a worker
                else:
                    self._idle += 1

    def _mark_stuck(self, path: str, job: Future[Any]) -> None:
        with self._lock:
            self._stuck[path] = job
        log.warning(
            "statfs on %s did not return within %.1fs: marking the mount stuck", path, self.timeout
        )
        job.add_done_callback(lambda _: self._recovered(path))

    def _recovered(self, path: str) -> None:
        with self._lock:
            self._stuck.pop(path, None)
        log.warning("statfs on %s returned again: the mount is no longer stuck", path)
