"""Where the exporter's HTTP answers follow node_exporter 1.5.0's (Go's net/http and promhttp),
found different by an audit against Debian's node_exporter on the same machine."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from exporter.http import split_target
from exporter.model import GAUGE, MetricFamily, single
from exporter.registry import Registry
from exporter.server import ExporterServer, clean_path, gzip_accepted


class OneGauge:
    name = "one"

    def collect(self) -> list[MetricFamily]:
        return [single("test_gauge", "help", GAUGE, 1.0)]


@pytest.fixture
def served() -> Iterator[tuple[str, int]]:
    server = ExporterServer(("127.0.0.1", 0), Registry([OneGauge()]))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield ("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def get(address: tuple[str, int], target: str, *headers: str) -> tuple[str, dict[str, str], bytes]:
    """Status line, headers (lower-cased names) and body of one GET sent as written."""
    lines = [f"GET {target} HTTP/1.1", "Host: x", "Connection: close", *headers, "", ""]
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall("\r\n".join(lines).encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status, *fields = head.decode().split("\r\n")
    return status, {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}, body


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("//metrics", "/metrics"),
        ("//evil/metrics", "/evil/metrics"),  # was the metrics: urlsplit read "evil" as a host
        ("/a/../metrics", "/metrics"),
        ("/./metrics?collect[]=one", "/metrics?collect[]=one"),
        ("//", "/"),
        ("/x//y/", "/x/y/"),
    ],
)
def test_a_path_that_is_not_clean_is_redirected_as_go_does(
    served: tuple[str, int], target: str, location: str
) -> None:
    status, headers, body = get(served, target)
    assert status == "HTTP/1.1 301 Moved Permanently"
    assert headers["location"] == location
    assert body == f'<a href="{location}">Moved Permanently</a>.\n\n'.encode()


def test_a_double_slash_target_is_a_path_not_a_host() -> None:
    assert split_target("//evil/metrics?x=1") == ("//evil/metrics", "x=1")
    assert split_target("http://host:9100/metrics?x=1") == ("/metrics", "x=1")
    assert clean_path("/metrics") == "/metrics"
    assert clean_path("/a/b/../../..") == "/"


@pytest.mark.parametrize("query", ["collect[]=", "collect[]", "collect[]=one&collect[]="])
def test_an_empty_collector_name_is_400(served: tuple[str, int], query: str) -> None:
    status, _, body = get(served, f"/metrics?{query}")
    assert status == "HTTP/1.1 400 Bad Request"
    assert b"collector '' is unknown or disabled" in body


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [("gzip", True), ("deflate, gzip;q=0.5", True), ("gzip;q=0", True),  # Go's quirk, kept
     ("x-gzip", False), ("identity", False), ("", False), ("br, gzipx", False)],
)  # fmt: skip
def test_gzip_is_chosen_as_promhttp_chooses(
    served: tuple[str, int], accept: str, gzipped: bool
) -> None:
    assert gzip_accepted(accept) is gzipped
    _, headers, _ = get(served, "/metrics", f"Accept-Encoding: {accept}")
    assert (headers.get("content-encoding") == "gzip") is gzipped


class Family:
    def __init__(self, name: str, help_text: str, value: float) -> None:
        self.name, self.help_text, self.value = name, help_text, value

    def collect(self) -> list[MetricFamily]:
        return [single("node_load1", self.help_text, GAUGE, self.value)]


def test_a_family_with_another_help_is_dropped_as_node_exporter_drops_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A textfile .prom defining node_load1 with its own HELP does not add to loadavg's."""
    ours = Family("loadavg", "1m load average.", 0.5)
    registry = Registry([ours, Family("textfile", "Metric read from /x/load.prom", 9.0)])
    families = {f.name: f for f in registry.scrape().families}
    assert families["node_load1"].samples == [((), 0.5)]
    assert "textfile: dropping node_load1, already exported with another type, HELP" in caplog.text
    same = Registry([ours, Family("textfile", "1m load average.", 9.0)])
    merged = {f.name: f for f in same.scrape().families}
    assert [value for _, value in merged["node_load1"].samples] == [0.5, 9.0]
