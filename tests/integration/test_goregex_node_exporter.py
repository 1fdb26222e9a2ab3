"""Filter regexes mean to our exporter what they mean to node_exporter 1.5.0 (Go's RE2 syntax).

A fake /proc/diskstats holds device names chosen to tell Go's and Python's syntax apart; each
pattern is given to both exporters as --collector.diskstats.device-exclude, and both must keep
the same devices.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import scrape_text
from perfanalysis.testing.servers import ServerRegistry

pytestmark = pytest.mark.integration

NAMES = (
    "loop0", "zram0", "ram0", "sda", "sda1", "SDA", "nvme0n1p1", "é1", "É", "a\\b", "x.y", "ab",
    "Ab", "AB", "{", "a{2}", "aa", ":", "[", "]", "-", "\u017f", "\u212a", "k", "S", "s", "Ω",
    "٣", "7", "a7", "_", "abc", "a", "z", "x:y", "éab", "ǅ", "ǆ", "#", "a$",
)  # fmt: skip
PATTERNS = (
    "^(loop|zram)[[:digit:]]+$", "^[[:alpha:]]+$", "^[[:^alpha:]]+$", "^[[:punct:]]$",
    "^[[:upper:]]", "^[[:xdigit:]]+$", "^[[:word:]]+$", r"^\pL+$", r"^\p{L}+$", r"^\PL+$",
    r"^\p{^Lu}", r"^\pN+$", r"a\z", "^a$", "(?i)^ab$", "(?i)^[^a]$", "(?i)^k$", "(?i)^s$",
    "(?i)[[:^upper:]]", r"^\d+$", r"^\W+$", r"\bab\b", "x{,2}", "^a{1,}$", "a{01}", "^aa??$",
    "(?U)^a+", "^(?i:a)B", "a(?i)b|c", r"\x{41}", r"\101", r"\Qa.b\E", "[]a]", "[a-]", "^*a$",
    r"[\d-z]", "^.$", "[[.a.]]", "[a&&b]", "[a~~b]", "(?i)ǆ", "(?P<1>a)",
)  # fmt: skip


def devices(text: str) -> set[str]:
    for family in text_string_to_metric_families(text):
        if family.name == "node_disk_reads_completed":
            return {sample.labels["device"] for sample in family.samples}
    return set()


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("goregex")
    (root / "proc").mkdir()
    (root / "sys").mkdir()
    lines = [f"   8 {minor:7d} {name} 1 0 2 3 4 0 5 6 0 7 8\n" for minor, name in enumerate(NAMES)]
    (root / "proc" / "diskstats").write_text("".join(lines))
    return root


@pytest.mark.parametrize("pattern", PATTERNS)
def test_both_exporters_keep_the_same_devices(
    pattern: str, fake_root: Path, servers: ServerRegistry
) -> None:
    flags = [
        "--collector.disable-defaults",
        "--collector.diskstats",
        f"--collector.diskstats.device-exclude={pattern}",
        f"--path.procfs={fake_root / 'proc'}",
        f"--path.sysfs={fake_root / 'sys'}",
        f"--path.udev.data={fake_root / 'udev'}",
    ]
    theirs = devices(servers.node_exporter(flags).metrics())
    ours = devices(scrape_text([*flags, "--web.disable-exporter-metrics"]))
    assert theirs, "node_exporter read no devices: the fake tree is wrong"
    assert ours == theirs
