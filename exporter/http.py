"""A small HTTP/1.1 server for GET and HEAD, on socketserver alone.

The standard library's http.server imports http.client, which imports ssl and the email parser:
about 6 MiB of resident memory an exporter on every host has no use for (the design caps the
exporter at 1.25x node_exporter's ~20 MiB). This server reads a request line and headers with
hard limits, answers with one write per response (headers and body together), keeps connections
alive as Prometheus expects, and closes idle ones after a timeout.

Each connection costs a thread, so both are bounded: at most ``max_connections`` are open. When
they all are and another connection waits, the one idle longest (waiting for a request: its first,
TLS handshake included, or the next on a kept-alive connection) is closed to make room, so that
connections sending nothing cannot lock scrapes out, as they could with a plain cap (Go's
netutil.LimitListener; node_exporter itself has no cap). Only connections busy answering a
request make a newcomer wait in the listen backlog. Each request must arrive whole, head and body,
within IDLE_TIMEOUT of the previous answer (FIRST_REQUEST_TIMEOUT for a new connection's first),
however slowly its bytes trickle in, so that no client holds a thread for longer.

An empty host listens on every IPv4 and IPv6 address with one dual-stack socket, as Go does for
``:9100``, or on every IPv4 one where the host has no IPv6; a server may listen on several
addresses, with one cap over all of them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import math
import os
import re
import selectors
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

MAX_LINE = 8192
MAX_HEADERS = 100
MAX_BODY = 65536
IDLE_TIMEOUT = 60.0  # seconds a request may take to arrive whole, idle wait included
FIRST_REQUEST_TIMEOUT = 10.0  # the same for a new connection's first request (at most IDLE_TIMEOUT)
WRITE_TIMEOUT = 60.0  # seconds an answer may take to be sent
MAX_CONNECTIONS = 64
CAP_WARNING_INTERVAL = 60.0  # seconds between warnings that the connection cap is reached
# accept() errors that say "not now" (out of descriptors or memory): accepts pause 5 ms, doubling
# to 1 s while they last, as Go's http.Server does, instead of spinning on a readable socket
TEMPORARY_ACCEPT_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_PAUSE_FIRST = 0.005
ACCEPT_PAUSE_MAX = 1.0
# errors that say this host has no IPv6: an empty host then listens on IPv4 alone
NO_IPV6_ERRORS = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
REASONS = {
    200: "OK", 301: "Moved Permanently", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
    413: "Content Too Large", 414: "URI Too Long", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
}  # fmt: skip


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    client: str
    path: str = ""  # the target's path, percent-decoded (what routes match, as in Go)
    query: str = ""  # the target's query, as sent

    def __post_init__(self) -> None:
        if not self.path:
            self.path, self.query = split_target(self.target)


def split_target(target: str) -> tuple[str, str]:
    """(percent-decoded path, raw query) of a request target in origin or absolute form.

    ValueError when it cannot be parsed (``http://[x/``) or holds a malformed %-escape, the
    targets Go's servers answer 400.
    """
    if target.startswith(
        "/"
    ):  # origin form: "//metrics" is a path, not a host as urlsplit reads it
        path, _, query = target.partition("?")
    else:
        url = urlsplit(target)
        path, query = url.path, url.query
    if _BAD_ESCAPE.search(path):
        raise ValueError(f"malformed percent-escape in {path!r}")
    return unquote(path) or "/", query


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


App = Callable[[Request], Response]


class ConnectionWrapper(Protocol):
    """Turns an accepted connection into the one to serve (TLS), or None to drop it."""

    def accept(self, connection: socket.socket) -> socket.socket | None: ...


class ListenError(OSError):
    """Listening on one of a server's addresses failed; ``address`` says which."""

    def __init__(self, address: tuple[str, int], cause: OSError) -> None:
        if cause.errno is None:
            super().__init__(str(cause))
        else:
            super().__init__(cause.errno, cause.strerror)
        self.address = address


def listening_socket(address: tuple[str, int], backlog: int) -> socket.socket:
    """A socket listening on ``address``: on every IPv4 and IPv6 address for an empty host (one
    dual-stack socket, IPV6_V6ONLY off, or IPv4 alone on a host without IPv6), as Go listens."""
    host, port = address
    if not host:
        if socket.has_ipv6:
            try:
                return _listen(socket.AF_INET6, ("::", port), backlog, dual_stack=True)
            except OSError as exc:
                if exc.errno not in NO_IPV6_ERRORS:
                    raise
        return _listen(socket.AF_INET, ("0.0.0.0", port), backlog)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return _listen(family, (host, port), backlog)


def _listen(
    family: int, address: tuple[str, int], backlog: int, dual_stack: bool = False
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if dual_stack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def shown_address(host: str, port: int) -> str:
    """``host:port`` as written in --web.listen-address: ``[::1]:9100``, ``:9100``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _shut_down(fd: int) -> None:
    """Shut a connection down by its descriptor, waking its thread from any read (the socket
    object it reads through may be a TLS one, or a plain one a TLS socket has taken over)."""
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the client has gone already
    finally:
        sock.detach()


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HTTPServer(socketserver.ThreadingTCPServer):
    """socketserver's threading server, with a serve loop that sleeps until there is work.

    socketserver's own ``serve_forever`` wakes every ``poll_interval`` to look for a shutdown
    request: 120 wake-ups a minute at 0.5 s, which cost an idle exporter 8.6 ms of CPU a minute
    on 2026-11-24's machine, against node_exporter's 0.05 ms. This loop sleeps in ``select``
    on the listening socket and a pipe that ``shutdown`` writes to, so it wakes only for a
    connection or to stop.
    """

    daemon_threads = True
    request_queue_size = 128
    idle_timeout = IDLE_TIMEOUT
    first_request_timeout = FIRST_REQUEST_TIMEOUT

    def __init__(
        self,
        address: tuple[str, int],
        app: App,
        tls: ConnectionWrapper | None = None,
        max_connections: int = MAX_CONNECTIONS,
        extra_addresses: Sequence[tuple[str, int]] = (),
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        socketserver.BaseServer.__init__(self, address, _Handler)  # not TCPServer's one socket
        self.app = app
        self.tls = tls  # exporter.webconfig.TLSServer when --web.config.file turns TLS on
        self.max_connections = max_connections
        self._open = 0  # connections accepted and not yet closed, one thread each
        self._open_lock = threading.Lock()  # guards _open, _idle and _closing
        self._idle: dict[int, None] = {}  # descriptors of connections waiting for a request,
        # the one waiting longest first (what is closed to make room at the cap)
        self._closing: set[int] = set()  # descriptors closed to make room, not yet gone
        self._cap_warned_at = -math.inf
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sockets: list[socket.socket] = []
        for each in (address, *extra_addresses):
            try:
                self.sockets.append(listening_socket(each, self.request_queue_size))
            except OSError as exc:
                self.server_close()
                raise ListenError(each, exc) from exc
        self.socket = self.sockets[0]
        self.server_address = self.socket.getsockname()
        self._stopping = False
        self._stopped = threading.Event()
        self._stopped.set()

    @property
    def addresses(self) -> list[str]:
        """Every address listened on, as written in --web.listen-address (``[::]:9100``)."""
        return [shown_address(*sock.getsockname()[:2]) for sock in self.sockets]

    def serve_forever(self, poll_interval: float | None = None) -> None:
        """Serve until ``shutdown``; ``poll_interval`` is accepted for socketserver's callers
        and not needed: nothing is polled."""
        self._stopped.clear()
        pause = 0.0  # seconds accepts are paused for after a temporary error (0: not paused)
        last_pause = 0.0  # reset by a successful accept
        watching = False  # whether the listening sockets are in the selector
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._wake_read, selectors.EVENT_READ)
                while not self._stopping:
                    want = not pause and self._may_take_one()
                    if want != watching:
                        for sock in self.sockets:
                            if want:
                                selector.register(sock, selectors.EVENT_READ)
                            else:
                                selector.unregister(sock)
                        watching = want
                    events = selector.select(pause or None)
                    ready = [key.fileobj for key, _ in events]
                    if self._wake_read in ready:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_read, 4096)
                    if self._stopping:
                        break
                    if pause:
                        if not events:  # the pause is over: try accepting again
                            pause = 0.0
                        continue
                    for sock in self.sockets:
                        if sock not in ready:
                            continue
                        if self._at_cap():  # make room: accepted once that one is gone
                            self._close_longest_idle()
                            break
                        accepted = self._accept_one(sock)
                        if accepted is True:
                            last_pause = 0.0
                        elif isinstance(accepted, OSError):
                            if not last_pause:
                                log.warning("cannot accept connections (%s): pausing", accepted)
                            pause = last_pause = min(
                                ACCEPT_PAUSE_MAX, last_pause * 2 or ACCEPT_PAUSE_FIRST
                            )
                            break
                    self.service_actions()
        finally:
            self._stopping = False
            self._stopped.set()

    def _at_cap(self) -> bool:
        with self._open_lock:
            return self._open >= self.max_connections

    def _may_take_one(self) -> bool:
        """Whether a new connection can be taken now: below the cap, or at it with an idle
        connection to close for it (and none being closed already). Warns, at most once a
        minute, when new connections must wait because every one is busy."""
        with self._open_lock:
            if self._open < self.max_connections or (self._idle and not self._closing):
                return True
            if self._closing:  # room is being made: taken once that connection is gone
                return False
        self._warn_at_cap("all busy with requests: new ones wait until one is answered")
        return False

    def _close_longest_idle(self) -> None:
        """At the cap with a connection waiting: close the one idle longest to make room."""
        with self._open_lock:
            if not self._idle or self._closing:
                return
            fd = next(iter(self._idle))
            del self._idle[fd]
            self._closing.add(fd)
            _shut_down(fd)  # under the lock: its descriptor cannot be closed and reused meanwhile
        self._warn_at_cap("closing the one idle longest for each new one")

    def _warn_at_cap(self, what: str) -> None:
        if time.monotonic() - self._cap_warned_at >= CAP_WARNING_INTERVAL:
            self._cap_warned_at = time.monotonic()
            log.warning(
                "%d connections open (--web.max-connections), %s", self.max_connections, what
            )

    def get_request(self, listener: socket.socket | None = None) -> tuple[socket.socket, Any]:
        return (listener or self.socket).accept()

    def _accept_one(self, listener: socket.socket) -> bool | OSError:
        """Accept a waiting connection and hand it to a thread (socketserver's steps).

        True if accepted; False if the client gave up first; the error if it is temporary (out
        of descriptors or memory), after which accepts pause.
        """
        try:
            request, client_address = self.get_request(listener)
        except OSError as exc:
            return exc if exc.errno in TEMPORARY_ACCEPT_ERRORS else False
        fd = request.fileno()
        with self._open_lock:
            self._open += 1
            self._idle[fd] = None  # waiting for its first request
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self._forget(fd)
            self.shutdown_request(request)
            self._connection_closed()
        return True

    def finish_request(self, request: Any, client_address: Any) -> None:
        fd = request.fileno()  # read before TLS takes the socket over
        try:
            super().finish_request(request, client_address)
        finally:
            self._forget(fd)  # before the socket is closed and its descriptor reused

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connection_closed()

    def request_started(self, fd: int) -> bool:
        """A connection's request has arrived whole: it is busy, not to be closed for room.
        False if it was closed for room meanwhile (then it must not be answered)."""
        with self._open_lock:
            self._idle.pop(fd, None)
            return fd not in self._closing

    def request_answered(self, fd: int) -> None:
        """A kept-alive connection waits for its next request: the newest idle one."""
        with self._open_lock:
            self._idle[fd] = None
            at_cap = self._open >= self.max_connections and not self._closing
        if at_cap:
            self._wake()  # a connection may now be taken in its place

    def _forget(self, fd: int) -> None:
        with self._open_lock:
            self._idle.pop(fd, None)
            self._closing.discard(fd)

    def _connection_closed(self) -> None:
        """Count a connection closed; wake the serve loop if it stopped accepting at the cap."""
        with self._open_lock:
            self._open -= 1
            was_full = self._open == self.max_connections - 1
        if was_full:
            self._wake()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (running in another thread) and wait until it has."""
        self._stopping = True
        self._wake()
        self._stopped.wait()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"x")

    def server_close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self._close_wake_pipe()

    def _close_wake_pipe(self) -> None:
        """Close the wake pipe once: a second call must not close a descriptor reused since."""
        fds, (self._wake_read, self._wake_write) = (self._wake_read, self._wake_write), (-1, -1)
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


class _DeadlineReader(io.RawIOBase):
    """A connection's reads, each given only what is left of a deadline.

    A socket's own timeout applies to each recv, so a client sending a byte every 59 seconds
    would keep a request (and its thread) alive indefinitely; this bounds the whole request.
    """

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        super().__init__()
        self.connection = connection
        self.deadline = deadline  # time.monotonic() by which the current request must be read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive whole in time")
        self.connection.settimeout(remaining)
        return self.connection.recv_into(buffer)


class _Handler(socketserver.StreamRequestHandler):
    server: HTTPServer
    timeout = IDLE_TIMEOUT

    def setup(self) -> None:
        self.refused = False
        self.fd = self.request.fileno()
        if self.server.tls is not None:  # the handshake runs here, in the connection's thread
            wrapped = self.server.tls.accept(self.request)
            if wrapped is None:
                self.refused = True
                return
            self.request = wrapped
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile.close()  # socketserver's reader, replaced by one with a deadline per request
        self.reader = _DeadlineReader(self.connection, time.monotonic())
        self.rfile = io.BufferedReader(self.reader)

    def finish(self) -> None:
        if self.refused:
            return
        try:
            super().finish()
        finally:
            if self.server.tls is not None:  # the server closes the raw socket, not this one
                with contextlib.suppress(OSError):
                    self.request.shutdown(socket.SHUT_WR)
                self.request.close()

    def handle(self) -> None:
        if self.refused:
            return
        client = str(self.client_address[0]).removeprefix("::ffff:")  # IPv4 on a dual-stack socket
        timeout = min(self.server.first_request_timeout, self.server.idle_timeout)
        while True:
            self.reader.deadline = time.monotonic() + timeout
            timeout = self.server.idle_timeout
            try:
                request = self._read_request(client)
            except BadRequest as bad:
                with contextlib.suppress(OSError):  # the client may be gone already
                    self._write(Response(bad.status, f"{bad}\n".encode()), False, head=False)
                return
            except OSError:  # timeouts, resets, and TLS errors (ssl.SSLError) alike
                return
            if request is None or not self.server.request_started(self.fd):
                return
            keep_alive = _keep_alive(request)
            try:
                response = self.server.app(request)
            except Exception:
                log.exception("error answering %s %s", request.method, request.target)
                response = Response(500, b"internal error, see the exporter's log\n")
            try:
                self._write(response, keep_alive, head=request.method == "HEAD")
            except OSError:
                return
            if not keep_alive:
                return
            self.server.request_answered(self.fd)

    def _read_line(self) -> bytes:
        line = self.rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise BadRequest(431, "request line or header too long")
        return line

    def _read_request(self, client: str) -> Request | None:
        line = self._read_line()
        while line in (b"\r\n", b"\n"):  # tolerate blank lines between requests (RFC 9112 2.2)
            line = self._read_line()
        if not line:
            return None
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest(400, "malformed request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            raw = self._read_line()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest(400, "malformed header line")
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        else:
            raise BadRequest(431, "too many header lines")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise BadRequest(501, "chunked request bodies are not supported")
        length = headers.get("content-length", "0")
        if not length.isdigit():
            raise BadRequest(400, "invalid Content-Length")
        if int(length) > MAX_BODY:
            raise BadRequest(413, "request body too large")
        if int(length):
            self.rfile.read(int(length))  # GET bodies carry no meaning: drain, then ignore
        if method not in ("GET", "HEAD"):
            raise BadRequest(405, f"method {method} is not allowed")
        try:
            path, query = split_target(target)
        except ValueError:
            raise BadRequest(400, "malformed request target") from None
        return Request(method, target, version, headers, client, path, query)

    def _write(self, response: Response, keep_alive: bool, head: bool) -> None:
        reason = REASONS.get(response.status, "Unknown")
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Date: {http_date()}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
        ]
        if response.status == 405:
            lines.append("Allow: GET, HEAD")
        lines += [f"{k}: {v}" for k, v in response.headers.items()]
        if not keep_alive:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.connection.settimeout(WRITE_TIMEOUT)
        self.wfile.write(head_bytes if head else head_bytes + response.body)


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(epoch: float | None = None) -> str:
    """RFC 9110 IMF-fixdate, independent of the locale."""
    t = time.gmtime(epoch)
    return (
        f"{DAYS[t.tm_wday]}, {t.tm_mday:02d} {MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection
