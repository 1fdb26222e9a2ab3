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

from perfanalysis.tlskey import refuse_passphrase

MAX_LINE = 8192
MAX_HEADERS = 100
MAX_KEPT_BODY = 64 * 1024  # an error body longer than this is read to the end but not kept
NO_BODY = frozenset({204, 304})


class TransportError(Exception):
    """The request got no complete response; ``kind`` is ``timeout`` or ``error``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


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
    """A keep-alive connection to one endpoint, opened on first use and after any failure."""

    def __init__(
        self, endpoint: Endpoint, timeout: float, user_agent: str, tls: TLSFiles | None = None
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.user_agent = user_agent
        self.tls = tls or TLSFiles()
        self._sock: socket.socket | None = None
        self._file: Any = None
        self._reused = False
        self._aborted = False  # set by abort(): the request must fail, not be retried
        self._ssl_context: Any = None
        self._tls_stamp: tuple[int, ...] = ()

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Response:
        """Send one request and read its response; raises TransportError (and closes) on failure."""
        deadline = time.monotonic() + self.timeout
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
            except TimeoutError as exc:
                self.close()
                raise TransportError("timeout", f"timed out after {self.timeout:g}s") from exc
            except _StaleConnection:
                self.close()
                if self._aborted:
                    raise TransportError("error", "aborted") from None
                if attempt == 2 or not reused:  # a fresh connection closed on us: a real error
                    raise TransportError("error", "connection closed without a response") from None
            except (OSError, ValueError) as exc:
                self.close()
                raise TransportError("error", f"{type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def _connect(self, deadline: float) -> None:
        if self._sock is not None:
            return
        sock = socket.create_connection(
            (self.endpoint.host, self.endpoint.port), timeout=_remaining(deadline)
        )
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.endpoint.scheme == "https":
                sock = self.tls_context().wrap_socket(sock, server_hostname=self.endpoint.host)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._file = sock.makefile("rb")
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
        sock, reader = self._sock, self._file
        assert sock is not None
        assert reader is not None
        sock.settimeout(_remaining(deadline))
        try:
            sock.sendall(message)
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
        first = True
        while True:
            sock.settimeout(_remaining(deadline))
            try:
                status_line = reader.readline(MAX_LINE + 1)
            except ConnectionResetError:
                status_line = b""
            if not status_line and first:
                raise _StaleConnection()
            first = False
            version, status = _status(status_line)
            headers = _headers(reader, sock, deadline)
            if 100 <= status < 200:  # an interim response (e.g. 100 Continue): the real one follows
                continue
            break
        body, close = self._body(status, version, headers, deadline)
        if close or not sent:  # a request not sent whole leaves the connection out of step
            self.close()
        else:
            self._reused = True
        return Response(status, headers, body)

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
        assert self._sock is not None
        self._sock.settimeout(_remaining(deadline))
        data: bytes = self._file.read(size)
        return data

    def _exactly(self, size: int, deadline: float) -> bytes:
        kept = bytearray()
        left = size
        while left:
            piece = self._read(min(left, 65536), deadline)
            if not piece:
                raise ValueError("connection closed inside the response body")
            left -= len(piece)
            if len(kept) < MAX_KEPT_BODY:
                kept += piece[: MAX_KEPT_BODY - len(kept)]
        return bytes(kept)

    def _chunked(self, deadline: float) -> bytes:
        kept = bytearray()
        assert self._sock is not None
        while True:
            self._sock.settimeout(_remaining(deadline))
            line = self._file.readline(MAX_LINE + 1)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not size_text:
                raise ValueError("malformed chunk size line")
            size = int(size_text, 16)
            if size == 0:
                _headers(self._file, self._sock, deadline)  # trailers, up to the blank line
                return bytes(kept)
            piece = self._exactly(size, deadline)
            if len(kept) < MAX_KEPT_BODY:
                kept += piece[: MAX_KEPT_BODY - len(kept)]
            if self._read(2, deadline) != b"\r\n":
                raise ValueError("malformed chunk end")

    def _until_close(self, deadline: float) -> bytes:
        kept = bytearray()
        while piece := self._read(65536, deadline):
            if len(kept) < MAX_KEPT_BODY:
                kept += piece[: MAX_KEPT_BODY - len(kept)]
        return bytes(kept)

    def abort(self) -> None:
        """From another thread: make a blocked request fail now (shutdown wakes its recv)."""
        self._aborted = True  # before the shutdown: the woken request must not retry
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        file, sock = self._file, self._sock
        self._file = self._sock = None
        for closable in (file, sock):
            if closable is not None:
                with contextlib.suppress(OSError):
                    closable.close()


class _StaleConnection(Exception):
    """The peer closed the connection before answering; on a reused connection, send again."""


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


def _headers(reader: Any, sock: socket.socket, deadline: float) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        sock.settimeout(_remaining(deadline))
        line = reader.readline(MAX_LINE + 1)
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
