"""diskstats collector: exact node_disk_* per kernel generation, device filters and udev info."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from exporter.collectors.diskstats import DiskstatsCollector, go_parse_float
from exporter.paths import Paths
from tests.unit.promtext import headers, label_values, parse_samples, scrape, series, tree

SECTOR = 512
MS = 1 / 1000  # node_exporter multiplies by 1/1000: 45678 ms is 45.678000000000004 s, not 45.678
BASE = (
    "reads_completed_total", "reads_merged_total", "read_bytes_total", "read_time_seconds_total",
    "writes_completed_total", "writes_merged_total", "written_bytes_total",
    "write_time_seconds_total", "io_now", "io_time_seconds_total", "io_time_weighted_seconds_total",
)  # fmt: skip
DISCARD = (
    "discards_completed_total",
    "discards_merged_total",
    "discarded_sectors_total",
    "discard_time_seconds_total",
)
FLUSH = ("flush_requests_total", "flush_requests_time_seconds_total")
SURVIVORS = {
    "3.10": {"sda", "sdb", "sr0", "dm-0", "dm-1", "dm-2"},
    "4.19": {"nvme0n1", "sda", "mmcblk0", "mmcblk0p1", "mmcblk0p2", "dm-0", "dm-1", "sr0"},
    "6.8": {
        "sda", "sdb", "nvme0n1", "nvme1n1", "dm-0", "dm-1", "dm-2", "dm-3",
        "mmcblk0", "mmcblk0p1", "sr0", "vda", "xvda", "md0", "md127",
    },
}  # fmt: skip


def disks(kernel: str, *flags: str) -> dict:
    return parse_samples(scrape(tree(kernel), "diskstats", flags=flags))


def row(samples: dict, device: str) -> dict[str, float]:
    """The device's /proc/diskstats values (no udev-derived families), keyed by the short name."""
    return {
        name.removeprefix("node_disk_"): v
        for (name, lab), v in samples.items()
        if name.startswith("node_disk_")
        and not name.startswith(("node_disk_ata_", "node_disk_info"))
        and lab == {("device", device)}
    }


def devices(samples: dict, name: str = "node_disk_reads_completed_total") -> set[str]:
    return label_values(samples, name, "device")


@pytest.mark.parametrize("kernel", sorted(SURVIVORS))
def test_default_exclude_survivors(kernel: str) -> None:
    samples = disks(kernel)
    for name in (*BASE, "info"):
        assert devices(samples, f"node_disk_{name}") == SURVIVORS[kernel], name


def test_14_fields_on_3_10() -> None:
    samples = disks("3.10")
    assert row(samples, "sda") == {
        "reads_completed_total": 1234567,
        "reads_merged_total": 23456,
        "read_bytes_total": 98765432 * SECTOR,
        "read_time_seconds_total": 4567890 * MS,
        "writes_completed_total": 2345678,
        "writes_merged_total": 345678,
        "written_bytes_total": 123456789 * SECTOR,
        "write_time_seconds_total": 8765432 * MS,
        "io_now": 2,
        "io_time_seconds_total": 3456789 * MS,
        "io_time_weighted_seconds_total": 13333333 * MS,
    }
    for name in DISCARD + FLUSH:
        assert series(samples, f"node_disk_{name}") == {}, name


def test_18_fields_on_4_19_discards_stay_in_sectors() -> None:
    samples = disks("4.19")
    nvme = row(samples, "nvme0n1")
    assert nvme.keys() == set(BASE + DISCARD)
    assert nvme["read_bytes_total"] == 187654321 * SECTOR
    assert nvme["written_bytes_total"] == 298765432 * SECTOR
    assert nvme["discards_completed_total"] == 45678
    assert nvme["discards_merged_total"] == 0
    assert nvme["discarded_sectors_total"] == 98765432
    assert nvme["discard_time_seconds_total"] == 4321 * MS
    assert row(samples, "mmcblk0")["discarded_sectors_total"] == 24576


def test_short_line_is_skipped_on_4_19() -> None:
    """`8 16 sdb 1234 56` has 5 fields; node_exporter 1.5.0 drops such a line entirely."""
    samples = disks("4.19")
    assert "sdb" not in devices(samples, "node_disk_info")
    assert row(samples, "sdb") == {}


def test_20_fields_on_6_8() -> None:
    sda = row(disks("6.8"), "sda")
    assert sda == {
        "reads_completed_total": 123456,
        "reads_merged_total": 7890,
        "read_bytes_total": 9876543 * SECTOR,
        "read_time_seconds_total": 45678 * MS,
        "writes_completed_total": 234567,
        "writes_merged_total": 34567,
        "written_bytes_total": 19876543 * SECTOR,
        "write_time_seconds_total": 56789 * MS,
        "io_now": 3,
        "io_time_seconds_total": 67890 * MS,
        "io_time_weighted_seconds_total": 102468 * MS,
        "discards_completed_total": 1234,
        "discards_merged_total": 12,
        "discarded_sectors_total": 987654,
        "discard_time_seconds_total": 345 * MS,
        "flush_requests_total": 4567,
        "flush_requests_time_seconds_total": 890 * MS,
    }


def test_exposition_digits_match_node_exporter() -> None:
    text = scrape(tree("6.8"), "diskstats")
    assert 'node_disk_read_time_seconds_total{device="sda"} 45.678000000000004\n' in text
    assert 'node_disk_io_time_weighted_seconds_total{device="nvme0n1"} 5802.467000000001\n' in text
    assert 'node_disk_read_bytes_total{device="vda"} 1.283851264e+09\n' in text


def test_udev_info_on_6_8() -> None:
    info = {dict(lab)["device"]: dict(lab) for lab in series(disks("6.8"), "node_disk_info")}
    assert info["sda"] == {
        "device": "sda",
        "major": "8",
        "minor": "0",
        "path": "pci-0000:00:17.0-ata-1",
        "wwn": "0x5002538e40a1b2c3",
        "model": "Samsung_SSD_860_EVO_500GB",
        "serial": "S3Z1NB0K123456A",
        "revision": "RVT04B6Q",
    }
    assert info["nvme0n1"]["model"] == "Samsung SSD 970 EVO Plus 1TB"
    assert info["nvme0n1"]["serial"] == "S4EWNX0R123456"
    assert info["vda"] == {
        "device": "vda", "major": "254", "minor": "0",
        "path": "", "wwn": "", "model": "", "serial": "", "revision": "",
    }  # fmt: skip


def test_udev_filesystem_device_mapper_and_ata_families_on_6_8() -> None:
    """Values and labels as node_exporter 1.5.0 prints them for the same udev database."""
    samples = disks("6.8")
    assert list(series(samples, "node_disk_filesystem_info")) == [
        frozenset({("device", "dm-0"), ("type", "ext4"), ("usage", "filesystem"),
                   ("uuid", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), ("version", "1.0")})
    ]  # fmt: skip
    assert list(series(samples, "node_disk_device_mapper_info")) == [
        frozenset({("device", "dm-0"), ("name", "ubuntu--vg-ubuntu--lv"), ("lv_layer", ""),
                   ("uuid", "LVM-aBcDeFgHiJkLmNoPqRsTuVwXyZ012345AbCdEfGhIjKlMnOpQrStUvWxYz678901"),
                   ("vg_name", "ubuntu-vg"), ("lv_name", "ubuntu-lv")})
    ]  # fmt: skip
    sda = frozenset({("device", "sda")})
    assert samples[("node_disk_ata_write_cache", sda)] == 1
    assert samples[("node_disk_ata_write_cache_enabled", sda)] == 1
    assert samples[("node_disk_ata_rotation_rate_rpm", sda)] == 0
    assert list(series(samples, "node_disk_ata_write_cache")) == [sda]


def collect_one(tmp_path: Path, properties: str) -> list:
    """Collect sda alone, with ``properties`` as its udev database file."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "diskstats").write_text("   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n")
    (tmp_path / "udev").mkdir()
    (tmp_path / "udev" / "b8:0").write_text(properties)
    paths = Paths(procfs=str(tmp_path / "proc"), udev_data=str(tmp_path / "udev"))
    return DiskstatsCollector(paths).collect()


# node_exporter 1.5.0 (the Debian binary, run on these udev files) takes the serial from
# ID_SERIAL_SHORT alone: SCSI_IDENT_SERIAL and ID_SERIAL are never used.
@pytest.mark.parametrize(
    ("properties", "serial"),
    [
        ("E:SCSI_IDENT_SERIAL=scsi\nE:ID_SERIAL_SHORT=short\nE:ID_SERIAL=long\n", "short"),
        ("E:ID_SERIAL_SHORT=short\nE:ID_SERIAL=long\n", "short"),
        ("E:ID_SERIAL=long\n", ""),
        ("E:SCSI_IDENT_SERIAL=scsi\n", ""),
        ("E:SCSI_IDENT_SERIAL=scsi\nE:ID_SERIAL_SHORT=\n", ""),
    ],
)
def test_serial_as_node_exporter_1_5_0(tmp_path: Path, properties: str, serial: str) -> None:
    info = next(f for f in collect_one(tmp_path, properties) if f.name == "node_disk_info")
    assert [dict(zip(info.label_names, lab, strict=True))["serial"] for lab, _ in info.samples] == [
        serial
    ]


def udev_samples(tmp_path: Path, properties: str) -> dict[str, list[tuple[tuple[str, ...], float]]]:
    families = collect_one(tmp_path, properties)
    return {f.name: f.samples for f in families if not f.name.endswith("_total") and f.samples}


# Each case checked against node_exporter 1.5.0 on the same udev file.
@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        pytest.param(  # empty ID_FS_TYPE and DM_NAME: no filesystem_info, no device_mapper_info
            "E:ID_FS_TYPE=\nE:ID_FS_USAGE=filesystem\nE:ID_FS_UUID=abc\nE:DM_NAME=\nE:DM_UUID=x\n",
            {},
            id="empty-fs-type-and-dm-name",
        ),
        pytest.param(  # lines without "=" are skipped
            "E:ID_ATA\nE:ID_ATA_WRITE_CACHE=1\nE:ID_FS_TYPE\nE:DM_NAME\n", {}, id="no-equals"
        ),
        pytest.param(
            "E:ID_FS_TYPE=xfs\nE:DM_NAME=dmn\n",
            {
                "node_disk_filesystem_info": [(("sda", "xfs", "", "", ""), 1.0)],
                "node_disk_device_mapper_info": [(("sda", "dmn", "", "", "", ""), 1.0)],
            },
            id="fs-type-and-dm-name",
        ),
        pytest.param(  # any ID_ATA value but the empty one turns the ATA families on
            "E:ID_ATA=0\nE:ID_ATA_WRITE_CACHE=1\nE:ID_ATA_WRITE_CACHE_ENABLED=0\n",
            {
                "node_disk_ata_write_cache": [(("sda",), 1.0)],
                "node_disk_ata_write_cache_enabled": [(("sda",), 0.0)],
            },
            id="id-ata-0",
        ),
        pytest.param("E:ID_ATA=\nE:ID_ATA_WRITE_CACHE=1\n", {}, id="id-ata-empty"),
        pytest.param(  # values Go's strconv.ParseFloat refuses are left out
            "E:ID_ATA=yes\nE:ID_ATA_WRITE_CACHE=abc\nE:ID_ATA_ROTATION_RATE_RPM= 5400\n"
            "E:ID_ATA_WRITE_CACHE_ENABLED=1\n",
            {"node_disk_ata_write_cache_enabled": [(("sda",), 1.0)]},
            id="id-ata-yes-and-bad-numbers",
        ),
    ],
)
def test_udev_families_as_node_exporter_1_5_0(
    tmp_path: Path, properties: str, expected: dict
) -> None:
    found = udev_samples(tmp_path, properties)
    found.pop("node_disk_info")
    found.pop("node_disk_io_now")
    assert found == expected


# strconv.ParseFloat as node_exporter 1.5.0 applied it to ID_ATA_ROTATION_RATE_RPM (None: omitted)
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7200", 7200.0), ("+7200", 7200.0), (".5", 0.5), ("5.", 5.0), ("1E2", 100.0),
        ("1e3", 1000.0), ("1.5e+2", 150.0), ("00012", 12.0), ("1e-400", 0.0),
        ("1_000", 1000.0), ("1e1_0", 1e10), ("1_0.2_5", 10.25),
        ("0x1p4", 16.0), ("0x1.8p1", 3.0), ("0X1P1", 2.0), ("0x.8p1", 1.0), ("0x_1p0", 1.0),
        ("0x1p-2_0", 2.0**-20),
        ("Inf", math.inf), ("INF", math.inf), ("infinity", math.inf), ("-inf", -math.inf),
        ("-Infinity", -math.inf),
        (" 5400", None), ("5400 ", None), ("nan ", None), ("+nan", None), ("Infin", None),
        ("1e400", None), ("0x1p2000", None), ("0x10", None), ("1__0", None), ("_1", None),
        ("1_", None), ("1_.5", None), ("", None),
    ],
)  # fmt: skip
def test_go_parse_float(text: str, value: float | None) -> None:
    assert go_parse_float(text) == value


def test_go_parse_float_nan() -> None:
    assert math.isnan(go_parse_float("NaN") or 0.0)


def test_device_include_replaces_the_default_exclude() -> None:
    samples = disks("6.8", "--collector.diskstats.device-include=^(sd|nvme0)")
    assert devices(samples) == {
        "sda", "sda1", "sda2", "sdb", "nvme0n1", "nvme0n1p1", "nvme0n1p2",
    }  # fmt: skip


def test_device_exclude_replaces_the_default_exclude() -> None:
    samples = disks("3.10", "--collector.diskstats.device-exclude=^(dm-|sd)")
    assert devices(samples) == {"fd0", "sr0", "loop0", "ram0", "ram1"}


def test_types_and_node_exporter_help() -> None:
    found = headers(scrape(tree("6.8"), "diskstats"))
    kinds = {name: kind for name, (kind, _) in found.items() if name.startswith("node_disk_")}
    assert kinds == {
        **{f"node_disk_{n}": "counter" for n in BASE + DISCARD + FLUSH},
        "node_disk_io_now": "gauge",
        "node_disk_info": "gauge",
        "node_disk_filesystem_info": "gauge",
        "node_disk_device_mapper_info": "gauge",
        "node_disk_ata_write_cache": "gauge",
        "node_disk_ata_write_cache_enabled": "gauge",
        "node_disk_ata_rotation_rate_rpm": "gauge",
    }
    assert found["node_disk_writes_merged_total"][1] == "The number of writes merged."
    assert found["node_disk_flush_requests_total"][1] == (
        "The total number of flush requests completed successfully"
    )
    assert found["node_disk_info"][1] == "Info of /sys/block/<block_device>."
