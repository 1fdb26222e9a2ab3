"""The exporter's routes: /metrics (gzip on request), /health and a landing page.

One process and one private registry. Scrapes are serialised by the registry; more than
--web.max-requests in flight are answered 503 at once, as node_exporter does (0: no limit).
"""

from __future__ import annotations

import gzip
import json
import logging
import posixpath
import re
import threading
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from exporter.exposition import CONTENT_TYPE, render
from exporter.http import MAX_CONNECTIONS, HTTPServer, Request, Response
from exporter.registry import Registry

if TYPE_CHECKING:
    from exporter.webconfig import WebConfig

log = logging.getLogger(__name__)

LANDING = """<!DOCTYPE html>
<html><head><title>PerfAnalysis exporter</title></head>
<body><h1>PerfAnalysis exporter</h1>
<p>node_exporter-compatible metrics for this host.</p>
<ul><li><a href="{path}">{path}</a></li><li><a href="/health">/health</a></li></ul>
</body></html>
"""


class ExporterServer(HTTPServer):
    def __init__(
        self,
        address: tuple[str, int],
        registry: Registry,
        telemetry_path: str = "/metrics",
        max_requests: int = 40,
        web_config: WebConfig | None = None,
        max_connections: int = MAX_CONNECTIONS,
        extra_addresses: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.registry = registry
        self.telemetry_path = telemetry_path
        self.max_requests = max_requests
        self.slots = threading.BoundedSemaphore(max_requests) if max_requests else None
        self.health_sources: list[Any] = []  # objects with a ``device_errors`` mapping
        if web_config is None:
            super().__init__(
                address,
                self.route,
                max_connections=max_connections,
                extra_addresses=extra_addresses,
            )
        else:  # TLS and basic auth on every path, as node_exporter's --web.config.file; the
            # file is re-read when it changes, as node_exporter reads it for every request
            live = web_config.live()
            super().__init__(
                address,
                live.wrap(self.route),
                live.tls_server(),
                max_connections,
                extra_addresses,
            )

    def route(self, request: Request) -> Response:
        """Routes on the percent-decoded path, as node_exporter (Go) does: /metric%73 is /metrics,
        and a path that is not clean (``//metrics``, ``/a/../metrics``) is redirected to its
        clean form, as Go's ServeMux does."""
        clean = clean_path(request.path)
        if clean != request.path:
            return redirect(clean, request.query)
        if request.path == self.telemetry_path:
            response = self.metrics(request.query)
            if response.status == 200 and gzip_accepted(request.headers.get("accept-encoding", "")):
                response.body = gzip.compress(response.body, compresslevel=1)
                response.headers["Content-Encoding"] = "gzip"
            return response
        if request.path == "/health":
            body = json.dumps(self.health(), indent=2).encode() + b"\n"
            return Response(200, body, "application/json")
        if request.path == "/":
            body = LANDING.format(path=self.telemetry_path).encode()
            return Response(200, body, "text/html; charset=utf-8")
        return Response(404, b"404 page not found\n")

    def metrics(self, query: str) -> Response:
        if self.slots is None:
            return self._answer_scrape(query)
        if not self.slots.acquire(blocking=False):
            limit = f"Limit of concurrent requests reached ({self.max_requests}), try again later."
            return Response(503, limit.encode() + b"\n")
        try:
            return self._answer_scrape(query)
        finally:
            self.slots.release()

    def _answer_scrape(self, query: str) -> Response:
        params = parse_qs(query, keep_blank_values=True)  # "collect[]=" names no collector: 400
        only, problem = self.selection(params.get("collect[]", []), params.get("exclude[]", []))
        if problem:
            return Response(400, problem.encode() + b"\n")
        return Response(200, render(self.registry.scrape(only).families), CONTENT_TYPE)

    def selection(self, collect: list[str], exclude: list[str]) -> tuple[list[str] | None, str]:
        names = self.registry.names
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

    def health(self) -> dict[str, Any]:
        last = self.registry.last
        device_errors: dict[str, str] = {}
        for source in self.health_sources:
            device_errors.update(source.device_errors)
        failed = dict(last.failures) if last else {}
        return {
            "status": "ok" if not failed and not device_errors else "degraded",
            "collectors": self.registry.names,
            "last_scrape": last.finished_at if last else None,
            "failed_collectors": failed,
            "filesystem_device_errors": device_errors,
        }


_SLASHES = re.compile(r"/{2,}")


def clean_path(path: str) -> str:
    """Go's ``cleanPath`` (net/http): slashes collapsed, ``.`` and ``..`` resolved, a trailing
    slash kept."""
    cleaned = posixpath.normpath(_SLASHES.sub("/", "/" + path))  # normpath would keep "//x"
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def redirect(path: str, query: str) -> Response:
    """301 to ``path``, the query kept, with the body Go's ``http.Redirect`` gives a GET."""
    location = quote(path, safe="/:@!$&'()*+,;=~") + (f"?{query}" if query else "")
    body = f'<a href="{escape(location)}">Moved Permanently</a>.\n\n'.encode()
    return Response(301, body, "text/html; charset=utf-8", {"Location": location})


def gzip_accepted(accept_encoding: str) -> bool:
    """Whether to gzip, as client_golang's promhttp decides (node_exporter 1.5.0): a part that is
    exactly ``gzip`` or starts ``gzip;``, whatever its q-value; not ``x-gzip``."""
    for part in accept_encoding.split(","):
        part = part.strip()
        if part == "gzip" or part.startswith("gzip;"):
            return True
    return False
