"""A minimal HTTP/1.1 client: one request at a time over a kept-alive connection.

Why not http.client: importing it loads ssl and the email parser, measured at +5.7 MiB of
resident memory on this exporter (16.5 -> 22.2 MiB), while the design caps the whole exporter at
1.25x node_exporter's ~21 MiB. This client needs socket alone; ssl is imported only for an https
URL. It sends a request with a Content-Length body and reads a response delimited by
Content-Length, chunked encoding or the connection's close, with hard limits on what it keeps.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from perfanalysis.namelookup import LATE_ANSWER_FRESH, LookupAborted, NameLookups
from perfanalysis.tlskey import refuse_passphrase

MAX_LINE = 8192
MAX_HEADERS = 100
MAX_KEPT_BODY = 64 * 1024  # an error body longer than this is read to the end but not kept
NO_BODY = frozenset({204, 304})
RECV_SIZE = 16384  # answers are small: a 204, or an error of a few hundred bytes
SENDING = "sending the request"
WAITING = "waiting for the answer"


class TransportError(Exception):
    """The request got no complete response; ``kind`` is ``timeout`` or ``error``, ``stage``
    what the request was doing then (as a timeout's message says it; empty if not known)."""

    def __init__(self, kind: str, message: str, stage: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.stage = stage

    @property
    def awaiting_answer(self) -> bool:
        """Whether it failed connected, while the request was sent or its answer awaited, none
        of the answer come: a timeout then is the request's size on a slow link or ingest's
        slowness, not the connection's (a lookup, a connect or a handshake) nor a trickling
        answer's."""
        return self.stage in (SENDING, WAITING)


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    base_path: str  # without the trailing slash

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Raises ValueError naming what is wrong with ``url``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"the scheme must be http or https, not {parts.scheme or 'missing'!r}")
        if not parts.hostname:
            raise ValueError("no host in the URL")
        if parts.username or parts.password:
            raise ValueError("credentials do not belong in the URL: use the key file")
        if parts.query or parts.fragment:
            raise ValueError("the URL must not have a query or a fragment")
        port = parts.port  # raises ValueError for a bad port
        if port == 0:
            raise ValueError("port 0 cannot be connected to: give the port ingest listens on")
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname, port or default, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class TLSFiles:
    """A TLS client's files: the CA bundle to verify the server with (None: the system's CAs),
    and a certificate and its key to present to a server that asks for one (mutual TLS)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def paths(self) -> tuple[str, ...]:
        return tuple(path for path in (self.ca_file, self.cert_file, self.key_file) if path)

    def stamp(self) -> tuple[int, ...]:
        """The files' modification times: a change means certificates renewed on disk."""
        return tuple(os.stat(path).st_mtime_ns for path in self.paths())

    def context(self) -> Any:
        """An ``ssl.SSLContext`` from the files; raises TLSFileError saying which is wrong."""
        import ssl  # only for https: ~4 MiB of resident memory

        try:
            context = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ValueError) as exc:
            raise TLSFileError("ca", f"{self.ca_file} is not a PEM CA bundle ({exc})") from None
        if self.cert_file:
            try:
                context.load_cert_chain(self.cert_file, self.key_file, password=refuse_passphrase)
            except (OSError, ValueError) as exc:
                raise TLSFileError(
                    "cert",
                    f"{self.cert_file} and {self.key_file} are not a PEM certificate and its "
                    f"unencrypted private key ({exc})",
                ) from None
        return context


class TLSFileError(ValueError):
    """A TLS file cannot be used; ``which`` is ``ca`` or ``cert`` (the certificate and key)."""

    def __init__(self, which: str, message: str) -> None:
        super().__init__(message)
        self.which = which


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Connection:
    """A keep-alive connection to one endpoint, opened on first use and after any failure.

    A request's timeout bounds the whole of it: resolving the host, connecting (to each address
    in turn), the TLS handshake, sending, and reading the answer to its last byte. Every
    blocking call is given what is left of that deadline, never the whole timeout again: a peer
    that trickles its answer a byte at a time, or reads the request as slowly, holds a request
    no longer than its timeout. (A buffered reader would not do: it calls recv as many times as
    one line or read needs, and each call waits the socket's full timeout.) ``abort`` ends a
    request from another thread at any of those stages.
    """

    def __init__(
        self, endpoint: Endpoint, timeout: float, user_agent: str, tls: TLSFiles | None = None
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.user_agent = user_agent
        self.tls = tls or TLSFiles()
        self._sock: socket.socket | None = None
        self._connecting: socket.socket | None = None  # being connected, or in its handshake
        self._received = bytearray()  # what was received of the answer and not yet parsed
        self._chunk = bytearray(RECV_SIZE)  # recv_into's buffer, reused
        self._chunk_view = memoryview(self._chunk)
        self._reused = False
        self._aborted = False  # set by abort(): the request must fail, not be retried
        self._stage = ""  # what the request was doing, for a timeout's message
        # a lookup outliving its request goes on; the next request waits for it or takes its answer
        self._lookups = NameLookups("push-resolver", late_answer_fresh_for=LATE_ANSWER_FRESH)
        self._ssl_context: Any = None
        self._tls_stamp: tuple[int, ...] = ()

    def request(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        timeout: float | None = None,
    ) -> Response:
        """Send one request and read its response, all within ``timeout`` seconds (None: the
        connection's own); raises TransportError (and closes) on failure."""
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.endpoint.host_header}",
            f"User-Agent: {self.user_agent}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        self._aborted = False
        for attempt in (1, 2):
            reused = self._sock is not None and self._reused
            try:
                self._connect(deadline)
                return self._exchange(message, deadline)
            except _StaleConnection:
                self.close()
                if self._aborted:
                    raise TransportError("error", "aborted") from None
                if attempt == 2 or not reused:  # a fresh connection closed on us: a real error
                    raise TransportError("error", "connection closed without a response") from None
            except (
                _Aborted,
                LookupAborted,
                OSError,
                ValueError,
            ) as exc:  # OSError: TimeoutError too
                self.close()
                if self._aborted:
                    raise TransportError("error", "aborted") from None
                if isinstance(exc, TimeoutError):
                    said = f"timed out after {budget:.3g}s {self._stage}"
                    raise TransportError("timeout", said, self._stage) from exc
                raise TransportError("error", f"{type(exc).__name__}: {exc}", self._stage) from exc
        raise AssertionError("unreachable")

    def _connect(self, deadline: float) -> None:
        if self._sock is not None:
            return
        self._stage = f"resolving {self.endpoint.host}"
        addresses = self._lookups.resolve(
            self.endpoint.host, self.endpoint.port, deadline, aborted=lambda: self._aborted
        )
        sock: socket.socket | None = None
        error: OSError = OSError(f"no address for {self.endpoint.host}")
        for family, kind, proto, _, address in addresses:
            self._stage = f"connecting to {address[0]}"
            sock = self._connecting = socket.socket(family, kind, proto)
            try:
                sock.settimeout(_remaining(deadline))
                sock.connect(address)
                break
            except TimeoutError:  # the request's deadline: no time for another address
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                sock = None
                if self._aborted:
                    raise _Aborted() from None
                error = exc
            finally:
                self._connecting = None
        if sock is None:
            raise error
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.endpoint.scheme == "https":
                self._stage = "in the TLS handshake"
                tls_sock = self.tls_context().wrap_socket(
                    sock, server_hostname=self.endpoint.host, do_handshake_on_connect=False
                )
                sock = self._connecting = tls_sock  # wrap_socket detached the plain one
                tls_sock.settimeout(_remaining(deadline))
                tls_sock.do_handshake()
            if self._aborted:
                raise _Aborted()
        except BaseException:
            sock.close()
            raise
        finally:
            self._connecting = None
        self._sock = sock
        self._reused = False

    def tls_context(self) -> Any:
        """The TLS context, made again when its files changed (renewed certificates are used
        from the next connection on)."""
        stamp = self.tls.stamp()
        if self._ssl_context is None or stamp != self._tls_stamp:
            self._ssl_context = self.tls.context()
            self._tls_stamp = stamp
        return self._ssl_context

    def _exchange(self, message: bytes, deadline: float) -> Response:
        sock = self._sock
        assert sock is not None
        self._stage = SENDING
        try:
            self._send_all(sock, message, deadline)
            sent = True
        except TimeoutError:
            raise
        except OSError:
            # The peer stopped reading: a keep-alive connection it closed while idle, or an
            # early answer (413 for a Content-Length over its limit, 401) sent before it closed
            # without reading the body. Such an answer is still there to be read: Linux keeps
            # received data past a reset (the write fails with EPIPE or ECONNRESET), and so
            # does TLS (the write fails with SSLEOFError). No answer: the read below fails.
            # No shutdown(SHUT_WR) here: on an ssl socket it drops TLS, reads get ciphertext.
            sent = False
        self._stage = WAITING
        first = True
        while True:
            try:
                if not self._received and not self._fill(deadline):
                    raise _StaleConnection() if first else ValueError("malformed status line")
            except ConnectionResetError:
                if first:
                    raise _StaleConnection() from None
                raise
            first = False
            self._stage = "reading the answer"
            head = self._whole_head()
            if head is None:
                version, status = _status(self._readline(deadline))
                headers = self._headers(deadline)
            else:
                version, status, headers = head
            if 100 <= status < 200:  # an interim response (e.g. 100 Continue): the real one follows
                continue
            break
        body, close = self._body(status, version, headers, deadline)
        if close or not sent:  # a request not sent whole leaves the connection out of step
            self.close()
        else:
            self._reused = True
        return Response(status, headers, body)

    @staticmethod
    def _send_all(sock: socket.socket, data: bytes, deadline: float) -> None:
        """sendall, each send given what is left of the deadline (SSLSocket.sendall gives each
        of its sends the socket's whole timeout)."""
        sock.settimeout(_remaining(deadline))
        done = sock.send(data)  # usually all of it
        if done == len(data):
            return
        with memoryview(data) as view:
            while done < len(view):
                sock.settimeout(_remaining(deadline))
                done += sock.send(view[done:])

    def _fill(self, deadline: float) -> int:
        """Receive what the peer has sent (waiting until the deadline at most) into the buffer;
        the number of bytes, 0 when the peer closed."""
        sock = self._sock
        assert sock is not None
        sock.settimeout(_remaining(deadline))
        count = sock.recv_into(self._chunk)
        if count:
            self._received += self._chunk_view[:count]
        return count

    def _whole_head(self) -> tuple[str, int, dict[str, str]] | None:
        """The status and headers, parsed in one go, when the whole head is received already
        with CRLF line ends and within MAX_LINE, as an answer usually comes; else None (and
        nothing consumed): the caller reads it line by line, as its limits and errors need."""
        received = self._received
        end = received.find(b"\r\n\r\n", 0, MAX_LINE)
        if end < 0:
            return None
        text = received[:end].decode("latin-1")
        if text.count("\n") != text.count("\r\n"):  # a bare LF ends a line too
            return None
        status_line, *lines = text.split("\r\n")
        if len(lines) > MAX_HEADERS:
            return None
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            return None
        headers: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if not sep:
                return None
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        del received[: end + 4]
        return parts[0], int(parts[1]), headers

    def _readline(self, deadline: float) -> bytes:
        """One line with its newline, as BufferedReader.readline(MAX_LINE + 1) returns it: up to
        MAX_LINE + 1 bytes (longer: the first MAX_LINE + 1, which the caller refuses), or what
        came before the peer closed (b"" if nothing)."""
        received = self._received
        scanned = 0
        while True:
            end = received.find(b"\n", scanned, MAX_LINE + 1)
            if end >= 0:
                line = bytes(received[: end + 1])
                del received[: end + 1]
                return line
            if len(received) > MAX_LINE:
                line = bytes(received[: MAX_LINE + 1])
                del received[: MAX_LINE + 1]
                return line
            scanned = len(received)
            if not self._fill(deadline):
                line = bytes(received)
                received.clear()
                return line

    def _headers(self, deadline: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._readline(deadline)
            if len(line) > MAX_LINE or not line.endswith(b"\n"):
                raise ValueError("malformed or truncated header line")
            if line in (b"\r\n", b"\n"):
                return headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ValueError("malformed header line")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        raise ValueError("too many header lines")

    def _body(
        self, status: int, version: str, headers: dict[str, str], deadline: float
    ) -> tuple[bytes, bool]:
        connection = headers.get("connection", "").lower()
        close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        if status in NO_BODY:
            return b"", close
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._chunked(deadline), close
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise ValueError(f"invalid Content-Length {length!r}")
            return self._exactly(int(length), deadline), close
        return self._until_close(deadline), True

    def _read(self, size: int, deadline: float) -> bytes:
        """Up to ``size`` bytes, at least one unless the peer closed (then b"")."""
        received = self._received
        if not received and not self._fill(deadline):
            return b""
        piece = bytes(received[:size])
        del received[:size]
        return piece

    def _exactly(self, size: int, deadline: float) -> bytes:
        kept = bytearray()
        left = size
        while left:
            piece = self._read(min(left, RECV_SIZE), deadline)
            if not piece:
                raise ValueError("connection closed inside the response body")
            left -= len(piece)
            if len(kept) < MAX_KEPT_BODY:
                kept += piece[: MAX_KEPT_BODY - len(kept)]
        return bytes(kept)

    def _chunked(self, deadline: float) -> bytes:
        kept = bytearray()
        while True:
            line = self._readline(deadline)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not size_text:
                raise ValueError("malformed chunk size line")
            size = int(size_text, 16)
            if size == 0:
                self._headers(deadline)  # trailers, up to the blank line
                return bytes(kept)
            piece = self._exactly(size, deadline)
            if len(kept) < MAX_KEPT_BODY:
                kept += piece[: MAX_KEPT_BODY - len(kept)]
            if self._exactly(2, deadline) != b"\r\n":
                raise ValueError("malformed chunk end")

    def _until_close(self, deadline: float) -> bytes:
        kept = bytearray()
        while piece := self._read(RECV_SIZE, deadline):
            if len(kept) < MAX_KEPT_BODY:
                kept += piece[: MAX_KEPT_BODY - len(kept)]
        return bytes(kept)

    def abort(self) -> None:
        """From another thread: make a request fail now, whatever it is waiting for: the name's
        lookup (woken), a connect or a TLS handshake, or the peer (shutdown wakes the wait)."""
        self._aborted = True  # before the wake-ups: the woken request must not retry
        self._lookups.wake()
        for sock in (self._connecting, self._sock):
            if sock is not None:
                with contextlib.suppress(OSError):
                    # socket.socket's own: SSLSocket.shutdown would also drop its TLS object
                    # under the feet of the thread reading through it
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        sock = self._sock
        self._sock = None
        self._received.clear()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class _StaleConnection(Exception):
    """The peer closed the connection before answering; on a reused connection, send again."""


class _Aborted(Exception):
    """abort() was called while the request was connecting or in its TLS handshake."""


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _status(line: bytes) -> tuple[str, int]:
    if len(line) > MAX_LINE or not line.endswith(b"\n"):
        raise ValueError("malformed status line")
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ValueError(f"malformed status line {line[:80]!r}")
    return parts[0], int(parts[1])
