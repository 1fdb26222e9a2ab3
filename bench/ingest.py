"""Ingest end-to-end throughput and latency, against direct writes to the same InfluxDB.

Points per second through ``perfanalysis ingest`` (gunicorn, 2 workers by default) into
Debian's InfluxDB 1.6.7, verified by counting what was stored, against the anchor: the same
5,000-point batches written straight to the same InfluxDB in the same run. Before the first
round each path runs flat out, unmeasured, for ``--warmup-seconds``, so that the first measured
phase does not find a fresh InfluxDB with no compaction work yet. Then many short rounds (30 by
default) of two 3-second phases, in ABBA order (direct, ingest, ingest, direct, ...), so that
compactions and the machine hit both paths alike. The ratio is of the two paths' total rates;
its standard error comes from the spread of the rounds' own ratios, its 95% interval from
Student's t with one degree of freedom fewer than the rounds, and the verdict is "met" only when
the whole interval is at or above the target ("undecided" when it straddles it, and whatever the
ratio with fewer than 5 rounds).

Why short rounds: on this kind of machine (a shared VM) the CPU's speed drifts over tens of
seconds: profiles of influxd (2026-11-23) showed the same line-protocol scanning costing 2.5 to
4.7 ns per byte from one phase to the next. With two rounds of 15- or 30-second phases a run's
ratio inherited whichever speed its phases got: single rounds scattered by 0.175 (one standard
deviation), and runs landed anywhere in 0.73-0.90x. Forty rounds of 2-second phases measured
what the forced tags cost InfluxDB, 14.5% more CPU per point, with a standard error of 2.4%.
Then the latency of 5,000-point batches at half of ingest's measured maximum rate, for both
paths, paced per client: from the time each batch was due to be sent, so that a client that falls
behind counts the wait of the batches it sends late (no coordinated omission).

The data is node_exporter-like (measurement = metric family, tags = labels + host, field
``value``), 20,000 series in four 5,000-series batches per cycle, each batch one timestamp,
cycles 10 s apart, starting three days ago (inside ingest's accepted window). ``--batch N``
cuts the series into batches of N instead (an exporter pushes about 250 points; give small
batches more ``--clients``, as a fleet has): what ingest's per-request cost and its group commit
do with exporter-sized pushes.
Target (docs/architecture.md): ingest >= 0.8x direct, over all rounds. Each round's ratio of
its two adjacent phases, and their median, are printed as well: on a shared machine other
work and compactions move both rates from round to round.

With ``--as-stored``, a third path in each round, for reference and not the target: the points
as ingest stores them (with the forced ``tenant`` and ``collector`` tags) written straight to
InfluxDB. Against it, ingest's own cost shows apart from what the two longer series keys cost
InfluxDB; whether it should be the anchor is the owner's call (docs/architecture.md, Ingest).
It changes the order of the phases (ingest always runs between the two direct paths), so the
target's own figure is best taken from a run without it.

On a machine whose few CPUs all three share, the ratio measures CPU cost: every microsecond
ingest spends on a point is taken from influxd. ``--storage-cpu N`` pins InfluxDB to CPU N and
ingest and the clients to the others in both phases, which is what a deployment with storage
on machines of its own looks like: it shows whether ingest holds storage back.

    python -m bench.ingest [--seconds 3] [--rounds 30] [--warmup-seconds 10] [--clients 4]
                           [--workers 2] [--batch 5000] [--storage-cpu N] [--as-stored]
                           [--json out.json] [--strict]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import sessionmaker

from bench.procstat import cpu_seconds
from bench.stats import percentile, t_975
from bench.termination import unwind_on_termination
from ingest.batch import BatchPreparer, BatchRules, ForcedTags
from ingest.testing import CollectorKey, IngestProcess, issue_collector_key
from perfanalysis.testing.servers import InfluxDB
from tenants.crypto import CredentialHasher
from tenants.db import make_engine, transaction
from tenants.schema import upgrade

TARGET = 0.8
MIN_ROUNDS = 5  # fewer rounds decide nothing: their spread says too little about the error
BATCH = 5_000  # points per batch, by default
SERIES = 20_000  # series per cycle, in SERIES // batch batches
CYCLE_NS = 10 * 1_000_000_000
DIRECT_DATABASE = "bench_direct"
STORED_DATABASE = "bench_as_stored"
TENANT, COLLECTOR = "bench", "bench-host"


# ----------------------------------------------------------------------------------------------
# Data


def host_series(host: str) -> Iterator[str]:
    """One host's series in line protocol, without the timestamp (about 170 of them)."""
    for cpu in range(8):
        for mode in ("user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice"):
            yield f"node_cpu_seconds_total,cpu={cpu},host={host},mode={mode} value={cpu * 1000 + 17.31}"
    for name in ("MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal",
                 "SwapFree", "Active", "Inactive", "Dirty", "Writeback", "Slab", "Shmem",
                 "Mapped", "PageTables", "Committed_AS", "HugePages_Total", "AnonPages",
                 "KernelStack", "VmallocUsed"):  # fmt: skip
        yield f"node_memory_{name}_bytes,host={host} value=17179869184"
    for device in ("sda", "sdb", "nvme0n1", "nvme1n1"):
        for metric in ("reads_completed_total", "writes_completed_total", "read_bytes_total",
                       "written_bytes_total", "io_time_seconds_total", "read_time_seconds_total",
                       "write_time_seconds_total", "io_now"):  # fmt: skip
            yield f"node_disk_{metric},device={device},host={host} value=123456789"
    for device in ("eth0", "eth1", "lo"):
        for metric in ("receive_bytes_total", "transmit_bytes_total", "receive_packets_total",
                       "transmit_packets_total", "receive_errs_total", "transmit_errs_total",
                       "receive_drop_total", "transmit_drop_total"):  # fmt: skip
            yield f"node_network_{metric},device={device},host={host} value=987654321"
    for mount in ("/", "/boot", "/var", "/home", "/srv"):
        for metric in ("size_bytes", "free_bytes", "avail_bytes", "files"):
            yield (f"node_filesystem_{metric},device=/dev/sda1,fstype=ext4,host={host},"
                   f"mountpoint={mount} value=107374182400")  # fmt: skip
    for name in ("load1", "load5", "load15"):
        yield f"node_{name},host={host} value=0.42"


def as_stored(templates: list[list[bytes]]) -> list[list[bytes]]:
    """The templates as ingest writes them: with the forced tenant and collector tags."""
    preparer = BatchPreparer(BatchRules())
    forced = ForcedTags(TENANT, COLLECTOR)
    now = time.time_ns()
    stamp = b" %d" % now
    stored = []
    for lines in templates:
        payload = preparer.prepare((stamp + b"\n").join(lines) + stamp, forced, "ns", now).payload
        stored.append([line.rsplit(b" ", 1)[0] for line in payload.split(b"\n")])
    return stored


def batch_templates(batch: int = BATCH) -> list[list[bytes]]:
    """A cycle's series in batches of ``batch`` lines: 20,000 series, or the largest multiple
    of ``batch`` below it."""
    groups = max(1, SERIES // batch)
    series: list[bytes] = []
    for number in itertools.count():
        series.extend(line.encode() for line in host_series(f"host-{number:04d}"))
        if len(series) >= batch * groups:
            break
    return [series[g * batch : (g + 1) * batch] for g in range(groups)]


class Batches:
    """Batch ``i``: group ``i % groups`` of the series, stamped with cycle ``i // groups``'s
    timestamp."""

    def __init__(self, templates: list[list[bytes]], start_ns: int) -> None:
        self.templates = templates
        self.groups = len(templates)
        self.size = len(templates[0])
        self.start_ns = start_ns
        self._next = itertools.count()
        self.sent = 0

    def take(self) -> bytes:
        index = next(self._next)  # atomic under the GIL: each batch goes out once
        stamp = b" %d" % (self.start_ns + (index // self.groups) * CYCLE_NS)
        lines = self.templates[index % self.groups]
        return (stamp + b"\n").join(lines) + stamp


# ----------------------------------------------------------------------------------------------
# Load


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    batches: Batches
    pids: Callable[[], list[int]]
    points: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    kernel_seconds: float = 0.0
    storage_cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    machine: list[int] = field(default_factory=lambda: [0, 0, 0])  # busy, idle, stolen ticks
    latencies: list[float] = field(default_factory=list)


def machine_ticks() -> list[int]:
    """Busy, idle (with I/O wait) and stolen ticks of all CPUs since boot, from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return [user + nice + system + irq + softirq, idle + iowait, steal]


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat[1]) == parent:
                found.append(int(entry.name))
    return found


def post(session: requests.Session, target: Target, body: bytes) -> float:
    started = time.perf_counter()
    response = session.post(target.url, data=body, headers=target.headers, timeout=60)
    elapsed = time.perf_counter() - started
    if response.status_code != 204:
        raise RuntimeError(f"{target.name}: {response.status_code} {response.text[:500]}")
    return elapsed


def run_phase(
    target: Target, influxd: int, seconds: float, clients: int, rate: float | None = None
) -> tuple[int, float, list[float]]:
    """Send batches for ``seconds`` from ``clients`` threads, flat out or at ``rate`` points/s.

    Returns points sent, the phase's wall time, and each batch's latency: from when it was sent
    when flat out, from when it was due to be sent when paced (a client that falls behind sends
    its overdue batches back to back, and each one's latency includes how late it went out).
    """
    sent = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    cpu_before = cpu_seconds(target.pids())
    kernel_before = cpu_seconds(target.pids(), kernel_only=True)
    storage_before = cpu_seconds([influxd])
    clients_before = cpu_seconds([os.getpid()])
    machine_before = machine_ticks()
    started = time.perf_counter()
    deadline = started + seconds
    batch = target.batches.size
    interval = clients * batch / rate if rate else 0.0

    def client(number: int) -> None:
        session = requests.Session()
        session.trust_env = False
        due = started + interval * number / clients
        try:
            while time.perf_counter() < deadline:
                body = target.batches.take()
                if interval:
                    scheduled, due = due, due + interval
                    if scheduled > (now := time.perf_counter()):
                        time.sleep(scheduled - now)
                else:
                    scheduled = time.perf_counter()
                post(session, target, body)
                latencies[number].append(time.perf_counter() - scheduled)
                sent[number] += batch
        except BaseException as exc:
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        time.sleep(min(2.0, max(0.05, deadline - time.perf_counter())))
        elapsed = time.perf_counter() - started
        if seconds >= 10 and any(thread.is_alive() for thread in threads) and elapsed < seconds:
            print(f"    {target.name}: {elapsed:5.1f} s, {sum(sent):>10,} points, "
                  f"{sum(sent) / elapsed:>9,.0f} points/s", file=sys.stderr, flush=True)  # fmt: skip
    if errors:
        raise errors[0]
    wall = time.perf_counter() - started
    target.cpu_seconds += cpu_seconds(target.pids()) - cpu_before
    target.kernel_seconds += cpu_seconds(target.pids(), kernel_only=True) - kernel_before
    target.storage_cpu_seconds += cpu_seconds([influxd]) - storage_before
    target.client_cpu_seconds += cpu_seconds([os.getpid()]) - clients_before
    for index, (now, before) in enumerate(zip(machine_ticks(), machine_before, strict=True)):
        target.machine[index] += now - before
    return sum(sent), wall, [value for values in latencies for value in values]


def unmeasured(
    target: Target, influxd: int, seconds: float, clients: int, rate: float | None = None
) -> list[float]:
    """A phase left out of the throughput and CPU figures (warm-up, paced latency): its points
    count only as sent. Returns each batch's latency."""
    saved = (target.cpu_seconds, target.kernel_seconds, target.storage_cpu_seconds,
             target.client_cpu_seconds, list(target.machine))  # fmt: skip
    points, _, latencies = run_phase(target, influxd, seconds, clients, rate)
    (target.cpu_seconds, target.kernel_seconds, target.storage_cpu_seconds,
     target.client_cpu_seconds, target.machine) = saved  # fmt: skip
    target.batches.sent += points
    return latencies


def requests_per_storage_write(ingest_url: str) -> float:
    """Write requests per storage write, from ingest's group commit histogram (all workers)."""
    text = requests.get(f"{ingest_url}/metrics", timeout=10).text
    totals = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "perfanalysis_ingest_storage_group_requests"
        for sample in family.samples
    }
    count = totals.get("perfanalysis_ingest_storage_group_requests_count", 0.0)
    return totals["perfanalysis_ingest_storage_group_requests_sum"] / count if count else 0.0


def stored_points(influxdb: InfluxDB, database: str) -> int:
    rows = influxdb.rows("SELECT count(value) FROM /.*/", db=database)
    return sum(int(row["count"]) for row in rows)


def shares(ticks: list[int]) -> list[float]:
    total = sum(ticks)
    return [tick / total if total else 0.0 for tick in ticks]


def standard_error(ratio: float, round_ratios: list[float]) -> float | None:
    """The standard error of the whole run's ratio, from the spread of its rounds' ratios (each
    of two adjacent phases, so slow drifts in the machine's speed cancel within a round)."""
    if len(round_ratios) < 2:
        return None
    mean = statistics.fmean(round_ratios)
    return float(ratio * statistics.stdev(round_ratios) / mean / len(round_ratios) ** 0.5)


def interval(ratio: float, error: float | None, rounds: int) -> tuple[float, float] | None:
    """The ratio's 95% interval: Student's t for ``rounds - 1`` degrees of freedom, since the
    standard error comes from the sample deviation of ``rounds`` round ratios. None without an
    error estimate (one round)."""
    if error is None or rounds < 2:
        return None
    half = t_975(rounds - 1) * error
    return ratio - half, ratio + half


def verdict(ratio: float, error: float | None, rounds: int) -> str:
    """met, MISSED, or undecided: when the target lies within the ratio's 95% interval, and
    whatever the ratio with fewer than MIN_ROUNDS rounds."""
    bounds = interval(ratio, error, rounds)
    if rounds < MIN_ROUNDS or bounds is None:
        return "undecided"
    low, high = bounds
    if low >= TARGET:
        return "met"
    if high < TARGET:
        return "MISSED"
    return "undecided"


# ----------------------------------------------------------------------------------------------
# The run


def pin(pids: list[int], cpus: set[int]) -> None:
    """Every thread of ``pids`` onto ``cpus`` (threads they start later inherit it)."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(task.name), cpus)


def start_ingest(
    base: Path, influxdb: InfluxDB, workers: int
) -> tuple[IngestProcess, CollectorKey]:
    """Ingest on an SQLite admin database in ``base``, writing to ``influxdb``, without rate
    limits, and a key for collector COLLECTOR of tenant TENANT (whose database it creates)."""
    secret = secrets.token_urlsafe(36)
    engine = make_engine(f"sqlite:///{base}/admin.db")
    upgrade(engine)
    with transaction(sessionmaker(engine, expire_on_commit=False)) as db:
        # free: the one key writes for many hosts, as the direct writes it is compared with do
        key = issue_collector_key(db, CredentialHasher(secret), TENANT, COLLECTOR, host_tag="free")
    engine.dispose()
    influxdb.create_database(key.database)
    ingest = IngestProcess(base / "ingest", {
        "PERFANALYSIS_INGEST_SECRET_KEY": secret,
        "PERFANALYSIS_INGEST_DATABASE_URL": f"sqlite:///{base}/admin.db",
        "PERFANALYSIS_INGEST_STORAGE_URL": influxdb.url,
        "PERFANALYSIS_INGEST_WEB_WORKERS": str(workers),
        "PERFANALYSIS_INGEST_LIMITS_RATE": "0",
        "PERFANALYSIS_INGEST_REDIS_URL": "",
        "PERFANALYSIS_INGEST_LOG_LEVEL": "warning",
    }).start()  # fmt: skip
    return ingest, key


def run(
    seconds: float,
    rounds: int,
    clients: int,
    latency_seconds: float,
    storage_cpu: int | None,
    workers: int,
    reference: bool,
    batch: int = BATCH,
    warmup_seconds: float = 10.0,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as base:
        influxdb = InfluxDB(Path(base) / "influxdb").start()
        ingest: IngestProcess | None = None
        affinity = os.sched_getaffinity(0)
        try:
            ingest, key = start_ingest(Path(base), influxdb, workers)
            influxdb.create_database(DIRECT_DATABASE)
            influxdb.create_database(STORED_DATABASE)
            master = ingest.pid
            assert master is not None
            influxd = influxdb.pid
            assert influxd is not None
            if storage_cpu is not None:
                rest = os.sched_getaffinity(0) - {storage_cpu}
                pin([influxd], {storage_cpu})
                pin([master, *children(master), os.getpid()], rest)
                print(f"  InfluxDB pinned to CPU {storage_cpu}; ingest and clients to "
                      f"{sorted(rest)}", file=sys.stderr, flush=True)  # fmt: skip
            templates = batch_templates(batch)
            start_ns = time.time_ns() - 3 * 86_400 * 1_000_000_000
            direct = Target("direct", f"{influxdb.url}/write?db={DIRECT_DATABASE}&precision=ns",
                            {}, Batches(templates, start_ns), lambda: [])  # fmt: skip
            through = Target("ingest", f"{ingest.url}/write?precision=ns",
                             {"Authorization": f"Token {key.key}"},
                             Batches(templates, start_ns), lambda: children(master))  # fmt: skip
            stored = Target("as_stored", f"{influxdb.url}/write?db={STORED_DATABASE}&precision=ns",
                            {}, Batches(as_stored(templates), start_ns), lambda: [])  # fmt: skip
            paths = [direct, through, stored] if reference else [direct, through]
            print(f"  warming up: {clients} cycle{'s' if clients > 1 else ''} of the series "
                  f"({direct.batches.groups * clients} batches) through each path",
                  file=sys.stderr, flush=True)  # fmt: skip
            for target in paths:
                session = requests.Session()
                session.trust_env = False
                for _ in range(target.batches.groups * clients):
                    post(session, target, target.batches.take())
                    target.batches.sent += target.batches.size
                session.close()
            if warmup_seconds > 0:
                for target in paths:
                    print(f"  warming up: {target.name} flat out for {warmup_seconds:g} s, "
                          "unmeasured", file=sys.stderr, flush=True)  # fmt: skip
                    unmeasured(target, influxd, warmup_seconds, clients)
            round_ratios = []
            for number in range(1, rounds + 1):
                rates = {}
                # ABBA order: each path follows the other as often as it leads it, so that
                # compactions of what one phase wrote burden both paths alike (with the
                # reference, ingest is always between the two direct paths)
                order = paths if number % 2 else paths[::-1]
                for target in order:
                    points, wall, _ = run_phase(target, influxd, seconds, clients)
                    target.points += points
                    target.seconds += wall
                    target.batches.sent += points
                    rates[target.name] = points / wall
                round_ratios.append(rates["ingest"] / rates["direct"])
                ratio = (through.points / through.seconds) / (direct.points / direct.seconds)
                error = standard_error(ratio, round_ratios)
                print(f"  round {number}/{rounds}: "
                      + ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
                      + f" points/s; ratio so far {ratio:.3f}x"
                      + (f" +- {error:.3f}" if error is not None else ""),
                      file=sys.stderr, flush=True)  # fmt: skip
            max_rate = through.points / through.seconds
            half = max_rate / 2
            paced: dict[str, list[float]] = {}
            for target in (through, direct):
                print(f"  latency: {target.name} at {half:,.0f} points/s", file=sys.stderr,
                      flush=True)  # fmt: skip
                paced[target.name] = unmeasured(target, influxd, latency_seconds, clients, half)
            print("  counting what was stored", file=sys.stderr, flush=True)
            result: dict[str, Any] = {
                "batch": batch,
                "series": batch * len(templates),
                "requests_per_storage_write": requests_per_storage_write(ingest.url),
                "storage_cpu": storage_cpu,
                "clients": clients,
                "workers": workers,
                "rounds": rounds,
                "seconds_per_phase": seconds,
                "direct_points_per_s": direct.points / direct.seconds,
                "ingest_points_per_s": max_rate,
                "round_ratios": round_ratios,
                "median_round_ratio": statistics.median(round_ratios),
                "direct_sent": direct.batches.sent,
                "direct_stored": stored_points(influxdb, DIRECT_DATABASE),
                "ingest_sent": through.batches.sent,
                "ingest_stored": stored_points(influxdb, key.database),
                "paced_points_per_s": half,
                "ingest_paced_p50_ms": statistics.median(paced["ingest"]) * 1e3,
                "ingest_paced_p99_ms": percentile(paced["ingest"], 0.99) * 1e3,
                "direct_paced_p50_ms": statistics.median(paced["direct"]) * 1e3,
                "direct_paced_p99_ms": percentile(paced["direct"], 0.99) * 1e3,
                "ingest_cpu_us_per_point": through.cpu_seconds / through.points * 1e6,
                "ingest_kernel_us_per_point": through.kernel_seconds / through.points * 1e6,
                "influxd_cpu_us_per_point_direct": direct.storage_cpu_seconds / direct.points * 1e6,
                "influxd_cpu_us_per_point_ingest": (
                    through.storage_cpu_seconds / through.points * 1e6
                ),
                **{
                    f"clients_cpu_us_per_point_{target.name}": (
                        target.client_cpu_seconds / target.points * 1e6
                    )
                    for target in paths
                },
                **{
                    f"{target.name}_cpus_{what}": share
                    for target in paths
                    for what, share in zip(
                        ("busy", "idle", "stolen"), shares(target.machine), strict=True
                    )
                },
            }
            if reference:
                result["as_stored_points_per_s"] = stored.points / stored.seconds
                result["as_stored_sent"] = stored.batches.sent
                result["as_stored_stored"] = stored_points(influxdb, STORED_DATABASE)
                result["influxd_cpu_us_per_point_as_stored"] = (
                    stored.storage_cpu_seconds / stored.points * 1e6
                )
        finally:
            pin([os.getpid()], affinity)
            if ingest is not None:
                ingest.stop()
            influxdb.stop()
    result["ratio"] = result["ingest_points_per_s"] / result["direct_points_per_s"]
    result["ratio_standard_error"] = standard_error(result["ratio"], result["round_ratios"])
    result["ratio_interval_95"] = interval(
        result["ratio"], result["ratio_standard_error"], result["rounds"]
    )
    return result


def report(result: dict[str, Any]) -> bool:
    names = ["direct", "ingest"] + (["as_stored"] if "as_stored_sent" in result else [])
    complete = all(result[f"{name}_sent"] == result[f"{name}_stored"] for name in names)
    error = result["ratio_standard_error"]
    rounds = int(result["rounds"])
    outcome = verdict(result["ratio"], error, rounds)
    bounds = interval(result["ratio"], error, rounds)
    met = complete and outcome == "met"
    print(f"ingest vs direct writes into InfluxDB 1.6.7: {int(result['batch']):,}-point batches, "
          f"{int(result['series']):,} series, {int(result['clients'])} clients, "
          f"{int(result['rounds'])} rounds x {result['seconds_per_phase']:g} s per path")  # fmt: skip
    if result["storage_cpu"] is None:
        print("CPUs: InfluxDB, ingest and the clients share all of them")
    else:
        print(f"CPUs: InfluxDB alone on CPU {result['storage_cpu']}, ingest and the clients "
              "on the others (storage on machines of its own)")  # fmt: skip
    print(f"{'':30}{'points/s':>12}{'sent':>14}{'stored':>14}")
    workers = int(result["workers"])
    for label, prefix in (
        ("direct (anchor)", "direct"),
        (f"ingest (gunicorn, {workers} worker{'s' if workers > 1 else ''})", "ingest"),
        ("direct, as ingest stores them", "as_stored"),
    ):
        if prefix not in names:
            continue
        print(f"{label:30}{result[prefix + '_points_per_s']:>12,.0f}"
              f"{int(result[prefix + '_sent']):>14,}{int(result[prefix + '_stored']):>14,}")  # fmt: skip
    if error is None or bounds is None:
        spread = "one round: no error estimate"
    else:
        df = rounds - 1
        spread = (f"standard error {error:.3f}, 95% interval {bounds[0]:.3f}-{bounds[1]:.3f} "
                  f"with t = {t_975(df):.3f} for {df} degree{'s' if df > 1 else ''} of freedom")  # fmt: skip
    if outcome != "undecided":
        why = ""
    elif rounds < MIN_ROUNDS:
        why = f" (fewer than {MIN_ROUNDS} rounds decide nothing: run more --rounds)"
    else:
        why = " (the target lies within the interval: more --rounds narrow it)"
    print(f"ratio ingest/direct: {result['ratio']:.3f}x ({spread}); target >= {TARGET}x: "
          f"{outcome}{why}; every point stored once: {'yes' if complete else 'NO'}")  # fmt: skip
    print("ratio per round (adjacent phases): "
          f"{', '.join(f'{ratio:.2f}x' for ratio in result['round_ratios'])}; "
          f"median {result['median_round_ratio']:.2f}x")  # fmt: skip
    if "as_stored" in names:
        print(f"for reference (not the target): direct writes of the points as ingest stores "
              f"them (the forced tenant and collector tags added): ingest / those "
              f"{result['ingest_points_per_s'] / result['as_stored_points_per_s']:.2f}x "
              f"(ingest's own cost); those / direct "
              f"{result['as_stored_points_per_s'] / result['direct_points_per_s']:.2f}x "
              "(what the two tags cost InfluxDB)")  # fmt: skip
    labels = {"direct": "direct", "ingest": "through ingest", "as_stored": "as stored"}
    print(f"CPU per point: ingest workers {result['ingest_cpu_us_per_point']:.2f} us (kernel "
          f"{result['ingest_kernel_us_per_point']:.2f}); influxd " + ", ".join(
              f"{result['influxd_cpu_us_per_point_' + name]:.2f} us {labels[name]}"
              for name in names) + "; the clients (this process) " + ", ".join(
              f"{result['clients_cpu_us_per_point_' + name]:.2f} us {labels[name]}"
              for name in names))  # fmt: skip
    cpus = os.cpu_count() or 1
    whole = ", ".join(
        f"{labels[name]} "
        f"{result[f'{name}_cpus_busy'] * cpus / result[f'{name}_points_per_s'] * 1e6:.2f} us"
        for name in names
    )
    print(f"CPU per point, whole machine: {whole} (influxd, ingest, the clients and the rest)")
    print("all CPUs while flat out (busy / idle / stolen by the hypervisor): " + "; ".join(
        f"{labels[name]} {result[name + '_cpus_busy']:.0%} / {result[name + '_cpus_idle']:.0%} / "
        f"{result[name + '_cpus_stolen']:.0%}" for name in names))  # fmt: skip
    print(
        f"write requests per storage write (group commit), over the whole run: "
        f"{result['requests_per_storage_write']:.2f}"
    )
    print(f"latency of {int(result['batch']):,}-point batches at {result['paced_points_per_s']:,.0f} points/s "
          "(half of ingest's maximum), from the time each was due to be sent:")  # fmt: skip
    for label, prefix in (("ingest", "ingest"), ("direct", "direct")):
        print(f"  {label:8} p50 {result[prefix + '_paced_p50_ms']:7.1f} ms   "
              f"p99 {result[prefix + '_paced_p99_ms']:7.1f} ms")  # fmt: skip
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each flat-out phase")
    parser.add_argument("--rounds", type=int, default=30, help="direct/ingest phase pairs")
    parser.add_argument("--warmup-seconds", type=float, default=10.0,
                        help="unmeasured flat-out phase of each path before the first round")  # fmt: skip
    parser.add_argument("--clients", type=int, default=4,
                        help="concurrent writers per path (ingest needs some to overlap parsing "
                        "with waiting for storage)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=BATCH,
                        help="points per batch (an exporter pushes about 250; give small batches "
                        "more --clients, as a fleet has)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="ingest's gunicorn workers")
    parser.add_argument("--as-stored", action="store_true",
                        help="also write the points as ingest stores them (with the forced tags) "
                        "straight to InfluxDB, for reference: ingest's own cost apart from the "
                        "tags' (a third phase per round, between which ingest always runs)")  # fmt: skip
    parser.add_argument("--latency-seconds", type=float, default=10.0,
                        help="length of each paced latency phase")  # fmt: skip
    parser.add_argument("--storage-cpu", type=int, metavar="N",
                        help="pin InfluxDB to CPU N and ingest and the clients to the others, as "
                        "when storage runs on machines of its own (default: all share all CPUs)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    if min(args.seconds, args.rounds, args.clients, args.latency_seconds, args.workers) < 1:
        parser.error(
            "--seconds, --rounds, --clients, --workers and --latency-seconds must be at least 1"
        )
    if args.warmup_seconds < 0:
        parser.error("--warmup-seconds must not be negative")
    if not 1 <= args.batch <= SERIES:
        parser.error(f"--batch must be between 1 and {SERIES:,}")
    cpus = os.sched_getaffinity(0)
    if args.storage_cpu is not None and (args.storage_cpu not in cpus or len(cpus) < 2):
        parser.error(f"--storage-cpu must be one of {sorted(cpus)}, with another left over")
    result = run(
        args.seconds,
        args.rounds,
        args.clients,
        args.latency_seconds,
        args.storage_cpu,
        args.workers,
        args.as_stored,
        args.batch,
        args.warmup_seconds,
    )
    met = report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if met or not args.strict else 1


if __name__ == "__main__":
    unwind_on_termination()
    sys.exit(main())
