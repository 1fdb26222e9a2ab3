"""The HTTP surface, served in-process on a loopback port with small stand-in collectors."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from exporter.model import GAUGE, MetricFamily, single
from exporter.registry import Registry
from exporter.server import ExporterServer


class Constant:
    def __init__(self, name: str, value: float) -> None:
        self.name = name
        self.value = value

    def collect(self) -> list[MetricFamily]:
        return [single(f"node_{self.name}", f"The {self.name} value.", GAUGE, self.value)]


class Broken:
    name = "broken"

    def collect(self) -> list[MetricFamily]:
        raise OSError("cannot read /proc/broken")


class Blocking:
    name = "blocking"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def collect(self) -> list[MetricFamily]:
        self.entered.set()
        assert self.release.wait(10), "test never released the blocking collector"
        return []


@contextmanager
def serve(registry: Registry, max_requests: int = 40) -> Iterator[str]:
    server = ExporterServer(("127.0.0.1", 0), registry, "/metrics", max_requests)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def base_url() -> Iterator[str]:
    with serve(Registry([Constant("alpha", 1.5), Broken(), Constant("beta", 2e6)])) as url:
        yield url


def test_metrics_serves_text_format_with_meta_metrics(base_url: str) -> None:
    response = requests.get(f"{base_url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    assert "node_alpha 1.5\n" in text
    assert "node_beta 2e+06\n" in text
    assert 'node_scrape_collector_success{collector="alpha"} 1\n' in text
    assert 'node_scrape_collector_success{collector="broken"} 0\n' in text
    assert 'node_scrape_collector_duration_seconds{collector="broken"} ' in text


def test_gzip_only_when_asked(base_url: str) -> None:
    raw = requests.get(
        f"{base_url}/metrics", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=5
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    assert b"node_alpha 1.5\n" in gzip.decompress(raw.raw.read())
    plain = requests.get(f"{base_url}/metrics", headers={"Accept-Encoding": "identity"}, timeout=5)
    assert "Content-Encoding" not in plain.headers


def test_collect_and_exclude_select_collectors(base_url: str) -> None:
    only = requests.get(f"{base_url}/metrics", params={"collect[]": "alpha"}, timeout=5).text
    assert "node_alpha" in only
    assert "node_beta" not in only
    assert "broken" not in only
    without = requests.get(f"{base_url}/metrics", params={"exclude[]": "broken"}, timeout=5).text
    assert "node_alpha" in without
    assert "node_beta" in without
    assert 'collector="broken"' not in without


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"collect[]": "nope"}, "collector 'nope' is unknown or disabled"),
        ({"collect[]": "alpha", "exclude[]": "beta"}, "cannot be combined"),
    ],
)
def test_bad_selection_is_400(base_url: str, params: dict[str, str], message: str) -> None:
    response = requests.get(f"{base_url}/metrics", params=params, timeout=5)
    assert response.status_code == 400
    assert message in response.text


def test_health_reports_the_last_scrapes_failures(base_url: str) -> None:
    before = requests.get(f"{base_url}/health", timeout=5).json()
    assert before["last_scrape"] is None
    requests.get(f"{base_url}/metrics", timeout=5)
    health = requests.get(f"{base_url}/health", timeout=5)
    assert health.status_code == 200
    report = json.loads(health.text)
    assert report["status"] == "degraded"
    assert report["failed_collectors"] == {"broken": "OSError: cannot read /proc/broken"}
    assert report["collectors"] == ["alpha", "broken", "beta"]


def test_unknown_path_is_404(base_url: str) -> None:
    assert requests.get(f"{base_url}/nothing", timeout=5).status_code == 404
    assert "/metrics" in requests.get(f"{base_url}/", timeout=5).text


def test_scrapes_beyond_max_requests_get_503() -> None:
    blocking = Blocking()
    results: list[int] = []

    def scrape(url: str) -> None:
        results.append(requests.get(url, timeout=10).status_code)

    with serve(Registry([blocking]), max_requests=1) as base_url:
        first = threading.Thread(target=scrape, args=(f"{base_url}/metrics",))
        first.start()
        assert blocking.entered.wait(5)
        second = requests.get(f"{base_url}/metrics", timeout=5)
        blocking.release.set()
        first.join(10)
        assert second.status_code == 503
        assert second.text == "Limit of concurrent requests reached (1), try again later.\n"
        assert results == [200]
