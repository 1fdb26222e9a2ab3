"""A private registry: runs the enabled collectors and adds node_exporter's scrape meta-metrics.

Each collector runs in isolation: an exception marks that collector's
``node_scrape_collector_success`` 0 and drops only its own samples, except the families a
``CollectorError`` carries (what node_exporter would have sent before the error). ``NoDataError`` (a
host without what the collector reads, e.g. no PSI) gives success 0 as well, as node_exporter's
ErrNoData does, but is the host's normal state, not a failure: it is logged at debug and kept
apart from ``failures``, which turn /health degraded. Families of the same name from
different collectors are merged, and repeated label sets are emitted once (see exposition), so a
scrape never fails on duplicate series.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from exporter.model import GAUGE, CollectorError, MetricFamily, NoDataError, family

log = logging.getLogger(__name__)


class Collector(Protocol):
    name: str

    def collect(self) -> Iterable[MetricFamily]: ...


@dataclass
class ScrapeResult:
    families: list[MetricFamily]
    failures: dict[str, str] = field(default_factory=dict)
    no_data: dict[str, str] = field(default_factory=dict)  # collector -> why it has nothing
    finished_at: float = 0.0


class Registry:
    def __init__(self, collectors: Sequence[Collector], extra: Sequence[Collector] = ()) -> None:
        self.collectors = list(collectors)
        self.extra = list(extra)  # the exporter's own metrics: not timed as node collectors
        self._lock = threading.Lock()
        self.last: ScrapeResult | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.collectors]

    def scrape(self, only: Iterable[str] | None = None) -> ScrapeResult:
        """Run the collectors (all, or those named in ``only``) one scrape at a time."""
        wanted = None if only is None else set(only)
        with self._lock:
            result = self._scrape(wanted)
            if wanted is None:
                self.last = result
            return result

    def _scrape(self, wanted: set[str] | None) -> ScrapeResult:
        merged: dict[str, MetricFamily] = {}
        duration = family(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
            GAUGE,
            "collector",
        )
        success = family(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
            GAUGE,
            "collector",
        )
        failures: dict[str, str] = {}
        no_data: dict[str, str] = {}
        for collector in self.collectors:
            if wanted is not None and collector.name not in wanted:
                continue
            start = time.perf_counter()
            ok = 1.0
            try:
                produced = list(collector.collect())
            except NoDataError as exc:
                log.debug("collector %s returned no data: %s", collector.name, exc)
                no_data[collector.name] = str(exc)
                produced, ok = exc.families, 0.0
            except Exception as exc:
                log.error(
                    "collector %s failed: %s",
                    collector.name,
                    exc,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                failures[collector.name] = f"{type(exc).__name__}: {exc}"
                produced = exc.families if isinstance(exc, CollectorError) else []
                ok = 0.0
            duration.add(time.perf_counter() - start, collector.name)
            success.add(ok, collector.name)
            _merge(merged, produced, collector.name)
        _merge(merged, [duration, success], "registry")
        for extra in self.extra:
            try:
                _merge(merged, extra.collect(), extra.name)
            except Exception as exc:
                log.error("internal metrics %s failed: %s", extra.name, exc)
        return ScrapeResult(list(merged.values()), failures, no_data, time.time())


def _merge(into: dict[str, MetricFamily], families: Iterable[MetricFamily], source: str) -> None:
    for fam in families:
        existing = into.get(fam.name)
        if existing is None:
            into[fam.name] = fam
        elif (existing.type, existing.help, existing.label_names) != (
            fam.type,
            fam.help,
            fam.label_names,
        ):  # node_exporter (client_golang's Gather) drops a family whose HELP differs too
            log.warning(
                "%s: dropping %s, already exported with another type, HELP or labels",
                source,
                fam.name,
            )
        else:
            existing.samples.extend(fam.samples)
