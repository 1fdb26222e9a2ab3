"""Name lookups with a deadline, which the system resolver does not take.

``socket.getaddrinfo`` has no timeout: a nameserver that does not answer holds it for
resolv.conf's timeout times its attempts (10 s by default), and nothing can interrupt it. So a
name (a host, port, address family and socket type) is looked up on a daemon thread of its own,
started at its first lookup and kept for the next ones, while each caller waits with what is
left of its deadline. At most one lookup of a name is in flight: a caller arriving meanwhile
waits for that one rather than start another, so a dead nameserver costs one thread per name,
not one per connection attempt. An error the lookup gives in time is raised (a name that no
longer resolves fails). An IP address needs no lookup and no thread.

A lookup that outlives its callers goes on, and what it answers is kept for the next, as each
``NameLookups`` is told:

* ``late_answer_fresh_for``: an answer nobody waited for to the end serves the next caller that
  comes within so many seconds of it, without asking again (a slow nameserver's answer serves
  the exporter's next request);
* ``last_answer_when_late``: a caller whose own lookup is late takes the last answer any lookup
  gave, however old (a resolver that takes 2 s would otherwise keep ingest's Redis, asked with
  a 0.1 s timeout, unreachable for good).

Lookup threads do not survive a fork, nor will their answers come: a forked child (a gunicorn
worker) starts every ``NameLookups`` afresh.

Standard library only: the exporter imports this, and its memory is counted.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

AddressInfo = tuple[Any, ...]  # one of getaddrinfo's tuples
LATE_ANSWER_FRESH = 30.0  # seconds a late answer serves the next connection (exporter, storage)

_Key = tuple[str, int, int, int]  # host, port, family, socket type


class LookupTimedOut(TimeoutError):
    """No answer by the caller's deadline (and no late answer that serves)."""


class LookupAborted(Exception):
    """The caller's ``aborted()`` said so while it waited for a lookup."""


class NameLookups:
    """``getaddrinfo`` with a deadline (module docstring); safe to share between threads.

    ``thread_name`` names the lookup threads. ``late_answer_fresh_for`` and
    ``last_answer_when_late`` say what a lookup's late answer is good for (module docstring);
    by default, nothing: each caller waits for a lookup of its own time or for none.
    """

    def __init__(
        self,
        thread_name: str = "name-lookup",
        *,
        late_answer_fresh_for: float = 0.0,
        last_answer_when_late: bool = False,
    ) -> None:
        if not late_answer_fresh_for >= 0:
            raise ValueError(
                f"late_answer_fresh_for must be 0 or more seconds, not {late_answer_fresh_for!r}"
            )
        self.thread_name = thread_name
        self.late_answer_fresh_for = late_answer_fresh_for
        self.last_answer_when_late = last_answer_when_late
        self._lock = threading.Lock()
        self._names: dict[_Key, _Name] = {}
        _EVERY_INSTANCE.add(self)

    def resolve(
        self,
        host: str,
        port: int,
        deadline: float,
        *,
        family: int = 0,
        socktype: int = socket.SOCK_STREAM,
        aborted: Callable[[], bool] | None = None,
    ) -> list[AddressInfo]:
        """``getaddrinfo(host, port, family, socktype)``'s answer by ``deadline``
        (``time.monotonic()``). Raises LookupTimedOut (a TimeoutError) at the deadline, unless a late answer
        serves; LookupAborted once ``aborted()`` says so (it is asked again at each ``wake``);
        socket.gaierror for a gaierror the lookup gave in time, OSError naming the host for
        any other error (UnicodeError for a name IDNA cannot encode)."""
        if is_numeric_host(host):
            return socket.getaddrinfo(host, port, family, socktype, 0, socket.AI_NUMERICHOST)
        key = (host, port, family, socktype)
        with self._lock:
            name = self._names.get(key)
            if name is None:
                name = self._names[key] = _Name(self._lock)
            if name.unclaimed:
                name.unclaimed = False  # served once at most, or dropped for a new lookup
                age = time.monotonic() - name.answered_at
                if self.late_answer_fresh_for > 0 and age <= self.late_answer_fresh_for:
                    return _for_caller(host, name.result)
            result = self._await(key, name, deadline, aborted)
        return _for_caller(host, result)

    def wake(self) -> None:
        """Have every caller waiting for a lookup ask its ``aborted()`` again."""
        with self._lock:
            for name in self._names.values():
                name.changed.notify_all()

    def forget(self) -> None:
        """Drop every lookup and answer: in a forked child none of the lookup threads runs,
        nor will their answers come, and the lock may have been held by one of them."""
        self._lock = threading.Lock()
        self._names = {}

    def _await(
        self, key: _Key, name: _Name, deadline: float, aborted: Callable[[], bool] | None
    ) -> list[AddressInfo] | Exception:
        """The result of the lookup in flight, or of one started now (the lock held)."""
        if not (name.wanted or name.running):
            if name.thread is None:
                thread = threading.Thread(
                    target=_look_up_when_asked, args=(key, name), name=self.thread_name, daemon=True
                )
                thread.start()
                name.thread = thread
            name.wanted = True
            name.changed.notify_all()
        awaited = name.finished + 1
        name.waiting += 1
        try:
            while name.finished < awaited:
                if aborted is not None and aborted():
                    raise LookupAborted(f"looking {key[0]} up: aborted")
                left = deadline - time.monotonic()
                if left <= 0:
                    if self.last_answer_when_late and name.last_answer is not None:
                        return name.last_answer
                    raise LookupTimedOut(f"looking {key[0]} up: no answer by the deadline")
                name.changed.wait(left)
        finally:
            name.waiting -= 1
        assert name.result is not None
        return name.result


class _Name:
    """One name's lookups: its thread, the lookup asked for or in flight, the last result."""

    __slots__ = (
        "answered_at",
        "changed",
        "finished",
        "last_answer",
        "result",
        "running",
        "thread",
        "unclaimed",
        "waiting",
        "wanted",
    )

    def __init__(self, lock: threading.Lock) -> None:
        self.changed = threading.Condition(lock)
        self.thread: threading.Thread | None = None
        self.wanted = False  # a lookup was asked for and has not begun
        self.running = False
        self.finished = 0  # lookups finished: a caller's is done once this passes its number
        self.waiting = 0  # callers waiting for the lookup asked for or in flight
        self.result: list[AddressInfo] | Exception | None = None  # the last lookup's
        self.answered_at = 0.0  # time.monotonic() when it came
        self.unclaimed = False  # it came with nobody waiting for it
        self.last_answer: list[AddressInfo] | None = None  # the last lookup's that succeeded


def _look_up_when_asked(key: _Key, name: _Name) -> None:
    """A name's thread: each lookup asked for, one after another, for the process's life."""
    host, port, family, socktype = key
    while True:
        with name.changed:
            while not name.wanted:
                name.changed.wait()
            name.wanted = False
            name.running = True
        result: list[AddressInfo] | Exception
        try:
            result = socket.getaddrinfo(host, port, family, socktype)
        except Exception as exc:  # gaierror, or UnicodeError for a name IDNA cannot encode
            result = exc
        with name.changed:
            name.running = False
            name.result = result
            name.finished += 1
            name.answered_at = time.monotonic()
            name.unclaimed = name.waiting == 0
            if isinstance(result, list) and result:
                name.last_answer = result
            name.changed.notify_all()


def _for_caller(host: str, result: list[AddressInfo] | Exception | None) -> list[AddressInfo]:
    """The answer, or a new exception for each caller (one raised in several threads would mix
    their tracebacks): a gaierror as it was, any other as an OSError naming the host, which
    is what a failed connect raises."""
    if isinstance(result, list):
        return list(result)
    if isinstance(result, socket.gaierror):
        raise socket.gaierror(*result.args)
    raise OSError(f"looking {host} up: {type(result).__name__}: {result}")


def is_numeric_host(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address (with a zone, as fe80::1%eth0, too), which
    getaddrinfo turns into a socket address without asking any nameserver."""
    address, percent, zone = host.partition("%")
    families = (socket.AF_INET6,) if percent else (socket.AF_INET, socket.AF_INET6)
    if percent and not zone:
        return False
    for family in families:
        try:
            socket.inet_pton(family, address)
        except OSError:
            continue
        return True
    return False


_EVERY_INSTANCE: weakref.WeakSet[NameLookups] = weakref.WeakSet()


def _forget_after_fork() -> None:
    for lookups in list(_EVERY_INSTANCE):
        lookups.forget()


os.register_at_fork(after_in_child=_forget_after_fork)
