"""Scrape latency and resident memory of our exporter against Debian's node_exporter 1.5.0.

Both run the same collectors with the same filters (perfanalysis.testing.anchor), on loopback,
scraped over one keep-alive connection each with ``Accept-Encoding: gzip`` as Prometheus scrapes.
Scrapes are interleaved, alternating which goes first, so load on the machine hits both alike.
Targets (docs/architecture.md, Targets): median latency <= 1.0x node_exporter's, RSS <= 1.25x.

    python -m bench.exporter [--rounds 500] [--json results.json] [--strict]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.stats import percentile
from bench.termination import unwind_on_termination
from perfanalysis.testing.anchor import BENCH_FLAGS, NODE_EXPORTER_ONLY
from perfanalysis.testing.servers import ExporterProcess, NodeExporter, ServerProcess

LATENCY_TARGET = 1.0
MEMORY_TARGET = 1.25
WARMUP = 30


class Scraper:
    def __init__(self, server: ServerProcess) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        self.latencies: list[float] = []

    def scrape(self, record: bool = True) -> None:
        start = time.perf_counter()
        self.connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        response = self.connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"scrape answered {response.status}")
        if record:
            self.latencies.append(elapsed)


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def run(rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-exporter-") as base:
        ours = ExporterProcess(Path(base) / "ours", BENCH_FLAGS).start()
        anchor = NodeExporter(
            Path(base) / "node_exporter", BENCH_FLAGS + NODE_EXPORTER_ONLY
        ).start()
        try:
            assert ours.pid is not None
            assert anchor.pid is not None
            scrapers = {"ours": Scraper(ours), "node_exporter": Scraper(anchor)}
            for _ in range(WARMUP):
                for scraper in scrapers.values():
                    scraper.scrape(record=False)
            order = list(scrapers.values())
            for done in range(1, rounds + 1):
                for scraper in order if done % 2 else reversed(order):
                    scraper.scrape()
                if done % max(1, rounds // 10) == 0 or done == rounds:
                    mine, theirs = scrapers["ours"].latencies, scrapers["node_exporter"].latencies
                    print(
                        f"  {done}/{rounds} rounds: median ours {statistics.median(mine) * 1e3:.2f} ms, "
                        f"node_exporter {statistics.median(theirs) * 1e3:.2f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
            mine, theirs = scrapers["ours"].latencies, scrapers["node_exporter"].latencies
            result = {
                "rounds": rounds,
                "ours_median_ms": statistics.median(mine) * 1e3,
                "ours_p99_ms": percentile(mine, 0.99) * 1e3,
                "node_exporter_median_ms": statistics.median(theirs) * 1e3,
                "node_exporter_p99_ms": percentile(theirs, 0.99) * 1e3,
                "ours_rss_kib": memory_kib(ours.pid, "VmRSS"),
                "ours_peak_rss_kib": memory_kib(ours.pid, "VmHWM"),
                "node_exporter_rss_kib": memory_kib(anchor.pid, "VmRSS"),
                "node_exporter_peak_rss_kib": memory_kib(anchor.pid, "VmHWM"),
            }
        finally:
            ours.stop()
            anchor.stop()
    result["median_ratio"] = result["ours_median_ms"] / result["node_exporter_median_ms"]
    result["p99_ratio"] = result["ours_p99_ms"] / result["node_exporter_p99_ms"]
    result["rss_ratio"] = result["ours_rss_kib"] / result["node_exporter_rss_kib"]
    result["peak_rss_ratio"] = result["ours_peak_rss_kib"] / result["node_exporter_peak_rss_kib"]
    return result


def report(result: dict[str, float]) -> bool:
    latency_ok = result["median_ratio"] <= LATENCY_TARGET
    memory_ok = result["rss_ratio"] <= MEMORY_TARGET
    print(f"exporter vs node_exporter 1.5.0, {int(result['rounds'])} interleaved scrapes each")
    print(f"{'':22}{'ours':>12}{'node_exporter':>16}{'ratio':>10}")
    rows = [
        ("median latency (ms)", "ours_median_ms", "node_exporter_median_ms", "median_ratio"),
        ("p99 latency (ms)", "ours_p99_ms", "node_exporter_p99_ms", "p99_ratio"),
        ("RSS (KiB)", "ours_rss_kib", "node_exporter_rss_kib", "rss_ratio"),
        ("peak RSS (KiB)", "ours_peak_rss_kib", "node_exporter_peak_rss_kib", "peak_rss_ratio"),
    ]
    for label, mine, theirs, ratio in rows:
        print(f"{label:22}{result[mine]:>12.2f}{result[theirs]:>16.2f}{result[ratio]:>9.2f}x")
    print(f"median latency target <= {LATENCY_TARGET}x: {'met' if latency_ok else 'MISSED'}")
    print(f"RSS target <= {MEMORY_TARGET}x: {'met' if memory_ok else 'MISSED'}")
    return latency_ok and memory_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=500, help="interleaved scrapes of each exporter"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.rounds < 10:
        parser.error("--rounds must be at least 10")
    result = run(args.rounds)
    met = report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if met or not args.strict else 1


if __name__ == "__main__":
    unwind_on_termination()
    sys.exit(main())
