"""Scrape the checked-in fake /proc trees and read the Prometheus text format back, for unit tests."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from exporter.app import scrape_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KERNELS = ("3.10", "4.19", "6.8")
NODE_COLLECTORS = ("cpu", "stat", "meminfo", "netdev", "diskstats", "loadavg", "vmstat", "pressure")

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]


def tree(kernel: str) -> Path:
    return FIXTURES / f"proc-{kernel}"


def path_flags(root: Path, rootfs: Path | str = "/") -> list[str]:
    return [
        f"--path.procfs={root / 'proc'}",
        f"--path.sysfs={root / 'sys'}",
        f"--path.rootfs={rootfs}",
        f"--path.udev.data={root / 'run' / 'udev' / 'data'}",
    ]


def scrape(
    root: Path, *collectors: str, flags: tuple[str, ...] = (), rootfs: Path | str = "/"
) -> str:
    """One scrape of the named collectors (all procfs ones by default) against a fake tree."""
    enabled = [f"--collector.{name}" for name in collectors or NODE_COLLECTORS]
    return scrape_text(
        [
            "--collector.disable-defaults",
            "--web.disable-exporter-metrics",
            *enabled,
            *path_flags(root, rootfs),
            *flags,
        ]
    )


def labels(**pairs: str) -> Labels:
    return frozenset(pairs.items())


def parse_samples(text: str) -> Samples:
    """Every sample keyed by (name, labels); the text must parse and hold no series twice."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return samples


def series(samples: Samples, name: str) -> dict[Labels, float]:
    return {lab: value for (metric, lab), value in samples.items() if metric == name}


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(lab)[label] for lab in series(samples, name)}


def value(samples: Samples, name: str, **pairs: str) -> float:
    return samples[(name, labels(**pairs))]


def headers(text: str) -> dict[str, tuple[str, str]]:
    """Family name -> (TYPE, HELP) as written, each line required exactly once per family."""
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in helps, f"second HELP line for {name}"
            helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name not in types, f"second TYPE line for {name}"
            types[name] = kind
    assert helps.keys() == types.keys()
    return {name: (types[name], helps[name]) for name in helps}


def success(samples: Samples) -> dict[str, float]:
    return {
        dict(lab)["collector"]: v
        for lab, v in series(samples, "node_scrape_collector_success").items()
    }
