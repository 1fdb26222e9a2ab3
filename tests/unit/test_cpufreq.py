"""cpufreq collector: node_exporter 1.5.0's per-CPU frequencies from sysfs, in hertz.

The expected behaviour was checked against Debian's node_exporter 1.5.0 binary on the proc-6.8
tree and on trees like the ones built below (garbage, empty and too large values, a missing or
unreadable attribute, a dangling policy link, no cpufreq at all): same series, values and success.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import pytest

import exporter.collectors.cpufreq as cpufreq_module
from exporter.collectors.cpufreq import CPUFreqCollector
from exporter.config import enabled_collectors, load
from exporter.exposition import render
from exporter.model import CollectorError, MetricFamily
from exporter.paths import Paths
from exporter.registry import Registry
from tests.support.blocking_fuse import wait_until
from tests.unit.promtext import headers, parse_samples, scrape, series, success, tree

HEADERS = {
    "node_cpu_frequency_hertz": ("gauge", "Current cpu thread frequency in hertz."),
    "node_cpu_frequency_min_hertz": ("gauge", "Minimum cpu thread frequency in hertz."),
    "node_cpu_frequency_max_hertz": ("gauge", "Maximum cpu thread frequency in hertz."),
    "node_cpu_scaling_frequency_hertz": ("gauge", "Current scaled CPU thread frequency in hertz."),
    "node_cpu_scaling_frequency_min_hertz": ("gauge", "Minimum scaled CPU thread frequency in hertz."),
    "node_cpu_scaling_frequency_max_hertz": ("gauge", "Maximum scaled CPU thread frequency in hertz."),
}  # fmt: skip
# a policy as acpi-cpufreq writes it (kHz), with cpuinfo_cur_freq present
POLICY = {
    "cpuinfo_cur_freq": "2400000",
    "cpuinfo_min_freq": "800000",
    "cpuinfo_max_freq": "3000000",
    "cpuinfo_transition_latency": "10000",
    "scaling_cur_freq": "2399871",
    "scaling_min_freq": "800000",
    "scaling_max_freq": "3000000",
    "scaling_available_governors": "performance powersave",
    "scaling_driver": "acpi-cpufreq",
    "scaling_governor": "powersave",
    "related_cpus": "0",
    "scaling_setspeed": "<unsupported>",
}


def cpufreq(root: Path) -> dict:
    return parse_samples(scrape(root, "cpufreq"))


def frequencies(root: Path) -> dict[tuple[str, str], float]:
    """(metric, cpu) -> value for every cpufreq sample."""
    return {
        (name, dict(lab)["cpu"]): v
        for (name, lab), v in cpufreq(root).items()
        if name.startswith("node_cpu_")
    }


def write_policy(sysfs: Path, cpu: str, **overrides: str | None) -> Path:
    """devices/system/cpu/cpu<cpu>/cpufreq -> ../cpufreq/policy<cpu>, with POLICY's files;
    an override of None leaves that file out."""
    base = sysfs / "devices" / "system" / "cpu"
    policy = base / "cpufreq" / f"policy{cpu}"
    policy.mkdir(parents=True)
    for name, text in {**POLICY, **overrides}.items():
        if text is not None:
            (policy / name).write_text(f"{text}\n")
    (base / f"cpu{cpu}").mkdir()
    (base / f"cpu{cpu}" / "cpufreq").symlink_to(f"../cpufreq/policy{cpu}")
    return policy


def collect(sysfs: Path) -> dict[tuple[str, str], float]:
    out = {}
    for fam in CPUFreqCollector(Paths(sysfs=str(sysfs))).collect():
        assert fam.label_names == ("cpu",)
        for (cpu,), v in fam.samples:
            out[(fam.name, cpu)] = v
    return out


def test_exact_values_on_6_8() -> None:
    """Two frequency domains: policy0 (cpus 0-1) and policy2 (cpus 2-3, no cpuinfo_cur_freq)."""
    got = frequencies(tree("6.8"))
    expected = {}
    for cpus, khz in (
        (("0", "1"), (3593000, 1400000, 3800000, 3592704, 1400000, 3800000)),
        (("2", "3"), (None, 1400000, 3800000, 2794512, 2200000, 2800000)),
    ):
        for cpu in cpus:
            for name, value in zip(HEADERS, khz, strict=True):
                if value is not None:
                    expected[(name, cpu)] = value * 1000.0
    assert got == expected
    assert ("node_cpu_frequency_hertz", "2") not in got


def test_headers_labels_and_digits_on_6_8() -> None:
    text = scrape(tree("6.8"), "cpufreq")
    found = headers(text)
    assert {name: found[name] for name in HEADERS} == HEADERS
    assert set(found) == {
        *HEADERS,
        "node_scrape_collector_duration_seconds",
        "node_scrape_collector_success",
    }
    assert 'node_cpu_scaling_frequency_hertz{cpu="0"} 3.592704e+09\n' in text
    assert 'node_cpu_frequency_hertz{cpu="1"} 3.593e+09\n' in text
    samples = parse_samples(text)
    assert all(set(dict(lab)) == {"cpu"} for name in HEADERS for lab in series(samples, name))
    assert success(samples) == {"cpufreq": 1}


def test_no_governor_or_average_family_as_in_1_5_0() -> None:
    """Both came after 1.5.0 (the governor with node_exporter#2569); Debian's 1.5.0 has neither."""
    names = {name for name, _ in parse_samples(scrape(tree("6.8"), "cpufreq"))}
    assert "node_cpu_scaling_governor" not in names
    assert "node_cpu_frequency_avg_hertz" not in names


@pytest.mark.parametrize("kernel", ["3.10", "4.19"])
def test_no_cpufreq_sysfs_gives_no_samples_and_success(kernel: str) -> None:
    samples = cpufreq(tree(kernel))
    assert success(samples) == {"cpufreq": 1}
    assert not any(name in HEADERS for name, _ in samples)


def test_cpu_without_cpufreq_is_skipped(tmp_path: Path) -> None:
    """As on this VM: cpu0 exists without cpufreq; node_exporter returns nil, not ErrNoData."""
    cpu = tmp_path / "sys" / "devices" / "system" / "cpu"
    (cpu / "cpu0" / "topology").mkdir(parents=True)
    (cpu / "cpufreq").mkdir()
    samples = cpufreq(tmp_path)
    assert success(samples) == {"cpufreq": 1}
    assert not any(name in HEADERS for name, _ in samples)


def test_missing_sysfs_gives_no_samples_and_success(tmp_path: Path) -> None:
    assert collect(tmp_path / "absent") == {}


def test_missing_frequency_files_are_skipped_per_cpu(tmp_path: Path) -> None:
    write_policy(tmp_path, "0", cpuinfo_cur_freq=None, scaling_max_freq=None)
    write_policy(tmp_path, "1", cpuinfo_transition_latency=None)
    got = collect(tmp_path)
    assert ("node_cpu_frequency_hertz", "0") not in got
    assert ("node_cpu_scaling_frequency_max_hertz", "0") not in got
    assert got[("node_cpu_scaling_frequency_hertz", "0")] == 2399871000.0
    assert got[("node_cpu_frequency_hertz", "1")] == 2400000000.0
    assert len(got) == 4 + 6


def test_unreadable_cpuinfo_cur_freq_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cpuinfo_cur_freq is mode 0400 root: a non-root reader gets EACCES (tests run as root, so
    the error is injected)."""
    write_policy(tmp_path, "0")
    real_open = os.open

    def deny_cur_freq(path: str, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("cpuinfo_cur_freq"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(cpufreq_module.os, "open", deny_cur_freq)
    got = collect(tmp_path)
    assert ("node_cpu_frequency_hertz", "0") not in got
    assert got[("node_cpu_frequency_min_hertz", "0")] == 800000000.0


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("scaling_cur_freq", "abc"),
        ("cpuinfo_max_freq", ""),
        ("scaling_min_freq", "+5"),
        ("cpuinfo_cur_freq", "18446744073709551616"),
        ("cpuinfo_transition_latency", "-1"),  # parsed though not exported
    ],
)
def test_a_value_that_is_not_a_uint64_fails_the_collector(
    tmp_path: Path, file: str, text: str
) -> None:
    write_policy(tmp_path / "sys", "0")
    write_policy(tmp_path / "sys", "1", **{file: text})
    with pytest.raises(ValueError, match=f"cpu1/cpufreq/{file}: .* is not an unsigned 64-bit"):
        collect(tmp_path / "sys")
    samples = cpufreq(tmp_path)
    assert success(samples) == {"cpufreq": 0}
    assert not any(name in HEADERS for name, _ in samples)


@pytest.mark.parametrize(
    "attribute",
    ["scaling_available_governors", "scaling_driver", "scaling_governor", "related_cpus", "scaling_setspeed"],
)  # fmt: skip
def test_a_missing_policy_attribute_fails_the_collector(tmp_path: Path, attribute: str) -> None:
    """The procfs in 1.5.0 reads these five with SysReadFile and returns any error, although it
    exports nothing from them."""
    write_policy(tmp_path / "sys", "0", **{attribute: None})
    with pytest.raises(FileNotFoundError, match=attribute):
        collect(tmp_path / "sys")
    assert success(cpufreq(tmp_path)) == {"cpufreq": 0}


def test_largest_values_convert_like_go(tmp_path: Path) -> None:
    write_policy(
        tmp_path,
        "0",
        cpuinfo_cur_freq="18446744073709551615",
        scaling_cur_freq=" 9007199254740993 ",
    )
    got = collect(tmp_path)
    assert got[("node_cpu_frequency_hertz", "0")] == float(2**64 - 1) * 1000.0
    assert got[("node_cpu_scaling_frequency_hertz", "0")] == float(9007199254740993) * 1000.0


def test_dangling_policy_link_counts_as_no_cpufreq(tmp_path: Path) -> None:
    write_policy(tmp_path, "0")
    base = tmp_path / "devices" / "system" / "cpu"
    (base / "cpu1").mkdir()
    (base / "cpu1" / "cpufreq").symlink_to("../cpufreq/policy9")
    (base / "cpufreq_extra").mkdir()  # not cpu[0-9]*
    assert {cpu for _, cpu in collect(tmp_path)} == {"0"}


def test_many_cpus_read_in_parallel_keep_their_labels(tmp_path: Path) -> None:
    for n in range(12):
        write_policy(tmp_path, str(n), scaling_cur_freq=str(1000000 + n))
    got = collect(tmp_path)
    assert {cpu: got[("node_cpu_scaling_frequency_hertz", cpu)] for cpu in map(str, range(12))} == {
        str(n): (1000000 + n) * 1000.0 for n in range(12)
    }


def test_enabled_by_default_and_can_be_turned_off() -> None:
    assert "cpufreq" in enabled_collectors(load([], {}))
    assert "cpufreq" not in enabled_collectors(load(["--no-collector.cpufreq"], {}))
    assert enabled_collectors(
        load(["--collector.disable-defaults", "--collector.cpufreq"], {})
    ) == ["cpufreq"]


LIVENESS = 10.0  # seconds a scrape with a blocked read may take before the test calls it hung


def scrape_in_thread(collector: CPUFreqCollector) -> tuple[list[MetricFamily], str]:
    """One collect in a thread joined with a deadline: (families served, error message or "")."""
    outcome: list[tuple[list[MetricFamily], str]] = []

    def run() -> None:
        try:
            outcome.append((collector.collect(), ""))
        except CollectorError as exc:
            outcome.append((exc.families, str(exc)))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(LIVENESS)
    assert outcome, f"the scrape did not return within {LIVENESS}s"
    return outcome[0]


def cpus_served(families: list[MetricFamily]) -> set[str]:
    return {cpu for fam in families for (cpu,), _ in fam.samples}


def release(fifo: Path) -> None:
    """Answer a reader blocked on the FIFO, if there is one."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader
            return
        raise
    try:
        os.write(fd, b"1500000\n")
    finally:
        os.close(fd)


def test_a_blocked_read_never_hangs_the_scrape_and_says_which_cpu_it_left_out(
    tmp_path: Path,
) -> None:
    """cpu0's scaling_cur_freq is a FIFO: opening it blocks until a writer comes, as a read of
    a wedged driver would. The first reader blocks on cpu0, the readers that join after the
    straggle read the eleven others, and the scrape ends at its deadline naming cpu0."""
    for n in range(12):
        write_policy(tmp_path, str(n))
    fifo = tmp_path / "devices" / "system" / "cpu" / "cpufreq" / "policy0" / "scaling_cur_freq"
    fifo.unlink()
    os.mkfifo(fifo)
    cpu0 = str(tmp_path / "devices" / "system" / "cpu" / "cpu0" / "cpufreq")
    collector = CPUFreqCollector(Paths(sysfs=str(tmp_path)), timeout=0.5, straggle=0.01)
    try:
        families, error = scrape_in_thread(collector)
        assert f"no answer within 0.5s from {cpu0}: left out" in error
        assert cpus_served(families) == {str(n) for n in range(1, 12)}
        assert collector.stuck == [cpu0]

        blocked = [t for t in threading.enumerate() if t.name == "cpufreq"]
        families, error = scrape_in_thread(collector)  # skipped at once, no new thread behind it
        assert cpu0 in error
        assert cpus_served(families) == {str(n) for n in range(1, 12)}
        assert [t for t in threading.enumerate() if t.name == "cpufreq"] == blocked

        release(fifo)
        assert wait_until(lambda: not collector.stuck, LIVENESS)
        fifo.unlink()
        fifo.write_text("1500000\n")
        families, error = scrape_in_thread(collector)
        assert error == ""
        assert cpus_served(families) == {str(n) for n in range(12)}
    finally:
        if fifo.is_fifo():
            release(fifo)


def test_a_collector_error_keeps_the_cpus_read_in_the_scrape(tmp_path: Path) -> None:
    """Through the registry: success 0, the blocked CPU named in the failures (/health), the
    other CPUs' frequencies still served."""
    write_policy(tmp_path, "0")
    write_policy(tmp_path, "1")
    fifo = tmp_path / "devices" / "system" / "cpu" / "cpufreq" / "policy1" / "scaling_min_freq"
    fifo.unlink()
    os.mkfifo(fifo)
    registry = Registry([CPUFreqCollector(Paths(sysfs=str(tmp_path)), timeout=0.2)])
    try:
        result = registry.scrape()
        assert "cpu1/cpufreq: left out" in result.failures["cpufreq"]
        samples = parse_samples(render(result.families).decode())
        assert success(samples) == {"cpufreq": 0}
        assert {dict(lab)["cpu"] for lab in series(samples, "node_cpu_frequency_hertz")} == {"0"}
    finally:
        release(fifo)


def test_cpus_sharing_a_blocked_policy_hold_one_thread_and_start_no_more(tmp_path: Path) -> None:
    """Before, the stuck reads were kept by CPU: with 32 CPUs on one policy whose read blocks,
    each scrape waited its whole timeout again and left up to eight more threads blocked on the
    same file, until every CPU was marked (256 threads on a 256-CPU host)."""
    write_policy(tmp_path, "0")
    base = tmp_path / "devices" / "system" / "cpu"
    for n in range(1, 32):
        (base / f"cpu{n}").mkdir(parents=True)
        (base / f"cpu{n}" / "cpufreq").symlink_to("../cpufreq/policy0")
    fifo = base / "cpufreq" / "policy0" / "scaling_cur_freq"
    fifo.unlink()
    os.mkfifo(fifo)
    collector = CPUFreqCollector(Paths(sysfs=str(tmp_path)), timeout=0.3, straggle=0.01)
    before = [t for t in threading.enumerate() if t.name == "cpufreq"]  # other tests' readers
    try:
        _, error = scrape_in_thread(collector)
        assert "left out" in error
        assert collector.stuck == [str(base / "cpu0" / "cpufreq")]
        blocked = [t for t in threading.enumerate() if t.name == "cpufreq"]
        assert len([t for t in blocked if t not in before]) == 1
        for _ in range(3):
            families, error = scrape_in_thread(collector)
            assert cpus_served(families) == set()
            assert [t for t in threading.enumerate() if t.name == "cpufreq"] == blocked
    finally:
        release(fifo)
        wait_until(lambda: not collector.stuck, LIVENESS)
