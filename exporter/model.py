"""The exporter's metric data model: a family of samples, built fresh at every scrape."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

COUNTER = "counter"
GAUGE = "gauge"
UNTYPED = "untyped"


class CollectorError(Exception):
    """A collector failed after producing ``families``: success is 0 and they are served, as
    node_exporter serves what a collector sent before it returned an error."""

    def __init__(self, message: str, families: Iterable[MetricFamily] = ()) -> None:
        super().__init__(message)
        self.families = list(families)


class NoDataError(CollectorError):
    """A collector found nothing (more) to report (node_exporter's ErrNoData): success is 0, no
    alarm; ``families`` holds what it had found before, served as node_exporter serves it."""


@dataclass(slots=True)
class MetricFamily:
    """One metric family; ``samples`` pairs label values (in ``label_names`` order) with a value."""

    name: str
    help: str
    type: str
    label_names: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def add(self, value: float, *label_values: str) -> None:
        self.samples.append((label_values, value))


def family(name: str, help_text: str, kind: str, *label_names: str) -> MetricFamily:
    return MetricFamily(name, help_text, kind, tuple(label_names))


def single(name: str, help_text: str, kind: str, value: float) -> MetricFamily:
    """A family with one unlabelled sample."""
    return MetricFamily(name, help_text, kind, (), [((), value)])
