"""cpu collector: exact node_cpu_*_seconds_total from /proc/stat, and per-CPU counter hygiene."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.collectors.cpu import CPUCollector
from exporter.paths import Paths
from tests.unit.promtext import label_values, parse_samples, scrape, series, tree, value

MODES = {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}


def cpu_seconds(kernel: str, *flags: str) -> dict:
    return parse_samples(scrape(tree(kernel), "cpu", flags=flags))


@pytest.mark.parametrize(
    ("kernel", "cpus"),
    [("3.10", {"0", "1", "3"}), ("4.19", {"0", "1", "2"}), ("6.8", {"0", "1", "2", "3"})],
)
def test_one_series_per_online_cpu_and_mode(kernel: str, cpus: set[str]) -> None:
    samples = cpu_seconds(kernel)
    got = {
        (dict(lab)["cpu"], dict(lab)["mode"]) for lab in series(samples, "node_cpu_seconds_total")
    }
    assert got == {(cpu, mode) for cpu in cpus for mode in MODES}
    assert label_values(samples, "node_cpu_guest_seconds_total", "mode") == {"user", "nice"}
    assert label_values(samples, "node_cpu_guest_seconds_total", "cpu") == cpus


def test_offline_cpu2_is_absent_on_3_10() -> None:
    samples = cpu_seconds("3.10")
    assert value(samples, "node_cpu_seconds_total", cpu="3", mode="user") == 570021 / 100
    assert value(samples, "node_cpu_seconds_total", cpu="3", mode="nice") == 310 / 100
    assert value(samples, "node_cpu_seconds_total", cpu="3", mode="system") == 201234 / 100
    assert value(samples, "node_cpu_seconds_total", cpu="3", mode="idle") == 20198712 / 100
    assert value(samples, "node_cpu_seconds_total", cpu="3", mode="iowait") == 1234 / 100
    assert value(samples, "node_cpu_seconds_total", cpu="3", mode="softirq") == 1054 / 100
    assert value(samples, "node_cpu_seconds_total", cpu="3", mode="steal") == 0
    assert "2" not in label_values(samples, "node_cpu_seconds_total", "cpu")


def test_truncated_cpu_line_is_skipped_on_4_19() -> None:
    samples = cpu_seconds("4.19")
    assert "3" not in label_values(samples, "node_cpu_seconds_total", "cpu")
    assert value(samples, "node_cpu_seconds_total", cpu="2", mode="user") == 1033334 / 100
    assert value(samples, "node_cpu_seconds_total", cpu="2", mode="steal") == 411 / 100


def test_aggregate_cpu_line_is_not_exported() -> None:
    samples = cpu_seconds("6.8")
    assert "" not in label_values(samples, "node_cpu_seconds_total", "cpu")
    assert value(samples, "node_cpu_seconds_total", cpu="0", mode="user") == 412345 / 100


def test_guest_columns_on_6_8() -> None:
    samples = cpu_seconds("6.8")
    assert value(samples, "node_cpu_guest_seconds_total", cpu="0", mode="user") == 54321 / 100
    assert value(samples, "node_cpu_guest_seconds_total", cpu="0", mode="nice") == 123 / 100
    assert value(samples, "node_cpu_guest_seconds_total", cpu="3", mode="user") == 52345 / 100
    assert value(samples, "node_cpu_seconds_total", cpu="3", mode="iowait") == 1234 / 100
    assert value(samples, "node_cpu_seconds_total", cpu="1", mode="steal") == 812 / 100


def test_no_guest_flag_drops_the_guest_family() -> None:
    samples = cpu_seconds("6.8", "--no-collector.cpu.guest")
    assert series(samples, "node_cpu_guest_seconds_total") == {}
    assert len(series(samples, "node_cpu_seconds_total")) == 4 * 8


# Counter hygiene, as node_exporter's updateCPUStats: each mode only moves forward, an idle jump
# back of >= 3 s (hot-plug) resets that CPU, and CPUs missing from /proc/stat are forgotten.


class StatSequence:
    """A /proc/stat the test rewrites between scrapes of one CPUCollector."""

    def __init__(self, root: Path) -> None:
        (root / "proc").mkdir()
        self.file = root / "proc" / "stat"
        self.collector = CPUCollector(Paths(procfs=str(root / "proc")))

    def scrape(self, *cpu_lines: str) -> dict[tuple[str, str], float]:
        self.file.write_text("cpu  0 0 0 0 0 0 0 0 0 0\n" + "".join(f"{ln}\n" for ln in cpu_lines))
        out = {}
        for fam in self.collector.collect():
            kind = "guest" if fam.name == "node_cpu_guest_seconds_total" else "seconds"
            for (cpu, mode), v in fam.samples:
                out[(cpu, mode if kind == "seconds" else f"guest_{mode}")] = v
        return out


@pytest.fixture
def stat(tmp_path: Path) -> StatSequence:
    return StatSequence(tmp_path)


def test_a_mode_that_goes_backwards_keeps_its_previous_value(stat: StatSequence) -> None:
    stat.scrape("cpu0 1000 10 500 10000 500 0 30 0 200 0")
    second = stat.scrape("cpu0 1100 10 520 10050 450 0 35 0 150 0")
    assert second[("0", "iowait")] == 500 / 100
    assert second[("0", "guest_user")] == 200 / 100
    assert second[("0", "user")] == 1100 / 100
    assert second[("0", "idle")] == 10050 / 100
    third = stat.scrape("cpu0 1200 10 540 10100 520 0 40 0 250 0")
    assert third[("0", "iowait")] == 520 / 100


def test_idle_jumping_back_three_seconds_resets_the_cpu(stat: StatSequence) -> None:
    stat.scrape("cpu0 1000 10 500 10000 500 0 30 0 0 0")
    after = stat.scrape("cpu0 900 5 400 9700 100 0 20 0 0 0")
    assert after[("0", "idle")] == 97.0
    assert after[("0", "user")] == 9.0
    assert after[("0", "iowait")] == 1.0


def test_idle_jumping_back_less_than_three_seconds_is_clamped(stat: StatSequence) -> None:
    stat.scrape("cpu0 1000 10 500 10000 500 0 30 0 0 0")
    after = stat.scrape("cpu0 900 5 400 9701 100 0 20 0 0 0")
    assert after[("0", "idle")] == 100.0
    assert after[("0", "user")] == 10.0
    assert after[("0", "iowait")] == 5.0


def test_a_vanished_cpu_is_forgotten(stat: StatSequence) -> None:
    stat.scrape("cpu0 1000 0 0 10000 0 0 0 0 0 0", "cpu1 2000 0 0 20000 700 0 0 0 0 0")
    gone = stat.scrape("cpu0 1010 0 0 10010 0 0 0 0 0 0")
    assert {cpu for cpu, _ in gone} == {"0"}
    back = stat.scrape("cpu0 1020 0 0 10020 0 0 0 0 0 0", "cpu1 1500 0 0 19900 300 0 0 0 0 0")
    assert back[("1", "user")] == 15.0
    assert back[("1", "iowait")] == 3.0


def test_a_reboot_like_drop_is_exported_as_a_counter_reset(stat: StatSequence) -> None:
    """After a reboot every counter restarts near zero; idle falls by far more than 3 s, so the
    cache is reset and the new small values are exported as they are, which rate() treats as an
    ordinary counter reset. node_exporter behaves the same (its cpuStats entry is zeroed)."""
    stat.scrape("cpu0 500000 100 200000 9000000 4000 0 900 0 0 0")
    rebooted = stat.scrape("cpu0 120 0 80 2500 10 0 1 0 0 0")
    assert rebooted[("0", "user")] == 1.2
    assert rebooted[("0", "idle")] == 25.0
    assert rebooted[("0", "iowait")] == 0.1
