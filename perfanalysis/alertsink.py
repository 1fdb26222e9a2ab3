"""The local stack's alert sink: where ``make up``'s Alertmanager delivers its webhooks.

``python -m perfanalysis.alertsink --listen-address 127.0.0.1:9095 --file var/log/alerts.jsonl``

It accepts Alertmanager's webhook POSTs (a JSON object with an ``alerts`` list, on any path: the
generated receivers post to ``/alerts`` and ``/<tenant>``), appends each notification to the
file as one JSON line (``received_at``, ``path`` and the ``notification`` as posted) and
answers 200 once the whole line is written; a line it cannot write whole (a full disk) is cut
back off the file and answered 500, so that Alertmanager sends the notification again. Anything
else is refused with a status and a line saying why, a body that is not strict JSON (``NaN``,
which jq and Go refuse) or is nested too deeply to read included. The file is bounded: once it
would grow past ``--max-bytes`` it is renamed to ``FILE.1`` (replacing the previous one) and a
new one begun, so at most twice that is kept (``tail -F`` follows across it). A request has
``REQUEST_TIMEOUT`` seconds to arrive, and at most ``MAX_CONNECTIONS`` are handled at once (the
rest are answered 503), so that clients that stall hold neither threads nor memory for long.
``GET /health`` answers ``{"status": "ok"}``, for ``make status``.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

DEFAULT_MAX_BYTES = 10 << 20  # per file: FILE and FILE.1 together hold at most twice that
MAX_BODY = 4 << 20  # one notification; Alertmanager's hold a group's alerts, far less than that
REQUEST_TIMEOUT = 10.0  # seconds for a request's head, and for its whole body; loopback takes ms
MAX_CONNECTIONS = 32  # handled at once: each may hold a body of MAX_BODY in memory


class Journal:
    """The JSON-lines file, rotated to FILE.1 before a line would take it past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.lock = threading.Lock()

    def append(self, line: bytes) -> None:
        """Append ``line`` whole, or raise OSError and leave the file as it was: a write cut
        short (a full disk) is cut back off, so that no partial line is left for the next one to
        be glued to."""
        with self.lock:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                start = os.fstat(descriptor).st_size
                try:
                    _write_all(descriptor, line)
                except OSError as error:
                    _cut_back(descriptor, start, error)
                    raise
            finally:
                os.close(descriptor)


def _write_all(descriptor: int, data: bytes) -> None:
    """os.write until all of ``data`` is written; OSError when a write fails or writes nothing."""
    unwritten = memoryview(data)
    while unwritten:
        written = os.write(descriptor, unwritten)
        if written == 0:
            raise OSError(errno.ENOSPC, f"{len(data) - len(unwritten)} of {len(data)} bytes "
                          "written, then none")  # fmt: skip
        unwritten = unwritten[written:]


def _cut_back(descriptor: int, size: int, error: OSError) -> None:
    """Truncate the file back to ``size``; if even that fails, say so in ``error``'s text."""
    try:
        os.ftruncate(descriptor, size)
    except OSError as undo:
        error.strerror = (
            f"{error.strerror}; the partial line is left, cannot cut it: {undo.strerror}"
        )


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(
        f"{name} is not a JSON number (jq and Go refuse it; Alertmanager never sends it)"
    )


def encode_line(record: dict[str, Any]) -> bytes:
    """``record`` as one line of strict JSON; RecursionError if nested too deeply to write."""
    return (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()


TOO_DEEP = "body is nested too deeply to read (an Alertmanager notification is a few levels deep)"


class Handler(BaseHTTPRequestHandler):
    server_version = "perfanalysis-alertsink"
    journal: Journal  # set on the class made by ``make_server``
    timeout = REQUEST_TIMEOUT  # StreamRequestHandler sets it on the connection, for the head

    def do_POST(self) -> None:
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self._answer(411, "a POST needs a Content-Length (Alertmanager sends one)")
            return
        if not (length_text.isascii() and length_text.isdigit()):
            self._answer(400, f"Content-Length {length_text!r} is not a number of bytes")
            return
        digits = length_text.lstrip("0") or "0"
        if len(digits) > len(str(MAX_BODY)) or int(digits) > MAX_BODY:
            shown = digits if len(digits) <= 20 else f"a {len(digits)}-digit number of"
            self._answer(413, f"body of {shown} bytes: at most {MAX_BODY} are taken")
            return
        body = self._read_body(int(digits))
        if body is None:
            return
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            self._answer(
                415, f"Content-Type {kind or '(none)'}: expected application/json, "
                "an Alertmanager webhook notification"
            )  # fmt: skip
            return
        try:
            notification = json.loads(body, parse_constant=_refuse_constant)
        except ValueError as error:
            self._answer(400, f"body is not JSON: {error}")
            return
        except RecursionError:
            self._answer(400, TOO_DEEP)
            return
        if not isinstance(notification, dict) or not isinstance(notification.get("alerts"), list):
            self._answer(400, "not an Alertmanager webhook notification (no 'alerts' list)")
            return
        received_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        record = {"received_at": received_at, "path": self.path, "notification": notification}
        try:
            line = encode_line(record)
        except RecursionError:
            self._answer(400, TOO_DEEP)
            return
        try:
            self.journal.append(line)
        except OSError as error:
            self._answer(500, f"not recorded, cannot write {self.journal.path}: {error.strerror}")
            return
        self._answer(200, "recorded")

    def _read_body(self, length: int) -> bytes | None:
        """The body, all of it within ``timeout`` seconds (a deadline for the whole, not for each
        read, so that a client trickling it cannot hold the connection); None, answered, when
        it does not all come."""
        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        missing = length
        try:
            while missing:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                chunk = self.rfile.read1(min(missing, 1 << 16))
                if not chunk:
                    self._answer(400, f"the body ended after {length - missing} of the {length} "
                                 "bytes its Content-Length announced")  # fmt: skip
                    return None
                chunks.append(chunk)
                missing -= len(chunk)
        except TimeoutError:
            self.connection.settimeout(self.timeout)
            self._answer(408, f"the body did not come within {self.timeout:g} s: "
                         f"{length - missing} of {length} bytes came")  # fmt: skip
            return None
        self.connection.settimeout(self.timeout)
        return b"".join(chunks)

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/health":
            self._answer(200, json.dumps({"status": "ok"}), "application/json")
            return
        self._answer(
            404, f"nothing here: POST Alertmanager webhooks (they are appended to "
            f"{self.journal.path}); GET /health"
        )  # fmt: skip

    def _refuse_method(self) -> None:
        self._answer(405, f"method {self.command} not allowed: POST a webhook, or GET /health",
                     allow="GET, POST")  # fmt: skip

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse_method  # noqa: N815

    def _answer(
        self, status: int, text: str, kind: str = "text/plain; charset=utf-8", allow: str = ""
    ) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.path.split("?")[0] == "/health":
            return  # make status and make up's readiness checks
        sys.stderr.write(f"{self.log_date_time_string()} {self.address_string()} {format % args}\n")
        sys.stderr.flush()


class SinkServer(ThreadingHTTPServer):
    """A thread per request, but at most ``max_connections`` at once: one more is answered 503
    (Alertmanager retries it) and closed, so that stalled clients cannot pile up threads."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[Handler], max_connections: int
    ) -> None:
        self.max_connections = max_connections
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self._turn_away(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def _turn_away(self, request: socket.socket, client_address: Any) -> None:
        body = f"busy: {self.max_connections} requests are being handled; retry\n".encode()
        head = (
            "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        sys.stderr.write(
            f"{client_address[0]} turned away: {self.max_connections} requests at once\n"
        )
        sys.stderr.flush()
        try:
            request.settimeout(1.0)
            request.sendall(head.encode() + body)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)


class SinkServerV6(SinkServer):
    address_family = socket.AF_INET6


def make_server(
    host: str,
    port: int,
    path: Path,
    max_bytes: int,
    *,
    timeout: float = REQUEST_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> SinkServer:
    handler = type("BoundHandler", (Handler,), {"journal": Journal(path, max_bytes),
                                                 "timeout": timeout})  # fmt: skip
    server_class = SinkServerV6 if ":" in host else SinkServer  # an IPv6 address, or not
    return server_class((host, port), handler, max_connections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perfanalysis.alertsink",
        description="Append Alertmanager webhook notifications to a JSON-lines file.",
    )
    parser.add_argument("--listen-address", required=True, metavar="HOST:PORT")
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    args = parser.parse_args(argv)
    host, _, port = args.listen_address.rpartition(":")
    if not port.isdigit() or args.max_bytes <= 0:
        parser.error("--listen-address must be HOST:PORT and --max-bytes above 0")
    args.file.parent.mkdir(parents=True, exist_ok=True)
    server = make_server(host.strip("[]") or "127.0.0.1", int(port), args.file, args.max_bytes)
    print(f"alertsink: listening on {args.listen_address}, appending to {args.file}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
