"""targets.py against a real Prometheus (the Debian package's): for every file of the unit
tests' CASES, what Prometheus scrapes from it (its targets' tenant labels, in /api/v1/targets),
which files it refuses and which targets it drops for having no address (both in its log) are
what targets.py reads, and what the cases say."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from perfanalysis.alerting.targets import scrape
from perfanalysis.testing.servers import ServerRegistry, wait_until
from tests.unit.test_alerting_targets_as_prometheus import CASES, scraped

pytestmark = pytest.mark.integration

SENTINEL = "127.0.0.1:65000"  # in the file file_sd reads last: once it is up, all were read
REFUSED = re.compile(r'msg="Error reading file" path=(\S+)')
NO_ADDRESS = re.compile(
    r'msg="Creating target failed" err="instance (\d+) in group (\S+):(\d+): no address"'
)


def test_target_files_are_read_as_prometheus_reads_them(
    tmp_path: Path, servers: ServerRegistry
) -> None:
    directory = tmp_path / "prometheus"
    targets, last = directory / "targets", directory / "last"
    targets.mkdir(parents=True)
    last.mkdir()
    for case in CASES:
        (targets / case.name).write_text(case.text)
    (last / "sentinel.yml").write_text(f"- targets: ['{SENTINEL}']\n")
    files = [f"{targets}/*.yml", f"{targets}/*.yaml", f"{targets}/*.json", f"{last}/*.yml"]
    config = yaml.safe_dump({
        "global": {"scrape_interval": "1h"},  # nothing listens there: discovery is the point
        "scrape_configs": [{"job_name": "node", "file_sd_configs": [{"files": files}]}],
    })  # fmt: skip
    (directory / "prometheus.yml").write_text(config)  # for targets.py, beside the files
    prometheus = servers.prometheus(config)

    def discovered() -> list[dict[str, object]] | None:
        active = prometheus.targets()
        return active if any(t["labels"]["instance"] == SENTINEL for t in active) else None

    active = wait_until(discovered, timeout=60, interval=0.2, what="the sentinel target")
    theirs: dict[str, Counter[str]] = {case.name: Counter() for case in CASES}
    for target in active:
        path = Path(target["discoveredLabels"]["__meta_filepath"])
        if path.parent == targets:
            theirs[path.name][target["labels"].get("tenant", "")] += 1
    log = prometheus.log_path.read_text()
    refused_by_them = {Path(path).name for path in REFUSED.findall(log)}
    dropped = set(NO_ADDRESS.findall(log))  # logged again on each update of the targets
    dropped_by_them = sorted((Path(path).name, int(group) + 1) for _, path, group in dropped)

    ours = scrape(directory)
    assert ours is not None
    refused_by_us = {path.name for path in ours.refused}
    assert refused_by_us == refused_by_them == {c.name for c in CASES if c.scraped is None}
    for case in CASES:
        found = ours.files.get(targets / case.name)
        read = {} if found is None else scraped(found)
        expected = case.scraped or {}
        assert (case.name, read) == (case.name, dict(theirs[case.name])), log[-3000:]
        assert (case.name, read) == (case.name, expected)
    dropped_by_us = sorted((path.name, group) for path, found in ours.files.items()
                           for group in found.no_address)  # fmt: skip
    expected_dropped = sorted((c.name, group) for c in CASES for group in c.no_address)
    assert dropped_by_us == dropped_by_them == expected_dropped
