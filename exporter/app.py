"""Builds the exporter's private registry from parsed settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from exporter import __version__
from exporter.collectors.catalogue import COLLECTORS
from exporter.collectors.process import ProcessCollector
from exporter.config import enabled_collectors, load
from exporter.exposition import render
from exporter.paths import Paths
from exporter.registry import Registry


def paths_from(values: Mapping[str, Any]) -> Paths:
    return Paths(
        procfs=values["path_procfs"],
        sysfs=values["path_sysfs"],
        rootfs=values["path_rootfs"],
        udev_data=values["path_udev_data"],
    )


def build_registry(values: Mapping[str, Any]) -> Registry:
    paths = paths_from(values)
    collectors = [COLLECTORS[name].build(paths, values) for name in enabled_collectors(values)]
    extra = [] if values["web_disable_exporter_metrics"] else [ProcessCollector(__version__)]
    return Registry(collectors, extra)


def scrape_text(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """One scrape with the given flags, as the text /metrics would serve (used by tests and tools)."""
    registry = build_registry(load(argv, {} if environ is None else environ))
    return render(registry.scrape().families).decode()
