"""--collector.cpu.info: node_cpu_info, node_cpu_flag_info and node_cpu_bug_info from /proc/cpuinfo,
as node_exporter 1.5.0 exports them (its live output is compared in the parity test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exporter.collectors.cpuinfo import CPUInfoError, parse_cpuinfo
from exporter.config import load
from perfanalysis.config import ConfigError
from tests.unit.promtext import headers, labels, parse_samples, scrape, series, success, tree

XEON = "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz"
ARM64 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

processor\t: 1
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid
CPU implementer\t: 0x41

"""


def cpu_samples(*flags: str, root: Path | None = None) -> dict:
    return parse_samples(scrape(root or tree("6.8"), "cpu", flags=flags))


def test_one_info_series_per_cpu_with_node_exporters_labels() -> None:
    samples = cpu_samples("--collector.cpu.info")
    common = {"package": "0", "vendor": "GenuineIntel", "family": "6", "model": "85",
              "model_name": XEON, "microcode": "0x5003604", "stepping": "7",
              "cachesize": "36608 KB"}  # fmt: skip
    assert series(samples, "node_cpu_info") == {
        labels(**common, cpu="0", core="0"): 1.0,
        labels(**common, cpu="1", core="1"): 1.0,
        labels(**common, cpu="2", core="0"): 1.0,
        labels(**common, cpu="3", core="1"): 1.0,
    }
    assert series(samples, "node_cpu_flag_info") == {}
    assert series(samples, "node_cpu_bug_info") == {}
    assert len(series(samples, "node_cpu_seconds_total")) == 4 * 8


def test_off_by_default() -> None:
    samples = cpu_samples()
    assert series(samples, "node_cpu_info") == {}
    assert len(series(samples, "node_cpu_seconds_total")) == 4 * 8


def test_flags_and_bugs_are_filtered_unanchored_as_go_matches() -> None:
    samples = cpu_samples(
        "--collector.cpu.info.flags-include=avx512|^aes$", "--collector.cpu.info.bugs-include=^spec"
    )
    assert set(series(samples, "node_cpu_flag_info")) == {
        labels(flag=flag)
        for flag in ("aes", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl")
    }
    assert set(series(samples, "node_cpu_bug_info")) == {
        labels(bug="spectre_v1"),
        labels(bug="spectre_v2"),
        labels(bug="spec_store_bypass"),
    }
    assert len(series(samples, "node_cpu_info")) == 4  # a filter turns cpu.info on


def test_help_and_type_are_node_exporters() -> None:
    text = scrape(tree("6.8"), "cpu", flags=("--collector.cpu.info.flags-include=.",
                                             "--collector.cpu.info.bugs-include=."))  # fmt: skip
    found = headers(text)
    assert found["node_cpu_info"] == ("gauge", "CPU information from /proc/cpuinfo.")
    assert found["node_cpu_flag_info"] == (
        "gauge",
        "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
    )
    assert found["node_cpu_bug_info"] == (
        "gauge",
        "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
    )


def test_a_filter_turns_info_on_with_node_exporters_notice() -> None:
    notes: list[str] = []
    values = load(["--collector.cpu.info.bugs-include=."], {}, notes)
    assert values["collector_cpu_info"] is True
    assert notes == [
        "--collector.cpu.info has been set to `true` because you set "
        "--collector.cpu.info.flags-include or --collector.cpu.info.bugs-include"
    ]
    notes.clear()
    assert load(["--collector.cpu.info"], {}, notes)["collector_cpu_info"] is True
    assert notes == []


def test_a_bad_filter_is_refused_naming_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"--collector\.cpu\.info\.flags-include: invalid value"):
        load(["--collector.cpu.info.flags-include=("], {})


def test_netlink_is_refused_clearly_and_turning_it_off_is_accepted() -> None:
    with pytest.raises(ConfigError, match="netlink statistics are not implemented"):
        load(["--collector.netdev.netlink"], {})
    assert load(["--no-collector.netdev.netlink"], {})["collector_netdev_netlink"] is False


def test_arm64_features_are_the_flags() -> None:
    cpus = parse_cpuinfo(ARM64)
    assert [cpu.processor for cpu in cpus] == ["0", "1"]
    assert "asimd" in cpus[0].flags
    assert cpus[0].vendor == cpus[0].model_name == ""


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "vendor_id\t: GenuineIntel\nprocessor\t: 0\n", "processor\t: x\n",
     "processor\t: 4294967296\n"],
)  # fmt: skip
def test_a_cpuinfo_node_exporter_cannot_read_is_refused(text: str) -> None:
    with pytest.raises(CPUInfoError, match="invalid cpuinfo file"):
        parse_cpuinfo(text)


def test_an_unreadable_cpuinfo_fails_the_collector_as_node_exporter_does(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(tree("6.8"), root, symlinks=True)
    (root / "proc" / "cpuinfo").write_text("garbage\n")
    samples = cpu_samples("--collector.cpu.info", root=root)
    assert success(samples)["cpu"] == 0.0
    assert series(samples, "node_cpu_info") == {}
    assert success(cpu_samples(root=root))["cpu"] == 1.0
