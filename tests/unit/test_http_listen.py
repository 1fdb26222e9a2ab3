"""Where exporter.http listens: dual stack for an empty host, as Go; several addresses at once."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
from collections.abc import Iterator

import pytest

import exporter.http
from exporter.http import HTTPServer, ListenError, Request, Response
from exporter.main import run

GENEROUS = 10.0  # seconds


def echo(request: Request) -> Response:
    return Response(200, f"{request.client} {request.target}".encode())


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.contextmanager
def serving(server: HTTPServer) -> Iterator[HTTPServer]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def get(host: str, port: int, target: str = "/x") -> bytes:
    """The body of GET ``target`` from host:port."""
    with socket.create_connection((host, port), timeout=GENEROUS) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        reply = b"".join(iter(lambda: conn.recv(65536), b""))
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply
    return reply.split(b"\r\n\r\n", 1)[1]


def test_an_empty_host_answers_on_ipv4_and_on_ipv6() -> None:
    """:9100 is node_exporter's default and the manifests': Go listens on both stacks."""
    with serving(HTTPServer(("", 0), echo)) as server:
        port = server.server_address[1]
        assert get("127.0.0.1", port) == b"127.0.0.1 /x"  # not ::ffff:127.0.0.1
        if not ipv6_loopback():
            pytest.skip("this machine has no IPv6 loopback")
        assert get("::1", port) == b"::1 /x"
        assert server.addresses == [f"[::]:{port}"]


def test_an_empty_host_falls_back_to_ipv4_on_a_host_without_ipv6(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = exporter.http._listen

    def no_ipv6(family: int, *args: object, **kwargs: object) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))
        return real(family, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(exporter.http, "_listen", no_ipv6)
    with serving(HTTPServer(("", 0), echo)) as server:
        assert server.socket.family == socket.AF_INET
        assert get("127.0.0.1", server.server_address[1]) == b"127.0.0.1 /x"


def test_an_explicit_host_means_what_it_says() -> None:
    with serving(HTTPServer(("127.0.0.1", 0), echo)) as server:
        port = server.server_address[1]
        assert server.socket.family == socket.AF_INET
        if ipv6_loopback():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("::1", port), timeout=GENEROUS).close()
    if ipv6_loopback():
        with serving(HTTPServer(("::1", 0), echo)) as server:
            assert get("::1", server.server_address[1]) == b"::1 /x"
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", server.server_address[1])).close()


def test_several_addresses_are_served_under_one_cap() -> None:
    server = HTTPServer(("127.0.0.1", 0), echo, extra_addresses=[("127.0.0.1", 0)])
    with serving(server):
        ports = [sock.getsockname()[1] for sock in server.sockets]
        assert len(set(ports)) == 2
        assert server.addresses == [f"127.0.0.1:{port}" for port in ports]
        for port in ports:
            assert get("127.0.0.1", port, f"/{port}") == f"127.0.0.1 /{port}".encode()


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_an_address_that_cannot_be_listened_on_is_named_and_nothing_leaks(
    taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(ListenError) as caught:
        HTTPServer(("127.0.0.1", 0), echo, extra_addresses=[("127.0.0.1", taken_port)])
    assert caught.value.address == ("127.0.0.1", taken_port)
    assert caught.value.errno == errno.EADDRINUSE
    assert set(os.listdir("/proc/self/fd")) <= before  # the first socket and the pipe closed
    argv = [
        "--web.listen-address=127.0.0.1:0",
        f"--web.listen-address=127.0.0.1:{taken_port}",
        "--collector.disable-defaults",
        "--collector.loadavg",
    ]
    assert run(argv, {}) == 1
    assert capsys.readouterr().err == (
        f"perfanalysis exporter: cannot listen on 127.0.0.1:{taken_port}: "
        "[Errno 98] Address already in use\n"
    )
