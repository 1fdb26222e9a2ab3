"""StatfsRunner: statfs(2) with a deadline; a hung mount is skipped until its call returns."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from exporter.collectors.statfs import MountTimeoutError, StatfsRunner

TIMEOUT = 0.3
SLACK = 1.0


def statvfs(blocks: int) -> os.statvfs_result:
    return os.statvfs_result((4096, 4096, blocks, blocks // 2, blocks // 4, 1000, 900, 900, 0, 255))


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class FakeStatfs:
    """statfs that blocks on ``release`` for the hung paths and counts every call."""

    def __init__(self, hung: set[str], failing: frozenset[str] = frozenset()) -> None:
        self.hung = hung
        self.failing = failing
        self.release = threading.Event()
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, path: str) -> os.statvfs_result:
        with self._lock:
            self.calls[path] += 1
        if path in self.hung:
            assert self.release.wait(10), "the test never released the hung statfs"
        if path in self.failing:
            raise OSError(errno.ENOENT, "No such file or directory", path)
        return statvfs(1000 + len(path))


@pytest.fixture
def fake() -> Iterator[FakeStatfs]:
    statfs = FakeStatfs({"/stuck"}, frozenset({"/gone"}))
    yield statfs
    statfs.release.set()


def timed(runner: StatfsRunner, paths: list[str]) -> tuple[dict, float]:
    start = time.monotonic()
    results = runner.stat_many(paths)
    return results, time.monotonic() - start


def test_a_hung_path_times_out_and_the_others_return(fake: FakeStatfs) -> None:
    runner = StatfsRunner(workers=4, timeout=TIMEOUT, statfs=fake)
    results, elapsed = timed(runner, ["/a", "/stuck", "/b"])
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK
    assert isinstance(results["/stuck"], MountTimeoutError)
    assert results["/a"] == statvfs(1002)
    assert results["/b"] == statvfs(1002)
    assert runner.stuck == ["/stuck"]


def test_a_stuck_path_is_skipped_without_a_new_call(fake: FakeStatfs) -> None:
    runner = StatfsRunner(workers=4, timeout=TIMEOUT, statfs=fake)
    runner.stat_many(["/a", "/stuck"])
    results, elapsed = timed(runner, ["/a", "/stuck"])
    assert elapsed < TIMEOUT
    assert isinstance(results["/stuck"], MountTimeoutError)
    assert results["/a"] == statvfs(1002)
    assert fake.calls == Counter({"/a": 2, "/stuck": 1})


def test_a_returning_call_unmarks_the_path(fake: FakeStatfs) -> None:
    runner = StatfsRunner(workers=4, timeout=TIMEOUT, statfs=fake)
    runner.stat_many(["/stuck"])
    assert runner.stuck == ["/stuck"]
    fake.release.set()
    assert wait_until(lambda: runner.stuck == [])
    results, elapsed = timed(runner, ["/stuck"])
    assert elapsed < TIMEOUT
    assert results["/stuck"] == statvfs(1006)
    assert fake.calls["/stuck"] == 2


def test_an_error_is_returned_not_raised_and_not_stuck(fake: FakeStatfs) -> None:
    runner = StatfsRunner(workers=2, timeout=TIMEOUT, statfs=fake)
    results, elapsed = timed(runner, ["/gone", "/a"])
    assert elapsed < TIMEOUT
    assert isinstance(results["/gone"], FileNotFoundError)
    assert results["/a"] == statvfs(1002)
    assert runner.stuck == []
