"""A keep-alive HTTP/1.1 client connection for storage writes: a request of a head and a body
sent in one system call, and a small answer parsed from the bytes received.

http.client costs a write about 0.2-0.3 ms of CPU beyond the system calls (measured against
InfluxDB 1.6.7: 0.22 ms against 0.04 ms for a 250-point write, 0.50 against 0.21 ms for 5,000
points): it copies the body onto the head, and parses the answer's headers with the email
package. A storage answer is a status, a few headers and at most a short error message, so this
reads it whole and parses only what framing needs: Content-Length, chunked Transfer-Encoding,
or the end of the connection, and whether the connection may be used again.

An exchange's timeout bounds the whole of it: looking the host's name up, connecting, the TLS
handshake, sending, and every receive up to the end of the answer (interim 1xx answers
included) share one deadline, each given only the time left of it. Before (an audit,
2026-11-25), each socket operation had the whole timeout again, so a storage answering a byte
every 0.8 s held a write with a 1 s timeout for 21.6 s; and the name's lookup had no deadline
at all, so a nameserver that did not answer held a write for resolv.conf's timeout times its
attempts (10 s by default). The lookup now runs on a thread of its own
(perfanalysis/namelookup.py), one per name at a time, and a late answer serves the next
connection opened within LATE_ANSWER_FRESH.

A plain TCP connection is a blocking socket whose timeouts are the kernel's (SO_SNDTIMEO and
SO_RCVTIMEO): a Python socket with a timeout polls before every send and receive, each a system
call more and a handover of the GIL more, and every change of its timeout is one more (FIONBIO).
Over TLS the socket keeps Python's timeout, which the ssl module needs. Either is set to the
time left only when it is more than DEADLINE_SLACK away from it, so a prompt answer costs no
system call more than before.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass

from perfanalysis.namelookup import LATE_ANSWER_FRESH, NameLookups

MAX_HEAD = 64 * 1024
MAX_BODY = 1 << 20  # an answer's body: storage says "204" or a short error
RECV = 64 * 1024
DEADLINE_SLACK = 0.005  # a socket timeout this close to the time left is not changed


# shared by every connection: a lookup outliving its write goes on, and the next write to open
# a connection waits for it or takes its answer
def splits_a_header(value: str) -> bool:
    """Whether ``value`` holds a control character: in a header, a line break would end the
    header (or the head) early, and storage would read what follows as something else."""
    return any(ord(character) < 0x20 or ord(character) == 0x7F for character in value)


STORAGE_LOOKUPS = NameLookups("storage-lookup", late_answer_fresh_for=LATE_ANSWER_FRESH)


class BadAnswer(Exception):
    """The server's answer is not HTTP/1.x we can frame; the connection is closed."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    reusable: bool  # the connection may carry another request


class Connection:
    def __init__(
        self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls
        self.sock: socket.socket | None = None
        self._buffer = bytearray()
        self._deadline = 0.0  # the current exchange's, by time.monotonic()
        self._send_timeout = timeout  # what a plain socket's kernel timeouts hold
        self._receive_timeout = timeout

    def connect(self, deadline: float | None = None) -> None:
        """Look the host up, connect (and shake hands over TLS) by ``deadline``
        (time.monotonic()), by default ``timeout`` from now; TimeoutError after it."""
        self._deadline = time.monotonic() + self.timeout if deadline is None else deadline
        sock = self._open()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock.settimeout(self._time_left())
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            else:
                sock.settimeout(None)
                _kernel_timeouts(sock, self.timeout)
                self._send_timeout = self._receive_timeout = self.timeout
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def _open(self) -> socket.socket:
        """A TCP connection to one of the host's addresses, looked up and each tried with the
        time left (socket.create_connection's lookup takes no timeout at all, and it gives each
        address the whole timeout)."""
        failure: OSError | None = None
        for family, kind, protocol, _, address in STORAGE_LOOKUPS.resolve(
            self.host, self.port, self._deadline
        ):
            sock = socket.socket(family, kind, protocol)
            try:
                sock.settimeout(self._time_left())
                sock.connect(address)
                return sock
            except TimeoutError:
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                failure = exc
        raise failure or OSError(f"no address for {self.host!r}")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._buffer.clear()

    def set_timeout(self, timeout: float) -> None:
        if timeout == self.timeout:  # the socket has it already: no system call
            return
        self.timeout = timeout
        if self.sock is None:
            return
        if self.tls is None:
            _kernel_timeouts(self.sock, timeout)
            self._send_timeout = self._receive_timeout = timeout
        else:
            self.sock.settimeout(timeout)

    def exchange(self, head: bytes, body: bytes | None) -> Answer:
        """Send ``head`` (request line and headers, ending in an empty line) and ``body``, and
        read the answer (not to a HEAD request: its answer's length would be misread), all
        within ``timeout``: TimeoutError once it has passed. Closes the connection itself when
        it cannot be used again; OSError, TimeoutError or BadAnswer leave it closed (a timeout
        may leave half an answer unread)."""
        self._deadline = time.monotonic() + self.timeout
        try:
            if self.sock is None:
                self.connect(self._deadline)
            try:
                self._send(head, body or b"")
            except TimeoutError:
                raise
            except OSError as unsent:
                return self._early_answer(unsent)
            answer = self._answer()
        except BaseException:
            self.close()
            raise
        if not answer.reusable:
            self.close()
        return answer

    def _early_answer(self, unsent: OSError) -> Answer:
        """The answer a server sent before it stopped reading the request (InfluxDB's 413 for
        a body over its max-body-size, then a reset: EPIPE or ECONNRESET, SSLEOFError over
        TLS). The kernel keeps what arrived before the reset. No answer there: ``unsent``."""
        try:
            answer = self._answer()
        except (OSError, BadAnswer):
            raise unsent from None
        self.close()  # the request was not sent whole: the connection is out of step
        return Answer(answer.status, answer.body, reusable=False)

    def _send(self, head: bytes, body: bytes) -> None:
        """Send both whole by the deadline (TimeoutError after it), as sendall() does."""
        assert self.sock is not None
        sock = self.sock
        if self.tls is not None:  # SSL sockets have no sendmsg
            for part in (head, body) if body else (head,):
                view = memoryview(part)
                while view:
                    self._await_sending()
                    view = view[sock.send(view) :]
            return
        try:
            self._await_sending()
            sent = sock.sendmsg([head, body] if body else [head])
            if sent == len(head) + len(body):
                return
            # Cut short (the timeout came, or a signal): the rest within what is left of it.
            whole = memoryview(head + body)
            while sent < len(whole):
                self._await_sending()
                sent += sock.send(whole[sent:])
        except BlockingIOError:  # nothing sent within the kernel's timeout
            raise TimeoutError("timed out") from None

    def _time_left(self) -> float:
        """Seconds left until the deadline; TimeoutError if none."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left

    def _await_sending(self) -> None:
        """Give the next send the time left (TimeoutError if none)."""
        assert self.sock is not None
        left = self._time_left()
        if self.tls is not None:
            _python_timeout(self.sock, left)
        elif abs(self._send_timeout - left) > DEADLINE_SLACK:
            _kernel_timeouts(self.sock, left, receive=False)
            self._send_timeout = left

    def _await_receiving(self) -> None:
        """Give the next receive the time left (TimeoutError if none)."""
        assert self.sock is not None
        left = self._time_left()
        if self.tls is not None:
            _python_timeout(self.sock, left)
        elif abs(self._receive_timeout - left) > DEADLINE_SLACK:
            _kernel_timeouts(self.sock, left, send=False)
            self._receive_timeout = left

    def _answer(self) -> Answer:
        """The answer, by the deadline: each receive of it (of an interim 1xx answer too) has
        only the time left, so a storage sending its answer slowly cannot stretch it."""
        while True:
            end = self._fill_until(b"\r\n\r\n", MAX_HEAD, "the answer's head")
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            status, version, headers = _parse_head(head)
            if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
                continue
            break
        close = "close" in headers.get("connection", "").lower() or version == b"HTTP/1.0"
        if status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
        elif "content-length" in headers:
            body = self._exactly(_length(headers["content-length"]))
        else:  # delimited by the end of the connection
            body = self._until_closed()
            close = True
        # bytes after the answer were never asked for: the connection's framing is lost
        return Answer(status, body, reusable=not close and not self._buffer)

    def _receive(self) -> bytes:
        assert self.sock is not None
        self._await_receiving()
        try:
            chunk = self.sock.recv(RECV)
        except BlockingIOError:  # nothing within the kernel's timeout (SO_RCVTIMEO)
            raise TimeoutError("timed out") from None
        if chunk:
            self._buffer += chunk
        return chunk

    def _fill_until(self, marker: bytes, limit: int, what: str) -> int:
        """Receive until the buffer holds ``marker``; its position."""
        start = 0
        while (found := self._buffer.find(marker, start)) < 0:
            if len(self._buffer) > limit:
                raise BadAnswer(f"{what} is longer than {limit} bytes")
            start = max(0, len(self._buffer) - len(marker) + 1)
            if not self._receive():
                raise BadAnswer(f"the connection closed within {what}")
        return found

    def _exactly(self, size: int) -> bytes:
        if size > MAX_BODY:
            raise BadAnswer(f"an answer of {size} bytes is not a storage answer")
        while len(self._buffer) < size:
            if not self._receive():
                raise BadAnswer(f"the connection closed within a body of {size} bytes")
        body = bytes(self._buffer[:size])
        del self._buffer[:size]
        return body

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            end = self._fill_until(b"\r\n", MAX_HEAD, "a chunk's size line")
            size_text = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
            del self._buffer[: end + 2]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadAnswer(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                break
            total += size
            if total > MAX_BODY:
                raise BadAnswer(f"an answer of more than {MAX_BODY} bytes is not a storage answer")
            parts.append(self._exactly(size))
            if self._exactly(2) != b"\r\n":
                raise BadAnswer("a chunk does not end with CRLF")
        while (end := self._fill_until(b"\r\n", MAX_HEAD, "the trailers")) > 0:
            del self._buffer[: end + 2]  # a trailer line, ignored
        del self._buffer[:2]
        return b"".join(parts)

    def _until_closed(self) -> bytes:
        while self._receive():
            if len(self._buffer) > MAX_BODY:
                raise BadAnswer(f"an answer of more than {MAX_BODY} bytes is not a storage answer")
        body = bytes(self._buffer)
        self._buffer.clear()
        return body


def _kernel_timeouts(
    sock: socket.socket, timeout: float, send: bool = True, receive: bool = True
) -> None:
    """A blocking socket's sends and receives (or one of them) give up after ``timeout``
    seconds, with EAGAIN (BlockingIOError); at least a microsecond, since 0 would be no timeout
    at all."""
    micros = max(1, round(timeout * 1_000_000))
    value = struct.pack("@ll", micros // 1_000_000, micros % 1_000_000)
    if send:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    if receive:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)


def _python_timeout(sock: socket.socket, left: float) -> None:
    """Give a TLS socket's next operation ``left`` seconds: the ssl module bounds each read or
    write, retries included, by its socket's timeout. Left as it is if close enough, since each
    change is an ioctl."""
    current = sock.gettimeout()
    if current is None or abs(current - left) > DEADLINE_SLACK:
        sock.settimeout(left)


def _parse_head(head: bytes) -> tuple[int, bytes, dict[str, str]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[1].isdigit():
        raise BadAnswer(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise BadAnswer(f"bad header line {line[:80]!r}")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return int(parts[1]), parts[0], headers


def _length(text: str) -> int:
    values = {value.strip() for value in text.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise BadAnswer(f"bad Content-Length {text[:40]!r}")
    return int(values.pop())
