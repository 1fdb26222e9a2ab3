"""statfs(2) off the scrape path, with a deadline: a dead NFS mount can never hang a scrape.

A scrape hands all its paths to one worker thread as one job and waits for the job, not for each
call: every wake-up between threads costs tens of microseconds of CPU, against a few for a
statfs, so a host with dozens of mounts pays for one handoff, not dozens. When the job has not
finished after ``straggle`` seconds, the paths it has not started go to another worker as a new
job, so one slow mount delays the others by ``straggle`` at most.

A call that misses the scrape's deadline marks its mount point stuck: later scrapes skip it (no
new thread piles up behind it) until the blocked call returns, which unmarks it. The number of
threads is bounded by the worker count plus the stuck mounts. A call that never started before the
deadline (every worker busy on a hung mount) is withdrawn and reported, but its mount is not marked
stuck: nothing is known about it yet.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

StatFn = Callable[[str], Any]

STRAGGLE = 0.05  # seconds a job may run before the paths it has not started move to another worker
_PENDING = object()


class MountTimeoutError(Exception):
    """The statfs call did not return within the mount timeout."""


class Job:
    """Paths for one worker to stat in order. Under ``lock``: ``started`` paths have been taken by
    the worker, those from ``end`` on were withdrawn, ``late`` ones were marked stuck."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.results: list[Any] = [_PENDING] * len(paths)
        self.lock = threading.Lock()
        self.started = 0
        self.end = len(paths)
        self.late: set[int] = set()
        self.finished = threading.Event()

    def withdraw_unstarted(self) -> list[str]:
        """Take back the paths the worker has not started (call with ``lock`` held)."""
        unstarted = self.paths[self.started : self.end]
        self.end = self.started
        return unstarted

    def running(self) -> bool:
        """Whether the worker is inside a call (call with ``lock`` held)."""
        return self.started > 0 and self.results[self.started - 1] is _PENDING


class StatfsRunner:
    def __init__(
        self,
        workers: int = 4,
        timeout: float = 5.0,
        statfs: StatFn = os.statvfs,
        straggle: float = STRAGGLE,
        name: str = "statfs",
        subject: str = "the mount",
    ) -> None:
        """``statfs`` may be any call on a path that can block (cpufreq reads a policy with
        it); ``name`` names the threads and the call in the log, ``subject`` what is stuck."""
        self.workers = workers
        self.timeout = timeout
        self.statfs = statfs
        self.name = name
        self.subject = subject
        self.straggle = min(straggle, timeout)
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # workers waiting for a job that no submitted job has claimed yet
        self._backlog = 0  # queued jobs that no worker has been claimed for
        self._stuck: set[str] = set()

    @property
    def stuck(self) -> list[str]:
        with self._lock:
            return sorted(self._stuck)

    def stat_many(self, paths: Iterable[str]) -> dict[str, Any]:
        """Map each path to its statvfs result or the exception it raised (MountTimeoutError)."""
        results: dict[str, Any] = {}
        with self._lock:
            stuck = set(self._stuck)
        wanted = []
        for path in dict.fromkeys(paths):
            if path in stuck:
                results[path] = MountTimeoutError("mountpoint timeout")
            else:
                wanted.append(path)
        if wanted:
            results.update(self._run(wanted, time.monotonic() + self.timeout))
        return results

    def _run(self, paths: list[str], deadline: float) -> dict[str, Any]:
        job = self._submit(paths)
        results: dict[str, Any] = {}
        while not job.finished.wait(min(self.straggle, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                break
            with job.lock:
                # a job no worker has taken up would only queue again behind the same busy
                # workers; one between two calls is checked again after another ``straggle``
                unstarted = job.withdraw_unstarted() if job.running() else []
            if unstarted:
                results.update(self._run(unstarted, deadline))
        with job.lock:
            for path in job.withdraw_unstarted():
                results[path] = MountTimeoutError("no free statfs worker")
            for index in range(job.end):
                path, result = job.paths[index], job.results[index]
                if result is _PENDING:
                    job.late.add(index)
                    self._mark_stuck(path)  # before the worker can see ``late`` and unmark it
                    result = MountTimeoutError("mountpoint timeout")
                results[path] = result
        return results

    def _submit(self, paths: list[str]) -> Job:
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
            threading.Thread(target=self._work, name=self.name, daemon=True).start()
        job = Job(paths)
        self._jobs.put(job)
        return job

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            self._run_job(job)
            job.finished.set()
            with self._lock:
                if self._backlog:
                    self._backlog -= 1  # take a job that was queued without a worker
                else:
                    self._idle += 1

    def _run_job(self, job: Job) -> None:
        while True:
            with job.lock:
                if job.started >= job.end:
                    return
                index = job.started
                job.started += 1
            path = job.paths[index]
            try:
                result: Any = self.statfs(path)
            except BaseException as exc:  # a worker must outlive anything a call raises
                result = exc
            with job.lock:
                job.results[index] = result
                late = index in job.late
            if late:
                self._recovered(path)

    def _mark_stuck(self, path: str) -> None:
        with self._lock:
            self._stuck.add(path)
        log.warning(
            "%s on %s did not return within %.1fs: marking %s stuck",
            self.name, path, self.timeout, self.subject,
        )  # fmt: skip

    def _recovered(self, path: str) -> None:
        with self._lock:
            self._stuck.discard(path)
        log.warning("%s on %s returned again: %s is no longer stuck", self.name, path, self.subject)
