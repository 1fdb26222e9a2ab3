"""gunicorn's gthread worker, with a thread only for a request that has arrived.

gunicorn's threads read requests from blocking sockets with no timeout. The stock worker lends
each new connection a thread for up to five seconds while it waits for the first bytes, and
once bytes come, the thread stays with the connection until the request head is complete,
however slowly it trickles in. A client that sends half a head and stops (or a byte now and
then, or stalls in the TLS handshake) holds a thread for good, and as many such clients as
threads stop the service: slowloris, which needs no credentials.

Here the worker's event loop does that waiting, without a thread:

* A new connection goes straight to the poller, as gunicorn's own deferral does after its five
  seconds, and so does a kept-alive one between requests.
* When it becomes readable, the loop reads what has come without blocking: for HTTPS, the TLS
  handshake first, step by step. Once the request head is complete (a blank line; or past
  HEAD_BUFFER, 64 KiB, which the parser then refuses or reads on), the bytes read go to
  gunicorn's parser and the connection to a thread, which finds the head there. Until then the
  connection waits in the poller, closed after the keep-alive timeout like an idle one. A head
  pipelined behind the previous request goes the same way.
* So does a body of up to BODY_BUFFER bytes (64 KiB; an exporter's push is a few), unless the
  client waits for "100 Continue" first: the thread finds it there too. A thread reading a
  larger body gets ``request_timeout`` for the whole request, however the body trickles in;
  only a client whose request was accepted so far (ingest: with a valid key) gets that far.
  Sending the answer to a client that does not read it waits at most ``request_timeout`` too.
* An answer given before the body was read whole (a refusal on the head alone: ingest's 401
  for an unknown key, a 413 over a limit) says what becomes of the connection. When the
  application starts it (``start_response``), the rest of the body is drained, for at most
  DRAIN_SECONDS and 64 KiB (gunicorn's cap), before the head goes out: drained, the answer
  keeps the connection alive; otherwise it says ``Connection: close``, and the connection
  closes after it. gunicorn drains only after the answer, which has said ``keep-alive``: a
  client reusing the connection (requests, as the exporter pushes) sent its next request into
  one being closed, and a POST is not retried. An application must therefore have read what
  it wants of the body by the time it starts its answer, as admin and ingest do.
* ``100 Continue`` goes out when the application first reads the body (gunicorn sends it before
  the application runs), so that a client waiting for it is refused at once, with
  ``Connection: close``, instead of being asked for a body that is only to be drained.
* A graceful close (half-close, then read until the client closes, so that unread request
  bytes do not turn into a reset that truncates the answer) lingers in the poller, not on the
  event loop: gunicorn's own close waits up to two seconds in the loop for every connection
  that ends.

This reuses gunicorn's deferral (``finish_request`` with a deferred result) and its connection
queues, which exist since gunicorn 27; tests/integration/test_admin_serve.py and
test_slow_clients.py fail if an upgrade changes them. The answers before a body rely on
gunicorn's ``Parser.finish_body``, ``Request.force_close`` and the request's
``_expected_100_continue`` (gunicorn sends "100 Continue" before the application runs when it
is set): test_early_answers.py fails if those change.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import math
import os
import re
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from functools import partial
from typing import Any

from gunicorn import sock as gunicorn_sock
from gunicorn.http import get_parser
from gunicorn.http.errors import NoMoreData
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers import gthread

WORKER_CLASS = "perfanalysis.gthread_worker.ThreadWorker"
REQUEST_TIMEOUT = 60.0  # seconds for a request to arrive whole once its head has; 8 MiB: 140 KB/s
DRAIN_SECONDS = 0.1  # an unread body is drained for this long at most, before the answer's head
LINGER_SECONDS = 2.0  # a graceful close waits this long for the client to close, in the poller
READ_SIZE = 64 * 1024
HEAD_BUFFER = 64 * 1024  # a head longer than this goes to a thread unfinished
BODY_BUFFER = 64 * 1024  # this much of a body arrives before a thread takes the request
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,19})", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue", re.IGNORECASE)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class RequestTimeout(NoMoreData, TimeoutError):  # type: ignore[misc]
    """The request did not arrive whole in time. gunicorn takes it for a client gone (a
    NoMoreData: closed quietly); an application reading the body sees a TimeoutError."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def __str__(self) -> str:
        return f"the request did not arrive whole within {self.seconds:g} s"


class _BoundedSocket(socket.socket):
    """An accepted connection on which gunicorn's "blocking" (in a thread) waits at most the
    request timeout for each operation, sending the answer included."""

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(ThreadWorker.request_timeout)
        else:
            super().setblocking(False)


class _BoundedSSLSocket(_BoundedSocket, ssl.SSLSocket):
    """The same, once TLS wraps the connection."""


class _DeadlineReads:
    """The socket as gunicorn's request parser reads it: each recv gets only what is left of
    the request's deadline, so a body trickling in a byte at a time is still cut off; and while
    the worker drains a body, only what is left of the drain's (gunicorn bounds each read of
    its drain, not the drain, which a byte now and then kept going for as long as 1 KiB took).

    A client that waits for "100 Continue" is sent it here, when the body is first read from
    the socket: not when the worker drains a body it will not read, once the answer is begun."""

    def __init__(self, sock: socket.socket, connection: _Connection) -> None:
        self._sock = sock
        self._connection = connection

    def recv(self, size: int) -> bytes:
        connection = self._connection
        if connection.continue_due:
            if connection.answering:
                raise TimeoutError("the client waits for 100 Continue; it is answered instead")
            connection.continue_due = False
            self._sock.sendall(CONTINUE)
        now = time.monotonic()
        if connection.deadline <= now:
            raise connection.timed_out()
        if connection.drain_deadline <= now:
            raise TimeoutError("the unread body did not arrive within the drain time")
        previous = self._sock.gettimeout()  # the parser's own, while it drains a body
        remaining = min(connection.deadline, connection.drain_deadline) - now
        self._sock.settimeout(remaining if previous is None else min(previous, remaining))
        try:
            return self._sock.recv(size)
        except TimeoutError:
            if time.monotonic() < connection.deadline:
                raise  # the parser's own timeout or the drain's, not the request's
            raise connection.timed_out() from None
        finally:
            self._sock.settimeout(previous)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Connection(gthread.TConn):  # type: ignore[misc]
    def __init__(self, worker: ThreadWorker, *args: Any) -> None:
        super().__init__(*args)
        self.worker = worker
        self.deadline = math.inf
        self.drain_deadline = math.inf  # set while the worker drains a body left unread
        self.continue_due = False  # the client waits for "100 Continue", not sent yet
        self.answering = False  # the application has begun its answer
        self.cut_off = False
        self.head = bytearray()  # what the event loop has read of the next request
        self.handshaken = not self.cfg.is_ssl

    def init(self) -> None:
        first = not self.initialized
        super().init()
        unreader = getattr(self.parser, "unreader", None)
        if first and isinstance(unreader, SocketUnreader):  # HTTP/1.x (HTTP/2 has no unreader)
            unreader.sock = _DeadlineReads(unreader.sock, self)

    def timed_out(self) -> RequestTimeout:
        self.cut_off = True
        return RequestTimeout(self.worker.request_timeout)

    def close(self, graceful: bool = False) -> None:
        if graceful and not self.cut_off:
            self.worker.linger(self.sock)
        else:
            super().close(False)


class _Application:
    """The WSGI application as the worker calls it: through ThreadWorker._answer_truthfully.
    Whoever looks into it finds the application's own attributes (ingest's ``worker_exit``
    finds its context in ``worker.wsgi.extensions``)."""

    def __init__(self, worker: ThreadWorker, app: Callable[..., Iterable[bytes]]) -> None:
        self.worker = worker
        self.__wrapped__ = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.worker._answer_truthfully(self.__wrapped__, environ, start_response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)


class ThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]
    request_timeout = REQUEST_TIMEOUT  # set in the arbiter before the workers fork
    wsgi: Callable[..., Iterable[bytes]]  # the application, set by load_wsgi

    def init_process(self) -> None:
        self.lingering: collections.deque[tuple[float, socket.socket]] = collections.deque()
        self.tls_context: tuple[tuple[Any, ...], ssl.SSLContext] | None = None
        self.tls_failed: tuple[Any, ...] = ()
        self.serving = threading.local()  # .request: (connection, request) in this thread
        # HTTP/2 (off unless http_protocols asks for it) negotiates in gunicorn's own way
        self.loop_reads = "h2" not in (getattr(self.cfg, "http_protocols", None) or ())
        super().init_process()

    # --- connections arrive and wait in the poller -------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        bounded = _BoundedSocket(client.family, client.type, client.proto, fileno=client.detach())
        connection = _Connection(self, self.cfg, bounded, address, listener.getsockname())
        waiting: Future[Any] = Future()
        waiting.set_result(gthread._DEFER)
        self.finish_request(connection, waiting)

    def on_pending_socket_readable(self, conn: _Connection, client: Any) -> None:
        if self._request_arrived(conn, client, self.pending_conns, self.on_pending_socket_readable):
            super().on_pending_socket_readable(conn, conn.sock)

    def on_client_socket_readable(self, conn: _Connection, client: Any) -> None:
        if self._request_arrived(
            conn, client, self.keepalived_conns, self.on_client_socket_readable
        ):
            super().on_client_socket_readable(conn, conn.sock)

    def _request_arrived(
        self, conn: _Connection, client: Any, queue: collections.deque[Any], callback: Any
    ) -> bool:
        """Read what has come, without blocking; True once a thread can take the request."""
        if not self.loop_reads:
            return True
        arrived = False  # a head carried over from finish_request is known not to have
        try:
            if not conn.handshaken and not self._handshake(conn, client, callback):
                return False
            while not arrived:
                try:
                    data = conn.sock.recv(READ_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    return False  # wait in the poller for the rest
                if not data:
                    raise EOFError
                conn.head += data
                arrived = self._arrived(conn.head)
        except (OSError, EOFError, ValueError):  # the client left, reset, or failed the handshake
            self._drop(conn, queue)
            return False
        if conn.parser is None:
            conn.parser = get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head.clear()
        return True

    def _handshake(self, conn: _Connection, client: Any, callback: Any) -> bool:
        """One non-blocking step of the TLS handshake; True once it is done."""
        if not isinstance(conn.sock, ssl.SSLSocket):
            self.poller.unregister(client)  # wrapping takes the descriptor from this object
            conn.sock = self._tls_context().wrap_socket(
                conn.sock,
                server_side=True,
                suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
                do_handshake_on_connect=False,
            )
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(callback, conn))
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.poller.modify(conn.sock, selectors.EVENT_READ, partial(callback, conn))
            return False
        except ssl.SSLWantWriteError:
            self.poller.modify(conn.sock, selectors.EVENT_WRITE, partial(callback, conn))
            return False
        self.poller.modify(conn.sock, selectors.EVENT_READ, partial(callback, conn))
        conn.handshaken = True
        conn.parser = get_parser(self.cfg, conn.sock, conn.client)
        return True

    def _tls_context(self) -> ssl.SSLContext:
        """gunicorn builds an SSL context for every connection, so that a renewed certificate
        is served without a restart: 1.9 ms each on 2026-11-24's machine, most of it loading
        the system's CA store, now in the event loop. Here it is built again only when the
        certificate, key or CA file has changed (or been replaced); while one cannot be read,
        or the new ones do not load (a certificate renewed before its key), the last ones
        stay in use."""
        files = (self.cfg.certfile, self.cfg.keyfile, self.cfg.ca_certs)
        stamp = tuple(_file_stamp(path) for path in files if path)
        cached = self.tls_context
        if cached is not None and (stamp == cached[0] or None in stamp):
            return cached[1]
        try:
            context: ssl.SSLContext = gunicorn_sock.ssl_context(self.cfg)
        except (OSError, ValueError) as exc:  # e.g. a new certificate before its new key
            if cached is None:
                raise
            if stamp != self.tls_failed:
                self.log.warning("TLS files changed but cannot be loaded (%s); still serving "
                                 "the ones loaded before", exc)  # fmt: skip
                self.tls_failed = stamp
            return cached[1]
        context.sslsocket_class = _BoundedSSLSocket
        self.tls_context = (stamp, context)
        return context

    def _arrived(self, head: bytes | bytearray) -> bool:
        """Whether a thread can take the request: its head and the first BODY_BUFFER bytes of
        its body (all of a smaller one) are here, or the head is longer than HEAD_BUFFER (the
        parser then answers it, or reads the rest under the request's deadline)."""
        end = head.find(b"\r\n\r\n")
        if end < 0:
            return len(head) > HEAD_BUFFER
        length = _CONTENT_LENGTH.search(head, 0, end + 2)
        if length is None or _EXPECT_CONTINUE.search(head, 0, end + 2):
            return True  # no body, or chunked, or one the client sends once told to continue
        body = min(int(length.group(1)), BODY_BUFFER)
        return len(head) >= end + 4 + body

    def _drop(self, conn: _Connection, queue: collections.deque[Any]) -> None:
        with contextlib.suppress(ValueError):
            queue.remove(conn)
        with contextlib.suppress(KeyError, ValueError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.cut_off = True
        conn.close()

    # --- a thread serves the request ---------------------------------------------------------

    def handle(self, conn: _Connection) -> Any:
        conn.deadline = time.monotonic() + self.request_timeout
        return super().handle(conn)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = _Application(self, self.wsgi)

    def handle_request(self, req: Any, conn: _Connection) -> Any:
        """gunicorn's, the request known to the application's start_response (HTTP/1.x only:
        HTTP/2 has no body left on the connection, nor 100 Continue); the "100 Continue" the
        client may wait for is left to _DeadlineReads."""
        conn.answering = False
        if isinstance(getattr(conn.parser.unreader, "sock", None), _DeadlineReads):
            conn.continue_due = req._expected_100_continue
            req._expected_100_continue = False  # else gunicorn sends it before the app runs
        self.serving.request = (conn, req)
        try:
            return super().handle_request(req, conn)
        finally:
            self.serving.request = None
            conn.continue_due = False

    def _answer_truthfully(
        self, app: Callable[..., Iterable[bytes]], environ: dict[str, Any], start_response: Any
    ) -> Iterable[bytes]:
        """The application, its answer saying "Connection: close" when the connection is to
        close after it for a body it left unread (see the module's docstring)."""
        serving = getattr(self.serving, "request", None)
        if serving is None:  # HTTP/2
            return app(environ, start_response)
        conn, req = serving

        def answer(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not conn.answering:
                conn.answering = True
                if not req.should_close() and not self._drained(conn):
                    req.force_close()  # the answer says "Connection: close", and it closes
            return start_response(status, headers, exc_info)

        return app(environ, answer)

    def _drained(self, conn: _Connection) -> bool:
        """Whether what is left of the request's body arrived within DRAIN_SECONDS (and
        gunicorn's 64 KiB); it is read and dropped."""
        conn.drain_deadline = time.monotonic() + DRAIN_SECONDS
        try:
            return bool(conn.parser.finish_body(deadline=conn.drain_deadline))
        finally:
            conn.drain_deadline = math.inf

    def _keepalive_after(self, conn: _Connection, keepalive: bool) -> bool:
        """gunicorn drains a body the application left unread for up to five seconds in the
        thread, after the answer; here it was drained before the answer (_answer_truthfully),
        which said "Connection: close" if that failed. What is left to check: that the body
        is still read whole, and whether the application's own reads after it failed."""
        if not keepalive:
            return False
        return self._drained(conn)

    def finish_request(self, conn: _Connection, fs: Future[Any]) -> None:
        """A request pipelined behind the answered one, its head or the start of its body not
        all there, waits in the poller for the rest like any other, instead of in the thread
        gunicorn would hand it to at once."""
        kept_alive = not fs.cancelled() and fs.exception() is None and fs.result() is True
        if self.loop_reads and kept_alive:
            ahead = conn.parser.unreader.buf.getvalue()
            if ahead and not self._arrived(ahead):
                conn.head += conn.parser.unreader.take_buffered()
        super().finish_request(conn, fs)

    # --- graceful closes linger in the poller ------------------------------------------------

    def linger(self, sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, self._on_lingering_readable)
        except (OSError, ValueError, KeyError):
            _close(sock)
            return
        self.lingering.append((time.monotonic() + LINGER_SECONDS, sock))

    def _on_lingering_readable(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(READ_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except OSError:
            data = b""
        if not data:
            self._end_linger(sock)

    def _end_linger(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.poller.unregister(sock)
        _close(sock)

    def murder_pending(self) -> None:
        """gunicorn's expiry of connections waiting for a request, and of lingering closes."""
        super().murder_pending()
        now = time.monotonic()
        while self.lingering and self.lingering[0][0] <= now:
            _, sock = self.lingering.popleft()
            if sock.fileno() >= 0:
                self._end_linger(sock)


def _file_stamp(path: str) -> tuple[int, int, int, int] | None:
    """What changes when a file is rewritten or replaced; None when it cannot be read now."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino, status.st_mtime_ns, status.st_size)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
