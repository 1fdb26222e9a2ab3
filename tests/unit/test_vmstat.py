"""vmstat collector: untyped node_vmstat_<field> for the fields matching --collector.vmstat.fields."""

from __future__ import annotations

import pytest

from tests.unit.promtext import headers, parse_samples, scrape, tree

EXPECTED = {
    "3.10": {
        "pgpgin": 7463246,
        "pgpgout": 94837261,
        "pswpin": 12,
        "pswpout": 345,
        "pgfault": 8765432109,
        "pgmajfault": 23456,
    },
    "4.19": {
        "oom_kill": 3,
        "pgpgin": 123456789,
        "pgpgout": 234567890,
        "pswpin": 4567,
        "pswpout": 8901,
        "pgfault": 3456789012,
        "pgmajfault": 45678,
    },
    "6.8": {
        "oom_kill": 1,
        "pgpgin": 1569365,
        "pgpgout": 1542948,
        "pswpin": 256,
        "pswpout": 1024,
        "pgfault": 3703585,
        "pgmajfault": 1509,
    },
}


def vmstat(kernel: str, *flags: str) -> dict[str, float]:
    samples = parse_samples(scrape(tree(kernel), "vmstat", flags=flags))
    return {
        name.removeprefix("node_vmstat_"): v
        for (name, _), v in samples.items()
        if name.startswith("node_vmstat_")
    }


@pytest.mark.parametrize("kernel", sorted(EXPECTED))
def test_default_fields(kernel: str) -> None:
    """3.10 predates oom_kill (added in 4.13)."""
    assert vmstat(kernel) == EXPECTED[kernel]


def test_untyped_with_node_exporter_help() -> None:
    found = headers(scrape(tree("6.8"), "vmstat"))
    assert found["node_vmstat_pgmajfault"] == (
        "untyped",
        "/proc/vmstat information field pgmajfault.",
    )
    assert all(found[f"node_vmstat_{f}"][0] == "untyped" for f in EXPECTED["6.8"])


def test_fields_flag_replaces_the_default() -> None:
    got = vmstat("6.8", "--collector.vmstat.fields=^(nr_dirty|oom_kill)$")
    assert got.keys() == {"nr_dirty", "oom_kill"}
    assert got["oom_kill"] == 1
