"""perfanalysis/namelookup.py: getaddrinfo with a deadline, one lookup per name in flight, late
answers kept for the next caller as each user of it needs, abort, and a fresh start after fork."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from perfanalysis.namelookup import LookupAborted, NameLookups, is_numeric_host
from perfanalysis.testing.servers import wait_until

NAME = "db.lookup.test"  # answered by StandIn only
OTHER = "other.lookup.test"  # answered by StandIn only, never slowly
PORT = 8086
BUDGET = 0.3  # a caller's time for a lookup that does not answer
MARGIN = 1.0  # what a loaded machine may add to it
GIVE_UP = 10.0  # a slow lookup answers by then even if never released

_names = itertools.count()


class StandIn:
    """``socket.getaddrinfo``'s stand-in: NAME and OTHER are 127.0.0.1, NAME only once
    ``release`` is set while ``slow``; ``error``, when set, is raised instead of answering NAME.
    Other names go to the real resolver. ``calls`` counts NAME's lookups, ``pending`` those
    under way."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.slow = False
        self.error: Exception | None = None
        self.release = threading.Event()
        self.calls = 0
        self.pending = 0
        self._lock = threading.Lock()

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == OTHER:
            return self.real("127.0.0.1", port, *args, **kwargs)
        if host != NAME:
            return self.real(host, port, *args, **kwargs)
        with self._lock:
            self.calls += 1
            self.pending += 1
        try:
            if self.slow:
                self.release.wait(GIVE_UP)
            if self.error is not None:
                raise self.error
            return self.real("127.0.0.1", port, *args, **kwargs)
        finally:
            with self._lock:
                self.pending -= 1


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    stand_in = StandIn(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", stand_in)
    yield stand_in
    stand_in.release.set()
    wait_until(lambda: stand_in.pending == 0, GIVE_UP, what="the lookups to end")


def thread_name() -> str:
    """A name of this test's own for its lookup threads, to count them."""
    return f"test-lookup-{next(_names)}"


def threads_named(name: str) -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == name)


def lookup_under_way(resolver: StandIn, count: int = 1) -> None:
    """Wait until ``count`` lookups of NAME are in getaddrinfo (their thread may start late)."""
    wait_until(lambda: resolver.pending == count, GIVE_UP, 0.01, f"{count} lookups under way")


def addresses(answer: list[Any]) -> set[str]:
    return {entry[4][0] for entry in answer}


def test_a_lookup_that_does_not_answer_times_out_at_the_deadline_and_goes_on(
    resolver: StandIn,
) -> None:
    lookups = NameLookups(thread_name())
    resolver.slow = True
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"looking {NAME} up"):
        lookups.resolve(NAME, PORT, started + BUDGET)
    took = time.monotonic() - started
    assert BUDGET - 0.01 <= took < BUDGET + MARGIN
    lookup_under_way(resolver)  # it cannot be interrupted: it goes on


def test_callers_arriving_during_a_lookup_wait_for_it_rather_than_start_another(
    resolver: StandIn,
) -> None:
    name = thread_name()
    lookups = NameLookups(name)
    resolver.slow = True
    callers = 8
    waiting = threading.Semaphore(0)
    answers: list[list[Any]] = []

    def now_waiting() -> bool:  # asked by resolve each time before it waits
        waiting.release()
        return False

    def caller() -> None:
        answers.append(lookups.resolve(NAME, PORT, time.monotonic() + GIVE_UP, aborted=now_waiting))

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for _ in range(callers):
        assert waiting.acquire(timeout=GIVE_UP)
    resolver.release.set()
    for thread in threads:
        thread.join(GIVE_UP)
    assert [addresses(answer) for answer in answers] == [{"127.0.0.1"}] * callers
    assert resolver.calls == 1
    assert threads_named(name) == 1


def test_one_thread_serves_a_names_lookups_and_a_slow_name_does_not_hold_another(
    resolver: StandIn,
) -> None:
    name = thread_name()
    lookups = NameLookups(name)
    resolver.slow = True
    with pytest.raises(TimeoutError):
        lookups.resolve(NAME, PORT, time.monotonic() + BUDGET)
    for _ in range(3):
        assert addresses(lookups.resolve(OTHER, PORT, time.monotonic() + GIVE_UP)) == {"127.0.0.1"}
    assert threads_named(name) == 2  # NAME's, still waiting for its nameserver, and OTHER's


def test_a_late_answer_serves_the_next_caller_once_when_asked_to(resolver: StandIn) -> None:
    """The exporter's: a slow nameserver's answer serves the next request, which then needs
    no time for its lookup at all; the request after it looks the name up again."""
    lookups = NameLookups(thread_name(), late_answer_fresh_for=30.0)
    resolver.slow = True
    with pytest.raises(TimeoutError):
        lookups.resolve(NAME, PORT, time.monotonic() + BUDGET)
    resolver.release.set()

    def taken_with_no_time_given() -> list[Any] | None:
        try:
            return lookups.resolve(NAME, PORT, time.monotonic())
        except TimeoutError:  # the answer has not come yet
            return None

    answer = wait_until(taken_with_no_time_given, GIVE_UP, 0.01, "the late answer")
    assert addresses(answer) == {"127.0.0.1"}
    assert resolver.calls == 1
    lookups.resolve(NAME, PORT, time.monotonic() + GIVE_UP)
    assert resolver.calls == 2


def test_a_late_caller_takes_the_last_answer_when_asked_to(resolver: StandIn) -> None:
    """Ingest's Redis client: a resolver slower than the connect timeout still lets it connect."""
    lookups = NameLookups(thread_name(), last_answer_when_late=True)
    without_it = NameLookups(thread_name())
    first = lookups.resolve(NAME, PORT, time.monotonic() + GIVE_UP)
    assert without_it.resolve(NAME, PORT, time.monotonic() + GIVE_UP) == first
    resolver.slow = True
    assert lookups.resolve(NAME, PORT, time.monotonic() + BUDGET) == first
    with pytest.raises(TimeoutError):
        without_it.resolve(NAME, PORT, time.monotonic() + BUDGET)
    lookup_under_way(resolver, 2)  # one for each: they share nothing


def test_an_error_given_in_time_is_raised_even_after_an_answer(resolver: StandIn) -> None:
    """A name that no longer resolves fails: the last answer serves only a late lookup."""
    lookups = NameLookups(thread_name(), last_answer_when_late=True)
    assert lookups.resolve(NAME, PORT, time.monotonic() + GIVE_UP)
    resolver.error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    raised = []
    for _ in range(2):
        with pytest.raises(socket.gaierror, match="Name or service not known") as error:
            lookups.resolve(NAME, PORT, time.monotonic() + GIVE_UP)
        raised.append(error.value)
    assert raised[0] is not raised[1] is not resolver.error  # each caller's own
    assert raised[0].errno == socket.EAI_NONAME


def test_an_error_other_than_gaierror_is_an_oserror_naming_the_host(resolver: StandIn) -> None:
    lookups = NameLookups(thread_name())
    resolver.error = UnicodeError("label too long")
    with pytest.raises(OSError, match=f"looking {NAME} up: UnicodeError: label too long"):
        lookups.resolve(NAME, PORT, time.monotonic() + GIVE_UP)


def test_abort_ends_the_wait_at_once_and_the_lookup_goes_on(resolver: StandIn) -> None:
    lookups = NameLookups(thread_name())
    resolver.slow = True
    waiting = threading.Event()
    abort = threading.Event()
    raised: list[BaseException] = []

    def aborted() -> bool:
        waiting.set()
        return abort.is_set()

    def caller() -> None:
        try:
            lookups.resolve(NAME, PORT, time.monotonic() + GIVE_UP, aborted=aborted)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=caller, daemon=True)
    thread.start()
    assert waiting.wait(GIVE_UP)
    lookup_under_way(resolver)
    assert resolver.calls == 1
    abort.set()
    woken = time.monotonic()
    lookups.wake()
    thread.join(GIVE_UP)
    assert not thread.is_alive()
    assert time.monotonic() - woken < MARGIN
    assert [type(exc) for exc in raised] == [LookupAborted]
    assert (resolver.calls, resolver.pending) == (1, 1)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_an_ip_address_needs_no_lookup_nor_thread_nor_time(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo
    flags: list[int] = []

    def recording(*args: Any) -> Any:
        flags.append(args[5] if len(args) > 5 else 0)
        return real(*args)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    name = thread_name()
    lookups = NameLookups(name)
    answer = lookups.resolve(host, PORT, time.monotonic() - 1)  # a deadline already passed
    assert addresses(answer) == {host}
    assert flags == [socket.AI_NUMERICHOST]
    assert threads_named(name) == 0


@pytest.mark.parametrize(
    ("host", "numeric"),
    [
        ("192.0.2.1", True),
        ("2001:db8::1", True),
        ("fe80::1%eth0", True),
        ("fe80::1%", False),
        ("192.0.2.1%eth0", False),
        ("influxdb", False),
        ("db.example.com", False),
        ("", False),
    ],
)
def test_is_numeric_host(host: str, numeric: bool) -> None:
    assert is_numeric_host(host) is numeric


def test_a_forked_child_looks_names_up_afresh(resolver: StandIn) -> None:
    """The parent's lookup threads do not come along into a gunicorn worker, nor will their
    answers: without starting afresh, the child would wait for a lookup that never ends."""
    lookups = NameLookups(thread_name())
    resolver.slow = True
    with pytest.raises(TimeoutError):
        lookups.resolve(NAME, PORT, time.monotonic() + BUDGET)
    lookup_under_way(resolver)
    resolver.slow = False  # the child's own lookup answers at once
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, Python 3.12+
        pid = os.fork()
    if pid == 0:
        code = 3
        try:
            answer = lookups.resolve(NAME, PORT, time.monotonic() + 5.0)
            code = 0 if addresses(answer) == {"127.0.0.1"} else 2
        except TimeoutError:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "1: the child waited for the parent's lookup"


def test_a_negative_freshness_is_refused() -> None:
    with pytest.raises(ValueError, match="late_answer_fresh_for must be 0 or more seconds"):
        NameLookups(late_answer_fresh_for=-1.0)
