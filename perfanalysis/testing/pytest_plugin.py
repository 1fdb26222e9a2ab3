"""pytest fixtures that start real servers, stop them by PID, and show their logs on failure.

Register with ``pytest_plugins = ["perfanalysis.testing.pytest_plugin"]`` in the root conftest.

- ``servers``: a per-test ServerRegistry (``servers.influxdb(auth=False)``,
  ``servers.prometheus(config, rules)``, ``servers.alertmanager(config)``,
  ``servers.victoriametrics()``, ``servers.node_exporter(args)``, ``servers.exporter(args)``),
  under the test's ``tmp_path``; everything it started is stopped at teardown.
- ``shared_influxdb``: one InfluxDB for the session; use ``unique_database()`` in each test.

When a test's setup or call fails, the log tail of every server it used (through ``servers``,
``shared_influxdb`` or any fixture returning a server) is added to the failure report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from perfanalysis.testing.servers import (
    InfluxDB,
    ServerProcess,
    ServerRegistry,
    server_log_section,
)

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def phase_reports(item: pytest.Item) -> dict[str, pytest.TestReport]:
    """The item's reports so far by phase ("setup", "call", "teardown"), e.g. for a fixture's
    teardown that keeps evidence only when the test failed."""
    return item.stash.get(REPORTS, {})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if report.failed and report.when in ("setup", "call"):
        servers = used_servers(item)
        if servers:
            # Appended to the failing report itself: pytest prints it under the traceback.
            logs = "\n\n".join(server_log_section(server) for server in servers)
            report.sections.append(("server logs", logs))
    return report


def used_servers(item: pytest.Item) -> list[ServerProcess]:
    """Servers reachable from the item's fixture values, each once, in start order."""
    found: dict[int, ServerProcess] = {}
    for value in getattr(item, "funcargs", {}).values():
        candidates = list(value) if isinstance(value, ServerRegistry) else [value]
        for candidate in candidates:
            if isinstance(candidate, ServerProcess):
                found.setdefault(id(candidate), candidate)
    return list(found.values())


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerRegistry]:
    registry = ServerRegistry(tmp_path / "servers")
    try:
        yield registry
    finally:
        registry.stop_all()


@pytest.fixture(scope="session")
def shared_influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    with InfluxDB(tmp_path_factory.mktemp("shared-influxdb")) as influxdb:
        yield influxdb
