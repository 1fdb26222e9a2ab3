"""The local stack's alert sink: where ``make up``'s Alertmanager delivers its webhooks.

``python -m perfanalysis.alertsink --listen-address 127.0.0.1:9095 --file var/log/alerts.jsonl``

It accepts Alertmanager's webhook POSTs (a JSON object with an ``alerts`` list, on any path: the
generated receivers post to ``/alerts`` and ``/<tenant>``), appends each notification to the
file as one JSON line (``received_at``, ``path`` and the ``notification`` as posted) and
answers 200; anything else is refused with a status and a line saying why. The file is bounded:
once it would grow past ``--max-bytes`` it is renamed to ``FILE.1`` (replacing the previous
one) and a new one begun, so at most twice that is kept (``tail -F`` follows across it).
``GET /health`` answers ``{"status": "ok"}``, for ``make status``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEFAULT_MAX_BYTES = 10 << 20  # per file: FILE and FILE.1 together hold at most twice that
MAX_BODY = 4 << 20  # one notification; Alertmanager's hold a group's alerts, far less than that


class Journal:
    """The JSON-lines file, rotated to FILE.1 before a line would take it past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n").encode()
        with self.lock:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, line)
            finally:
                os.close(descriptor)


class Handler(BaseHTTPRequestHandler):
    server_version = "perfanalysis-alertsink"
    journal: Journal  # set on the class made by ``serve``

    def do_POST(self) -> None:
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self._answer(411, "a POST needs a Content-Length (Alertmanager sends one)")
            return
        length = int(length_text)
        if length > MAX_BODY:
            self._answer(413, f"body of {length} bytes: at most {MAX_BODY} are taken")
            return
        body = self.rfile.read(length)
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            self._answer(
                415, f"Content-Type {kind or '(none)'}: expected application/json, "
                "an Alertmanager webhook notification"
            )  # fmt: skip
            return
        try:
            notification = json.loads(body)
        except ValueError as error:
            self._answer(400, f"body is not JSON: {error}")
            return
        if not isinstance(notification, dict) or not isinstance(notification.get("alerts"), list):
            self._answer(400, "not an Alertmanager webhook notification (no 'alerts' list)")
            return
        received_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        record = {"received_at": received_at, "path": self.path, "notification": notification}
        try:
            self.journal.append(record)
        except OSError as error:
            self._answer(500, f"cannot write {self.journal.path}: {error.strerror}")
            return
        self._answer(200, "recorded")

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


def make_server(host: str, port: int, path: Path, max_bytes: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"journal": Journal(path, max_bytes)})
    server_class = ThreadingHTTPServer
    if ":" in host:  # an IPv6 address

        class ServerV6(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        server_class = ServerV6
    server = server_class((host, port), handler)
    server.daemon_threads = True
    return server


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
