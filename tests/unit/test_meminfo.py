"""meminfo collector: node_memory_<Field>_bytes (kB x 1024) and unit-less HugePages_* as they are."""

from __future__ import annotations

import pytest

from tests.unit.promtext import headers, parse_samples, scrape, success, tree

HUGEPAGES = {"HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp"}
COMMON = [
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "SwapCached",
    "Active",
    "Inactive",
    "Active_anon",
    "Inactive_anon",
    "Active_file",
    "Inactive_file",
    "Unevictable",
    "Mlocked",
    "SwapTotal",
    "SwapFree",
    "Dirty",
    "Writeback",
    "AnonPages",
    "Mapped",
    "Shmem",
    "Slab",
    "SReclaimable",
    "SUnreclaim",
    "KernelStack",
    "PageTables",
    "NFS_Unstable",
    "Bounce",
    "WritebackTmp",
    "CommitLimit",
    "Committed_AS",
    "VmallocTotal",
    "VmallocUsed",
    "VmallocChunk",
    "HardwareCorrupted",
    "AnonHugePages",
    "Hugepagesize",
    "DirectMap4k",
    "DirectMap2M",
]
KB_FIELDS = {
    "3.10": {*COMMON, "CmaTotal", "CmaFree", "DirectMap1G"},
    "4.19": {*COMMON, "Percpu", "ShmemHugePages", "ShmemPmdMapped", "Hugetlb"},
    "6.8": {
        *COMMON,
        *[
            "Zswap",
            "Zswapped",
            "KReclaimable",
            "SecPageTables",
            "Percpu",
            "ShmemHugePages",
            "ShmemPmdMapped",
        ],
        *[
            "FileHugePages",
            "FilePmdMapped",
            "CmaTotal",
            "CmaFree",
            "Unaccepted",
            "Hugetlb",
            "DirectMap1G",
        ],
    },
}


def memory(kernel: str) -> dict[str, float]:
    samples = parse_samples(scrape(tree(kernel), "meminfo"))
    assert success(samples) == {"meminfo": 1}
    return {
        name.removeprefix("node_memory_"): v
        for (name, _), v in samples.items()
        if name.startswith("node_memory_")
    }


@pytest.mark.parametrize("kernel", sorted(KB_FIELDS))
def test_exact_family_set(kernel: str) -> None:
    """4.19 has no KReclaimable (4.20); 3.10 has neither Percpu nor the Shmem/File THP keys."""
    assert memory(kernel).keys() == {f"{f}_bytes" for f in KB_FIELDS[kernel]} | HUGEPAGES


def test_values_are_kilobytes_times_1024_on_6_8() -> None:
    got = memory("6.8")
    assert got["MemTotal_bytes"] == 16318504 * 1024
    assert got["Active_anon_bytes"] == 1836796 * 1024
    assert got["Inactive_file_bytes"] == 3964403 * 1024
    assert got["Committed_AS_bytes"] == 6519332 * 1024
    assert got["NFS_Unstable_bytes"] == 0
    assert got["VmallocTotal_bytes"] == 34359738367 * 1024
    assert got["Zswap_bytes"] == 1536 * 1024
    assert got["Zswapped_bytes"] == 4096 * 1024
    assert got["SecPageTables_bytes"] == 128 * 1024
    assert got["Unaccepted_bytes"] == 0
    assert got["Hugetlb_bytes"] == 131072 * 1024


def test_hugepages_counts_are_unscaled() -> None:
    got = memory("4.19")
    assert {k: got[k] for k in HUGEPAGES} == {
        "HugePages_Total": 16,
        "HugePages_Free": 12,
        "HugePages_Rsvd": 3,
        "HugePages_Surp": 1,
    }
    assert got["Hugepagesize_bytes"] == 2048 * 1024


def test_non_numeric_line_is_skipped_and_the_rest_kept() -> None:
    got = memory("4.19")
    assert not any(name.startswith("Bogus") for name in got)
    assert got["Percpu_bytes"] == 2880 * 1024
    assert got["HardwareCorrupted_bytes"] == 0
    assert got["DirectMap2M_bytes"] == 8116224 * 1024


def test_all_gauges_with_node_exporter_help() -> None:
    found = headers(scrape(tree("6.8"), "meminfo"))
    memory_headers = {k: v for k, v in found.items() if k.startswith("node_memory_")}
    assert {kind for kind, _ in memory_headers.values()} == {"gauge"}
    assert (
        found["node_memory_Active_anon_bytes"][1] == "Memory information field Active_anon_bytes."
    )
    assert found["node_memory_HugePages_Total"][1] == "Memory information field HugePages_Total."
