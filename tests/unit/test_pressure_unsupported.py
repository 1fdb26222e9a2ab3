"""A host without PSI is a quiet "no data": success 0 as node_exporter 1.5.0, /health stays ok.

node_exporter 1.5.0 on a procfs without pressure/ (run 2026-11-24): the collector returns
ErrNoData, logged at debug, and ``node_scrape_collector_success{collector="pressure"} 0``; its
source maps EOPNOTSUPP (PSI compiled in but booted without psi=1) to ErrNoData too.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from exporter.collectors.loadavg import LoadavgCollector
from exporter.collectors.pressure import PressureCollector
from exporter.exposition import render
from exporter.paths import Paths, read_text
from exporter.registry import Collector, Registry
from exporter.server import ExporterServer
from tests.unit.promtext import parse_samples, success, tree


@contextmanager
def health_after_one_scrape(registry: Registry) -> Iterator[dict[str, Any]]:
    server = ExporterServer(("127.0.0.1", 0), registry)
    try:
        registry.scrape()
        yield server.health()
    finally:
        server.server_close()


def refusing(code: int) -> Callable[[str], str]:
    """A read_text whose reads of /proc/pressure/* fail with ``code``, as a kernel's would."""

    def read(path: str) -> str:
        if "/pressure/" in path:
            raise OSError(code, f"{errno.errorcode[code]} (injected)", path)
        return read_text(path)

    return read


def registry_on(root: Path, read: Callable[[str], str] = read_text) -> Registry:
    paths = Paths(procfs=str(root / "proc"))
    collectors: list[Collector] = [PressureCollector(paths, read), LoadavgCollector(paths)]
    return Registry(collectors)


def test_no_pressure_directory_is_no_data_and_health_stays_ok(tmp_path: Path) -> None:
    shutil.copytree(tree("4.19"), tmp_path / "tree")  # a 4.19 kernel: no /proc/pressure
    registry = registry_on(tmp_path / "tree")
    with health_after_one_scrape(registry) as health:
        assert health["status"] == "ok"
        assert health["failed_collectors"] == {}
    result = registry.last
    assert result is not None
    assert result.no_data == {
        "pressure": "no pressure information: needs Linux >= 4.20 with CONFIG_PSI enabled (psi=1)"
    }
    samples = parse_samples(render(result.families).decode())
    assert success(samples) == {"pressure": 0, "loadavg": 1}  # node_exporter 1.5.0's values
    assert not any(name.startswith("node_pressure_") for name, _ in samples)


def test_reads_refused_as_not_supported_are_no_data_and_health_stays_ok() -> None:
    assert errno.ENOTSUP == errno.EOPNOTSUPP  # one number on Linux
    registry = registry_on(tree("6.8"), refusing(errno.EOPNOTSUPP))  # the files exist: psi=0
    with health_after_one_scrape(registry) as health:
        assert health["status"] == "ok"
        assert health["failed_collectors"] == {}
    assert registry.last is not None
    assert set(registry.last.no_data) == {"pressure"}
    samples = parse_samples(render(registry.last.families).decode())
    assert success(samples) == {"pressure": 0, "loadavg": 1}
    assert not any(name.startswith("node_pressure_") for name, _ in samples)


def test_other_read_errors_still_degrade_health() -> None:
    registry = registry_on(tree("6.8"), refusing(errno.EIO))
    with health_after_one_scrape(registry) as health:
        assert health["status"] == "degraded"
        assert health["failed_collectors"] == {
            "pressure": f"OSError: [Errno {errno.EIO}] EIO (injected): "
            f"'{tree('6.8')}/proc/pressure/cpu'"
        }


def test_pressure_files_without_a_total_are_a_failure_not_no_data(tmp_path: Path) -> None:
    (tmp_path / "proc" / "pressure").mkdir(parents=True)
    (tmp_path / "proc" / "pressure" / "cpu").write_text("some avg10=0.00 avg60=0.00\n")
    registry = registry_on(tmp_path)
    with health_after_one_scrape(registry) as health:
        assert health["status"] == "degraded"
        assert health["failed_collectors"]["pressure"] == (
            f"ValueError: {tmp_path}/proc/pressure: no stall total in any file"
        )
