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


class ThreadRecordingStatfs(FakeStatfs):
    """FakeStatfs that also records which thread ran each call."""

    def __init__(self, hung: set[str]) -> None:
        super().__init__(hung)
        self.threads: dict[str, int] = {}

    def __call__(self, path: str) -> os.statvfs_result:
        self.threads[path] = threading.get_ident()
        return super().__call__(path)


def test_a_scrape_is_one_job_for_one_worker() -> None:
    statfs = ThreadRecordingStatfs(set())
    runner = StatfsRunner(workers=4, timeout=TIMEOUT, statfs=statfs)
    paths = [f"/mnt/{n}" for n in range(20)]
    for _ in range(3):
        results = runner.stat_many(paths)
        assert results == {path: statvfs(1000 + len(path)) for path in paths}
    assert len(set(statfs.threads.values())) == 1
    assert threading.get_ident() not in statfs.threads.values()
    assert statfs.calls == Counter({path: 3 for path in paths})


def test_paths_behind_a_hung_one_move_to_another_worker() -> None:
    statfs = ThreadRecordingStatfs({"/stuck"})
    try:
        runner = StatfsRunner(workers=4, timeout=TIMEOUT, statfs=statfs, straggle=0.05)
        results, elapsed = timed(runner, ["/stuck", "/a", "/b"])
        assert TIMEOUT <= elapsed < TIMEOUT + SLACK
        assert isinstance(results["/stuck"], MountTimeoutError)
        assert results["/a"] == statvfs(1002)
        assert results["/b"] == statvfs(1002)
        assert statfs.threads["/a"] == statfs.threads["/b"] != statfs.threads["/stuck"]
        assert runner.stuck == ["/stuck"]
        assert statfs.calls == Counter({"/stuck": 1, "/a": 1, "/b": 1})
    finally:
        statfs.release.set()


def test_calls_no_worker_could_start_are_reported_but_not_marked_stuck() -> None:
    statfs = FakeStatfs({"/stuck", "/stuck2"})
    try:
        runner = StatfsRunner(workers=1, timeout=TIMEOUT, statfs=statfs, straggle=0.05)
        results = runner.stat_many(["/stuck", "/stuck2", "/a"])
        assert str(results["/stuck"]) == "mountpoint timeout"
        assert str(results["/stuck2"]) == "no free statfs worker"
        assert str(results["/a"]) == "no free statfs worker"
        assert runner.stuck == ["/stuck"]
        assert statfs.calls == Counter({"/stuck": 1})

        # the stuck mount's thread does not count against the workers: the others get one
        results = runner.stat_many(["/stuck", "/stuck2", "/a"])
        assert str(results["/stuck2"]) == "mountpoint timeout"
        assert runner.stuck == ["/stuck", "/stuck2"]
        statfs.release.set()
        assert wait_until(lambda: runner.stuck == [])
        results = runner.stat_many(["/stuck", "/stuck2", "/a"])
        assert all(not isinstance(r, BaseException) for r in results.values())
    finally:
        statfs.release.set()


class SlowStatfs(FakeStatfs):
    """FakeStatfs whose /slow* paths take longer than the straggle time but return."""

    def __call__(self, path: str) -> os.statvfs_result:
        if path.startswith("/slow"):
            time.sleep(0.08)
        return super().__call__(path)


def test_slow_and_hung_mounts_never_lose_a_result_or_grow_the_threads() -> None:
    statfs = SlowStatfs({"/stuck"})
    paths = ["/a", "/slow1", "/b", "/slow2", "/stuck", "/c"]
    try:
        timeout = 1.0  # room for the three moves (50 ms each) on a loaded machine
        runner = StatfsRunner(workers=3, timeout=timeout, statfs=statfs, straggle=0.05)
        for _ in range(5):
            results, elapsed = timed(runner, paths)
            assert elapsed < timeout + SLACK
            assert set(results) == set(paths)
            assert isinstance(results["/stuck"], MountTimeoutError)
            for path in ("/a", "/b", "/c", "/slow1", "/slow2"):
                assert results[path] == statvfs(1000 + len(path)), path
            assert runner.stuck == ["/stuck"]
            assert runner._threads <= runner.workers + 1  # the one stuck mount's thread
        assert statfs.calls["/stuck"] == 1
        assert statfs.calls["/a"] == 5
        statfs.release.set()
        assert wait_until(lambda: runner.stuck == [])
        assert runner.stat_many(["/stuck"])["/stuck"] == statvfs(1006)
    finally:
        statfs.release.set()
