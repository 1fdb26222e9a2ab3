"""Mutation-audit gaps in exporter/collectors/diskstats.py: two disks with one label give one
series, and a udev entry without ID_ATA_WRITE_CACHE keeps the other ATA metrics."""

from __future__ import annotations

from pathlib import Path

from exporter.collectors.diskstats import DiskstatsCollector
from exporter.exposition import render
from exporter.model import MetricFamily
from exporter.paths import Paths
from tests.unit.promtext import parse_samples


def collect(tmp_path: Path, diskstats: bytes, udev: dict[str, str] | None = None) -> list:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "diskstats").write_bytes(diskstats)
    (tmp_path / "udev").mkdir()
    for name, text in (udev or {}).items():
        (tmp_path / "udev" / name).write_text(text)
    paths = Paths(procfs=str(tmp_path / "proc"), udev_data=str(tmp_path / "udev"))
    families: list[MetricFamily] = DiskstatsCollector(paths).collect()
    return families


def reads(families: list[MetricFamily]) -> list[tuple[tuple[str, ...], float]]:
    return next(f for f in families if f.name == "node_disk_reads_completed_total").samples


def test_two_disks_with_one_label_give_one_series_the_first(tmp_path: Path) -> None:
    """The same name twice, and a name holding the escape text of another's byte (sdx plus
    0xff and a literal sdx\\xff): the first is exported, the second dropped."""
    body = (
        b"   8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n"
        b"   8 0 sda 21 2 3 4 5 6 7 8 9 10 11\n"
        b"   8 16 sdx\xff 31 2 3 4 5 6 7 8 9 10 11\n"
        b"   8 32 sdx\\xff 41 2 3 4 5 6 7 8 9 10 11\n"
        b"   8 48 sdb 51 2 3 4 5 6 7 8 9 10 11\n"
    )
    families = collect(tmp_path, body)
    assert reads(families) == [(("sda",), 1.0), (("sdx\\xff",), 31.0), (("sdb",), 51.0)]
    info = next(f for f in families if f.name == "node_disk_info")
    assert len(info.samples) == 3
    parse_samples(render(families).decode())  # and the exposition has no duplicate series


def test_an_ata_disk_without_a_write_cache_property_keeps_the_other_ata_metrics(
    tmp_path: Path,
) -> None:
    udev = {"b8:0": "E:ID_ATA=1\nE:ID_ATA_WRITE_CACHE_ENABLED=1\nE:ID_ATA_ROTATION_RATE_RPM=0\n"}
    families = collect(tmp_path, b"   8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n", udev)
    ata = {f.name: f.samples for f in families if f.name.startswith("node_disk_ata_")}
    assert ata == {
        "node_disk_ata_write_cache": [],
        "node_disk_ata_write_cache_enabled": [(("sda",), 1.0)],
        "node_disk_ata_rotation_rate_rpm": [(("sda",), 0.0)],
    }
