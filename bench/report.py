"""Time to build a report over seven days at 10-second resolution for 10 hosts.

Synthetic points in the exporter's push format (measurement = node_exporter family, tags = its
labels + host + tenant + collector, field ``value``; counters cumulative) are written straight
into Debian's InfluxDB 1.6.7, for a bounded but realistic set of series per host: CPU time by
mode for 2 CPUs, memory and swap, load, two disks (vda busy, vdb quiet), eth0 and loopback, and
a real filesystem beside a tmpfs -- 51 series, 60,480 samples each. The hosts differ: one has a
busy CPU, one a 2-hour gap, one a filling filesystem, one network errors, one little free memory,
one a saturated disk. The data is then left to settle as a week collected live would be: InfluxDB
writes its cache out to TSM files and compacts them (cold durations shortened to seconds; the
bench waits until InfluxDB's CPU is idle, for at most 10 minutes, and warns when it gave up).
Then the report is built (read as a read-only InfluxDB user, analysed and rendered to HTML) and
timed. Target (issue 8): at most 30 s, absolute: no anchor runs beside it.

    python -m bench.report [--hosts 10] [--days 7] [--interval 10] [--step auto [--step 1m]] [--pdf] [--strict]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.procstat import cpu_seconds
from bench.termination import unwind_on_termination
from perfanalysis.report import settings as report_settings
from perfanalysis.report.build import build_report
from perfanalysis.report.config import load_config
from perfanalysis.report.page import render_page
from perfanalysis.report.pdf import find_browser, print_pdf
from perfanalysis.report.progress import Progress
from perfanalysis.testing.servers import InfluxDB

TARGET_SECONDS = 30.0
DATABASE = "pa_bench"
READ_USER = "pa_bench_read"
TIMESTAMPS_PER_BATCH = 100  # x 10 hosts x 51 series: about 5 MB per request
GIB = 1024**3
MODES = {
    "user": 0.6,
    "system": 0.25,
    "iowait": 0.05,
    "softirq": 0.03,
    "irq": 0.01,
    "nice": 0.02,
    "steal": 0.04,
}


@dataclass
class Profile:
    """How one synthetic host behaves."""

    cpu_base: float = 0.3
    memory_used: float = 0.55
    disk_busy: float = 0.2
    fill_per_day: float = 0.002  # share of the filesystem written per day
    error_rate: float = 0.0  # network errors per second
    gap: tuple[float, float] | None = None  # (start, end) as fractions of the period


def profile_of(index: int) -> Profile:
    special = {
        0: Profile(cpu_base=0.8),
        1: Profile(gap=(0.40, 0.412)),  # about 2 hours of a week
        2: Profile(fill_per_day=0.06),
        3: Profile(error_rate=0.05),
        4: Profile(memory_used=0.93),
        5: Profile(disk_busy=0.88),
    }
    return special.get(index, Profile(cpu_base=0.2 + 0.04 * index))


class Host:
    """Counters and gauges of one host, advanced one sample at a time."""

    def __init__(self, name: str, index: int, interval: int) -> None:
        self.name, self.interval, self.profile = name, interval, profile_of(index)
        self.rng = random.Random(index)
        tags = f"collector={name},host={name},tenant=bench"
        self.cpu = {(cpu, mode): 1000.0 for cpu in ("0", "1") for mode in (*MODES, "idle")}
        self.cpu_prefix = {
            k: f"node_cpu_seconds_total,{tags.replace('host=', f'cpu={k[0]},host=')},mode={k[1]} value="
            for k in self.cpu
        }
        self.disk = {
            "vda": dict.fromkeys(("rb", "wb", "r", "w", "rt", "wt", "io", "iow"), 0.0),
            "vdb": {"rb": 0.0, "wb": 0.0},
        }
        self.net = {
            "eth0": dict.fromkeys(("rb", "tb", "rp", "tp", "re", "te", "rd", "td"), 0.0),
            "lo": {"rb": 0.0, "tb": 0.0},
        }
        self.tags = tags
        self.fs_size = 100 * GIB
        self.fs_avail = 0.7 * self.fs_size

    def lines(self, moment: int) -> list[str]:
        p, rng, dt, tags = self.profile, self.rng, self.interval, self.tags
        day = math.sin(2 * math.pi * (moment % 86400) / 86400)
        busy = min(0.99, max(0.02, p.cpu_base + 0.12 * day + rng.gauss(0, 0.05)))
        out = []
        for cpu in ("0", "1"):
            share = min(0.99, max(0.01, busy + rng.gauss(0, 0.03)))
            for mode, part in MODES.items():
                self.cpu[cpu, mode] += share * part * dt
            self.cpu[cpu, "idle"] += (1 - share) * dt
        out += [f"{self.cpu_prefix[k]}{v:.2f} {moment}" for k, v in self.cpu.items()]
        total = 16 * GIB
        used = min(0.99, p.memory_used + 0.03 * day + rng.gauss(0, 0.01)) * total
        memory = {
            "MemTotal": total,
            "MemAvailable": total - used,
            "MemFree": 0.3 * (total - used),
            "Cached": 0.5 * (total - used),
            "Buffers": 0.05 * (total - used),
            "SReclaimable": 0.04 * (total - used),
            "SwapTotal": 2 * GIB,
            "SwapFree": 1.8 * GIB,
        }
        out += [f"node_memory_{k}_bytes,{tags} value={v:.0f} {moment}" for k, v in memory.items()]
        out.append(f"node_load1,{tags} value={busy * 2.4:.2f} {moment}")
        out += self._disk(moment, day)
        out += self._network(moment, day)
        out += self._filesystem(moment)
        return out

    def _disk(self, moment: int, day: float) -> list[str]:
        p, rng, dt, vda = self.profile, self.rng, self.interval, self.disk["vda"]
        util = min(1.0, max(0.0, p.disk_busy + 0.1 * day + rng.gauss(0, 0.05)))
        reads, writes = (
            util * 400 * dt * rng.uniform(0.5, 1.5),
            util * 250 * dt * rng.uniform(0.5, 1.5),
        )
        vda["r"] += round(reads)
        vda["w"] += round(writes)
        vda["rb"] += round(reads) * 16384
        vda["wb"] += round(writes) * 32768
        vda["rt"] += reads * rng.uniform(0.0005, 0.004)
        vda["wt"] += writes * rng.uniform(0.001, 0.008)
        vda["io"] += util * dt
        vda["iow"] += util * dt * rng.uniform(1, 4)
        self.disk["vdb"]["rb"] += 4096 * rng.randint(0, 3)
        self.disk["vdb"]["wb"] += 4096 * rng.randint(0, 2)
        names = {
            "rb": "read_bytes_total",
            "wb": "written_bytes_total",
            "r": "reads_completed_total",
            "w": "writes_completed_total",
            "rt": "read_time_seconds_total",
            "wt": "write_time_seconds_total",
            "io": "io_time_seconds_total",
            "iow": "io_time_weighted_seconds_total",
        }
        out = [
            f"node_disk_{names[k]},device={d},{self.tags} value={v:.3f} {moment}"
            for d, values in self.disk.items()
            for k, v in values.items()
        ]
        out.append(f"node_disk_io_now,device=vda,{self.tags} value={rng.randint(0, 3)} {moment}")
        return out

    def _network(self, moment: int, day: float) -> list[str]:
        p, rng, dt, eth = self.profile, self.rng, self.interval, self.net["eth0"]
        rx, tx = (2e6 + 1.5e6 * day) * rng.uniform(0.3, 1.7), 8e5 * rng.uniform(0.3, 1.7)
        eth["rb"] += rx * dt
        eth["tb"] += tx * dt
        eth["rp"] += rx * dt / 1200
        eth["tp"] += tx * dt / 900
        eth["re"] += rng.random() < p.error_rate * dt
        eth["rd"] += rng.random() < 0.01
        self.net["lo"]["rb"] += 5e7 * dt  # busier than eth0: loopback must not be chosen
        self.net["lo"]["tb"] += 5e7 * dt
        names = {
            "rb": "receive_bytes_total",
            "tb": "transmit_bytes_total",
            "rp": "receive_packets_total",
            "tp": "transmit_packets_total",
            "re": "receive_errs_total",
            "te": "transmit_errs_total",
            "rd": "receive_drop_total",
            "td": "transmit_drop_total",
        }
        return [
            f"node_network_{names[k]},device={d},{self.tags} value={v:.0f} {moment}"
            for d, values in self.net.items()
            for k, v in values.items()
        ]

    def _filesystem(self, moment: int) -> list[str]:
        self.fs_avail = max(
            0.0,
            self.fs_avail
            - self.profile.fill_per_day * self.fs_size * self.interval / 86400
            + self.rng.gauss(0, 2e5),
        )
        root = f"device=/dev/vda1,fstype=ext4,{self.tags},mountpoint=/"
        run = f"device=tmpfs,fstype=tmpfs,{self.tags},mountpoint=/run"
        return [
            f"node_filesystem_avail_bytes,{root} value={self.fs_avail:.0f} {moment}",
            f"node_filesystem_free_bytes,{root} value={self.fs_avail + 0.05 * self.fs_size:.0f} {moment}",
            f"node_filesystem_size_bytes,{root} value={self.fs_size} {moment}",
            f"node_filesystem_avail_bytes,{run} value={1.5 * GIB:.0f} {moment}",
            f"node_filesystem_size_bytes,{run} value={2 * GIB} {moment}",
        ]


def batches(hosts: list[Host], start: int, count: int, interval: int) -> Iterator[str]:
    """Line protocol, TIMESTAMPS_PER_BATCH sample times of every host per batch."""
    for first in range(0, count, TIMESTAMPS_PER_BATCH):
        lines: list[str] = []
        for index in range(first, min(count, first + TIMESTAMPS_PER_BATCH)):
            fraction = index / count
            for host in hosts:
                sample = host.lines(start + index * interval)
                gap = host.profile.gap
                if gap is None or not gap[0] <= fraction < gap[1]:
                    lines += sample
        yield "\n".join(lines)


def load(influxdb: InfluxDB, hosts: list[Host], start: int, count: int, interval: int) -> int:
    session = requests.Session()
    session.trust_env = False
    total = -(-count // TIMESTAMPS_PER_BATCH)
    progress = Progress(f"loading {len(hosts)} hosts x {count:,} samples", total)
    points = 0

    def post(body: str) -> None:
        for attempt in range(10):
            response = session.post(
                f"{influxdb.url}/write",
                params={"db": DATABASE, "precision": "s"},
                data=body.encode(),
                auth=(influxdb.admin_user, influxdb.admin_password),
                timeout=300,
            )
            if response.status_code == 204:
                return
            time.sleep(1 + attempt)
        raise RuntimeError(f"write failed: {response.status_code} {response.text[:300]}")

    pending: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for body in batches(hosts, start, count, interval):
            points += body.count("\n") + 1
            pending.append(pool.submit(post, body))
            while len(pending) > 3:
                pending.pop(0).result()
                progress.advance()
        for future in pending:
            future.result()
            progress.advance()
    progress.finish()
    return points


def settle(
    influxdb: InfluxDB,
    quiet_seconds: float = 20.0,
    limit: float = 600.0,
    at_least: float = 30.0,
    poll: float = 1.0,
) -> bool:
    """Wait until InfluxDB has written its cache to TSM and compacted: idle (under 5% of a CPU)
    for ``quiet_seconds``, and not before ``at_least`` seconds. False, with a warning, when
    ``limit`` seconds pass first: the timed report may then overlap a compaction."""
    assert influxdb.pid is not None
    began = time.monotonic()
    quiet_since = time.monotonic()
    before = cpu_seconds([influxdb.pid], gone_ok=False)
    while time.monotonic() - began < limit:
        time.sleep(poll)
        now = cpu_seconds([influxdb.pid], gone_ok=False)
        if now - before > 0.05 * poll:
            quiet_since = time.monotonic()
        before = now
        if time.monotonic() - quiet_since >= quiet_seconds and time.monotonic() - began >= at_least:
            print(
                f"InfluxDB settled (cache written, compacted) after {time.monotonic() - began:.0f}s",
                file=sys.stderr,
            )
            return True
    print(
        f"WARNING: InfluxDB did not settle: still busy after {limit:.0f}s (no {quiet_seconds:g}s "
        "without work); the report is timed anyway and may overlap a compaction",
        file=sys.stderr,
    )
    return False


def write_config(
    directory: Path, influxdb: InfluxDB, hosts: list[Host], start: int, end: int, step: str
) -> Path:
    path = directory / "bench-report.yaml"
    names = ", ".join(h.name for h in hosts)
    path.write_text(f"""title: Benchmark report
tenant: bench
hosts: [{names}]
time:
  start: {time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))}
  end: {time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end))}
  step: {step}
influxdb:
  url: {influxdb.url}
  username: {READ_USER}
  password_env: BENCH_REPORT_PASSWORD
""")
    return path


def time_report(
    base: Path,
    influxdb: InfluxDB,
    hosts: list[Host],
    period: tuple[int, int],
    step: str,
    env: dict[str, str],
    args: argparse.Namespace,
) -> float:
    """Build, render and write the report once; print and return the seconds it took."""
    config_path = write_config(base, influxdb, hosts, *period, step)
    values = report_settings.load(["--config", str(config_path)], env)
    config = load_config(config_path, env)
    began = time.monotonic()
    report = build_report(config, values)
    html = render_page(report)
    output = base / "bench-report.html"
    output.write_text(html, encoding="utf-8")
    seconds = time.monotonic() - began
    parts = ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items())
    samples = (period[1] - period[0]) // args.interval
    print(
        f"report: {len(hosts)} hosts x {args.days:g} days at {args.interval}s ({samples:,} samples per series), "
        f"step {report.grid.step}s ({report.grid.count:,} steps): {seconds:.1f}s ({parts}, "
        f"HTML {seconds - sum(report.timings.values()):.1f}s; {len(html) / 1e6:.1f} MB); target <= {TARGET_SECONDS:.0f}s"
    )
    if args.pdf:
        printing = time.monotonic()
        print_pdf(output, base / "bench-report.pdf", find_browser(""))
        print(f"pdf: {time.monotonic() - printing:.1f}s")
    if args.keep:
        args.keep.write_text(html, encoding="utf-8")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--interval", type=int, default=10, help="seconds between samples")
    parser.add_argument(
        "--step",
        action="append",
        help="the report's step: auto (the default) or a duration; repeat to time several",
    )
    parser.add_argument("--pdf", action="store_true", help="also time printing the PDF")
    parser.add_argument("--keep", type=Path, help="copy the HTML report here")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when the target is missed, or InfluxDB never settled")  # fmt: skip
    args = parser.parse_args(argv)

    count = int(args.days * 86400 / args.interval)
    end = int(time.time()) // 3600 * 3600
    start = end - count * args.interval
    hosts = [Host(f"bench-{i + 1:02d}", i, args.interval) for i in range(args.hosts)]
    with tempfile.TemporaryDirectory(prefix="bench-report-") as base:
        settings: dict[str, dict[str, str | int | float | bool]] = {
            "data": {
                "cache-max-memory-size": 4 * GIB,
                "cache-snapshot-memory-size": 256 * 1024**2,
                "cache-snapshot-write-cold-duration": "5s",
                "compact-full-write-cold-duration": "15s",
            }
        }
        with InfluxDB(base, auth=True, settings=settings) as influxdb:
            influxdb.create_database(DATABASE)
            password = secrets.token_urlsafe(18)
            influxdb.query(f"CREATE USER {READ_USER} WITH PASSWORD '{password}'")
            influxdb.query(f"GRANT READ ON {DATABASE} TO {READ_USER}")
            loading = time.monotonic()
            points = load(influxdb, hosts, start, count, args.interval)
            print(
                f"loaded {points:,} points ({len(hosts)} hosts, {count:,} samples per series) "
                f"in {time.monotonic() - loading:.0f}s",
                file=sys.stderr,
            )
            settled = settle(influxdb)
            env = {**os.environ, "BENCH_REPORT_PASSWORD": password}
            timings = [
                time_report(Path(base), influxdb, hosts, (start, end), step, env, args)
                for step in args.step or ["auto"]
            ]
    if not settled:
        print("the timing above is of an InfluxDB that had not settled (see the warning)")
    missed = timings[0] > TARGET_SECONDS or not settled
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    unwind_on_termination()
    sys.exit(main())
