"""The Redis rate limiter's name lookup waits at most REDIS_TIMEOUT (audit of the Redis rate
limiter): redis-py resolves the host with the system resolver, which takes no timeout, and a
dead nameserver made the first call and every probe take the resolver's whole wait (2 s in the
audit, resolv.conf's 5 s times its attempts by default)."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from redis.connection import UnixDomainSocketConnection

from ingest import ratelimit
from ingest.ratelimit import REDIS_BACKOFF, Limit, RedisTokenBucket, redis_name_lookups
from perfanalysis.testing.servers import wait_until

LIMIT = Limit(rate=10.0, burst=20)
DEADLINE = 10.0
NAME = "redis.internal"  # answered by SlowResolver only


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowResolver:
    """``socket.getaddrinfo``'s stand-in: NAME's lookups fail at once while ``unknown``, are
    answered with ``address``'s at once while ``prompt``, else only once ``release`` is set
    (failing after DEADLINE, as a dead nameserver does); other names go to the real resolver.
    ``pending`` counts NAME's lookups under way, ``calls`` all of them."""

    def __init__(self, real: Callable[..., Any], address: str = "127.0.0.1") -> None:
        self.real = real
        self.address = address
        self.prompt = False
        self.unknown = False
        self.release = threading.Event()
        self.calls = 0
        self.pending = 0
        self._lock = threading.Lock()

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return self.real(host, port, *args, **kwargs)
        with self._lock:
            self.calls += 1
            self.pending += 1
        try:
            if self.unknown:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            if not self.prompt and not self.release.wait(DEADLINE):
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            return self.real(self.address, port, *args, **kwargs)
        finally:
            with self._lock:
                self.pending -= 1


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowResolver]:
    """The stand-in, and lookups of this test's own (no answer kept from another test)."""
    stand_in = SlowResolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", stand_in)
    monkeypatch.setattr(ratelimit, "NAME_LOOKUPS", redis_name_lookups())
    yield stand_in
    stand_in.release.set()
    wait_until(lambda: stand_in.pending == 0, DEADLINE, what="the lookups to end")


class Listener:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (nor reads)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.port: int = self.server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                self.accepted.append(self.server.accept()[0])
            except TimeoutError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(DEADLINE)
        for connection in self.accepted:
            connection.close()
        self.server.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def test_a_lookup_that_does_not_answer_costs_a_call_redis_timeout_not_the_resolvers_wait(
    resolver: SlowResolver, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    limiter = RedisTokenBucket.from_url(f"redis://{NAME}:6379/0", "p:", clock=clock)
    with caplog.at_level(logging.WARNING, logger="ingest.ratelimit"):
        assert limiter.acquire("t", 20, LIMIT) == 0.0  # the local bucket
    # without a bound the call returned only when the lookup failed, DEADLINE later
    wait_until(lambda: resolver.pending == 1, DEADLINE, what="the lookup still under way")
    assert not limiter.shared
    assert f"looking {NAME} up took over 0.1s" in caplog.text
    clock.now += REDIS_BACKOFF
    limiter.acquire("t", 1, LIMIT)  # the probe: per process again
    assert not limiter.shared
    assert (resolver.calls, resolver.pending) == (1, 1)  # it waited for the same lookup


def test_a_probe_connects_to_the_last_answer_when_the_lookup_is_late(
    resolver: SlowResolver, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver that answers, but slowly: what it last said serves while it is asked again
    (else no connection could ever be made through it)."""
    answered = redis_name_lookups()
    resolver.prompt = True
    first = answered.resolve(NAME, listener.port, time.monotonic() + DEADLINE)
    assert {entry[4][:2] for entry in first} == {("127.0.0.1", listener.port)}
    resolver.prompt = False
    assert answered.resolve(NAME, listener.port, time.monotonic() + 0.05) == first
    assert resolver.pending == 1

    monkeypatch.setattr(ratelimit, "NAME_LOOKUPS", answered)
    clock = Clock()
    limiter = RedisTokenBucket.from_url(f"redis://{NAME}:{listener.port}/0", "p:", clock=clock)
    limiter.acquire("t", 1, LIMIT)  # connects, and the listener never answers: per process
    wait_until(lambda: len(listener.accepted) == 1, DEADLINE, what="a connection by the answer")
    assert not limiter.shared


def test_an_error_the_resolver_gives_in_time_is_raised_even_after_an_answer(
    resolver: SlowResolver,
) -> None:
    """A name that no longer resolves fails: the last answer serves only a late lookup."""
    lookups = redis_name_lookups()
    resolver.prompt = True
    assert lookups.resolve(NAME, 6379, time.monotonic() + DEADLINE)
    resolver.unknown = True
    with pytest.raises(socket.gaierror, match="Name or service not known"):
        lookups.resolve(NAME, 6379, time.monotonic() + DEADLINE)


def test_tls_checks_the_certificate_against_the_name_and_connects_to_its_address(
    resolver: SlowResolver, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver.prompt = True
    handshakes: list[tuple[str | None, tuple[str, int]]] = []

    def wrap_socket(
        self: ssl.SSLContext, sock: socket.socket, server_hostname: str | None = None, **_: Any
    ) -> ssl.SSLSocket:
        handshakes.append((server_hostname, sock.getpeername()[:2]))
        raise ssl.SSLError("the test's handshake")

    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", wrap_socket)
    limiter = RedisTokenBucket.from_url(f"rediss://{NAME}:{listener.port}/0", "p:")
    assert limiter.acquire("t", 1, LIMIT) == 0.0
    assert not limiter.shared
    assert handshakes == [(NAME, ("127.0.0.1", listener.port))]


def test_a_unix_socket_has_no_name_to_look_up(tmp_path: Any) -> None:
    limiter = RedisTokenBucket.from_url(f"unix://{tmp_path}/redis.sock", "p:")
    assert limiter.client.connection_pool.connection_class is UnixDomainSocketConnection
    assert limiter.acquire("t", 1, LIMIT) == 0.0  # no such socket: per process
    assert not limiter.shared


@pytest.mark.integration
def test_a_resolver_that_answers_late_still_lets_the_limits_be_shared(
    resolver: SlowResolver,
) -> None:
    """The audit's case with a real Redis: the first call does not wait for the lookup, and the
    probe after the back-off connects to what the lookup answered meanwhile."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs REDIS_URL (CI sets it)")
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        pytest.skip(f"needs a redis:// URL with a host, got {parts.scheme}://")
    resolver.address = parts.hostname
    clock = Clock()
    prefix = f"test:lookup:{secrets.token_hex(4)}:"
    netloc = parts.netloc.replace(parts.hostname, NAME, 1)
    limiter = RedisTokenBucket.from_url(parts._replace(netloc=netloc).geturl(), prefix, clock=clock)
    assert limiter.acquire("acme", 1, LIMIT) == 0.0
    assert not limiter.shared
    resolver.release.set()  # the lookup is answered, late
    wait_until(lambda: resolver.calls == 1 and resolver.pending == 0, DEADLINE, what="the answer")
    resolver.release = threading.Event()  # and the next one will be late too
    clock.now += REDIS_BACKOFF
    assert limiter.acquire("acme", 1, LIMIT) == 0.0  # the probe, by the first answer
    assert limiter.shared
    assert resolver.pending == 1
    client = redis.Redis.from_url(url)
    try:
        assert client.exists(prefix + "acme")
    finally:
        client.delete(prefix + "acme")
        client.close()
