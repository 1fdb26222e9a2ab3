"""The HTTP surface: /metrics (gzip on request), /health and a landing page.

One process and one private registry. Scrapes are serialised by the registry; more than
--web.max-requests in flight are answered 503 at once, as node_exporter does.
"""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from exporter.exposition import CONTENT_TYPE, render
from exporter.registry import Registry

log = logging.getLogger(__name__)

LANDING = """<!DOCTYPE html>
<html><head><title>PerfAnalysis exporter</title></head>
<body><h1>PerfAnalysis exporter</h1>
<p>node_exporter-compatible metrics for this host.</p>
<ul><li><a href="{path}">{path}</a></li><li><a href="/health">/health</a></li></ul>
</body></html>
"""


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        registry: Registry,
        telemetry_path: str = "/metrics",
        max_requests: int = 40,
    ) -> None:
        self.registry = registry
        self.telemetry_path = telemetry_path
        self.slots = threading.BoundedSemaphore(max_requests)
        self.health_sources: list[Any] = []  # objects with a ``device_errors`` mapping
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"
    server_version = "perfanalysis-exporter"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle's algorithm and the client's
        # delayed ACK add ~40 ms to every keep-alive scrape
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == self.server.telemetry_path:
            self._metrics(url.query)
        elif url.path == "/health":
            self._health()
        elif url.path == "/":
            body = LANDING.format(path=self.server.telemetry_path).encode()
            self._send(200, "text/html; charset=utf-8", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"404 page not found\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _metrics(self, query: str) -> None:
        if not self.server.slots.acquire(blocking=False):
            self._send(503, "text/plain; charset=utf-8", b"too many concurrent scrapes\n")
            return
        try:
            params = parse_qs(query)
            only, problem = self._selection(
                params.get("collect[]", []), params.get("exclude[]", [])
            )
            if problem:
                self._send(400, "text/plain; charset=utf-8", problem.encode() + b"\n")
                return
            result = self.server.registry.scrape(only)
            body = render(result.families)
        except Exception:
            log.exception("scrape failed")
            self._send(500, "text/plain; charset=utf-8", b"scrape failed, see the exporter's log\n")
            return
        finally:
            self.server.slots.release()
        self._send(200, CONTENT_TYPE, body, compressible=True)

    def _selection(self, collect: list[str], exclude: list[str]) -> tuple[list[str] | None, str]:
        names = self.server.registry.names
        if collect and exclude:
            return None, "collect[] and exclude[] cannot be combined"
        for name in collect + exclude:
            if name not in names:
                return (
                    None,
                    f"collector {name!r} is unknown or disabled; enabled: {', '.join(names)}",
                )
        if collect:
            return collect, ""
        if exclude:
            return [n for n in names if n not in exclude], ""
        return None, ""

    def _health(self) -> None:
        last = self.server.registry.last
        device_errors: dict[str, str] = {}
        for source in self.server.health_sources:
            device_errors.update(source.device_errors)
        failed = dict(last.failures) if last else {}
        report = {
            "status": "ok" if not failed and not device_errors else "degraded",
            "collectors": self.server.registry.names,
            "last_scrape": last.finished_at if last else None,
            "failed_collectors": failed,
            "filesystem_device_errors": device_errors,
        }
        self._send(200, "application/json", json.dumps(report, indent=2).encode() + b"\n")

    def _send(
        self, status: int, content_type: str, body: bytes, compressible: bool = False
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if compressible and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=1)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
