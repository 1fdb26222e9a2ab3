"""What a report holds once the data is analysed: per host, sections of panels (charts) and the
key series whose percentiles go into the tables."""

from __future__ import annotations

from dataclasses import dataclass, field

from perfanalysis.report.series import Values
from perfanalysis.report.stats import Summary
from perfanalysis.report.timerange import Grid
from perfanalysis.report.trend import ShortData

# units a value can have; svg and page format each
PERCENT, BYTES, BYTES_PER_SECOND, PER_SECOND, MILLISECONDS, COUNT = (
    "percent",
    "bytes",
    "bytes/s",
    "per second",
    "ms",
    "count",
)


@dataclass
class Metric:
    key: str  # stable identifier, e.g. "cpu.busy" or "filesystem.used_percent:/var"
    label: str
    unit: str
    values: Values
    dashed: bool = False


@dataclass
class Panel:
    """One chart: its lines, and which buckets hold underlying data (the rest are gaps)."""

    key: str  # e.g. "cpu.overall"
    title: str
    unit: str
    lines: list[Metric]
    has_data: list[bool]
    stacked: bool = False
    y_max: float | None = None  # a fixed top, e.g. 100 for percentages
    threshold: float | None = None
    note: str = ""


@dataclass
class Section:
    key: str  # cpu, memory, disk, network, filesystem
    title: str
    subject: str  # the device, interface or mountpoints reported, or ""
    panels: list[Panel]
    table: list[Metric]  # the key series: their percentiles go into the tables
    has_data: list[bool]
    note: str = ""

    @property
    def coverage(self) -> float:
        return sum(self.has_data) / len(self.has_data) if self.has_data else 0.0


@dataclass
class FillForecast:
    mountpoint: str
    used_percent: float | None  # the latest fill
    seconds_to_full: float | None  # from ``latest_at``, at the fitted rate; None: not filling
    bytes_per_day: float | None  # change of available bytes per day (negative: filling)
    latest_at: int | None = None  # when the latest free-bytes sample was taken
    not_forecast: ShortData | None = None  # too little data for the horizon: no trend fitted

    @property
    def full_at(self) -> float | None:
        """When the filesystem is full by the trend (epoch seconds)."""
        if self.seconds_to_full is None or self.latest_at is None:
            return None
        return self.latest_at + self.seconds_to_full


@dataclass
class HostReport:
    host: str
    collector: str | None
    grid: Grid
    sections: dict[str, Section]
    summaries: dict[str, Summary] = field(default_factory=dict)
    forecasts: list[FillForecast] = field(default_factory=list)
    sampling_interval: float | None = None  # the median spacing of its samples (seconds)

    @property
    def step_below_sampling(self) -> bool:
        """The step is shorter than the host's sampling interval: steps without a sample are
        then the step's doing, not the host's (and every rate, which needs two adjacent steps
        with a sample, is missing where they alternate)."""
        interval = self.sampling_interval
        return interval is not None and self.grid.step < round(interval)

    @property
    def has_data(self) -> list[bool]:
        """Buckets where the host sent its CPU counters: the measure of missing data."""
        return self.sections["cpu"].has_data

    @property
    def coverage(self) -> float:
        return self.sections["cpu"].coverage

    def metric(self, key: str) -> Metric | None:
        for section in self.sections.values():
            for metric in section.table:
                if metric.key == key:
                    return metric
        return None
