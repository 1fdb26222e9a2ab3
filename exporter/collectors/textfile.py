"""textfile: metrics from the ``*.prom`` files of ``--collector.textfile.directory``, as 1.5.0.

The directory may be a glob (each match is read; no match, or a bad pattern, reads the text as a
directory). No directory (the default, as upstream's; Debian's package passes
/var/lib/prometheus/node-exporter) reads nothing and reports no error. Each ``*.prom`` file is
parsed whole (promparse, expfmt's rules): a file that cannot be opened or parsed, or that holds a
sample with a timestamp, is skipped, logged, and sets ``node_textfile_scrape_error`` 1; each file
read is in ``node_textfile_mtime_seconds{file}`` (whole seconds). A family without HELP gets
``Metric read from <the files holding it, comma-separated>``; within a family a label a sample
lacks is exported empty.

As client_golang's Gather in 1.5.0, the first sample of a name fixes its HELP and TYPE: a later one
with another HELP or TYPE (the same name in two files, one with HELP), or repeating a series
already seen, is dropped with an error log, without setting scrape_error. A name that another
collector exports is settled by the registry: a family of another TYPE or label set is dropped
there, with a warning (1.5.0 drops one of another HELP or TYPE). Summaries and histograms are
served as the untyped series their exposition holds (``_bucket`` with a ``+Inf`` bucket added
when missing, ``_sum``, ``_count``, quantiles): Prometheus stores the same series.
"""

from __future__ import annotations

import glob
import logging
import math
import os
from dataclasses import dataclass, field

from exporter.collectors.promparse import Family, ParseError, Sample, go_parse_float, parse
from exporter.exposition import go_float
from exporter.model import COUNTER, GAUGE, UNTYPED, MetricFamily, family, single
from exporter.paths import Paths

log = logging.getLogger(__name__)

KINDS = {"counter": COUNTER, "gauge": GAUGE, "untyped": UNTYPED}


@dataclass
class _Out:
    """One exported family being assembled: HELP and TYPE fixed by its first sample."""

    name: str
    help: str
    kind: str
    rows: list[dict[str, str]] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    seen: set[frozenset[tuple[str, str]]] = field(default_factory=set)


class TextfileCollector:
    name = "textfile"

    def __init__(self, paths: Paths, directory: str | None = None) -> None:
        self.paths = paths
        self.directory = directory or ""

    def collect(self) -> list[MetricFamily]:
        errored = False
        parsed: list[tuple[str, Family]] = []  # (file, family)
        files_of: dict[str, list[str]] = {}
        mtimes: dict[str, int] = {}
        for directory in _directories(self.directory):
            try:
                names = sorted(os.listdir(directory))
            except OSError as exc:
                names = []
                if directory != "":
                    errored = True
                    log.error("failed to read textfile collector directory %s: %s", directory, exc)
            for name in names:
                if not name.endswith(".prom"):
                    continue
                path = os.path.normpath(os.path.join(directory, name))
                try:
                    parsed_file, mtime = _process(path)
                except (OSError, ParseError, ValueError) as exc:
                    errored = True
                    log.error("failed to collect textfile data from %s: %s", name, exc)
                    continue
                for fam in parsed_file.values():
                    files_of.setdefault(fam.name, []).append(path)
                    parsed.append((path, fam))
                mtimes[path] = mtime
        out: dict[str, _Out] = {}
        for _, fam in parsed:
            help_text = fam.help
            if help_text is None:
                help_text = f"Metric read from {', '.join(files_of[fam.name])}"
            _convert(fam, help_text, out)
        families = [fam for o in out.values() for fam in _families(o)]
        if mtimes:
            mtime_family = family(
                "node_textfile_mtime_seconds",
                "Unixtime mtime of textfiles successfully read.",
                GAUGE,
                "file",
            )
            for path in sorted(mtimes):
                mtime_family.add(float(mtimes[path]), path)
            families.append(mtime_family)
        families.append(
            single(
                "node_textfile_scrape_error",
                "1 if there was an error opening or reading a file, 0 otherwise",
                GAUGE,
                1.0 if errored else 0.0,
            )
        )
        return families


def _directories(pattern: str) -> list[str]:
    """Go's filepath.Glob, falling back to the pattern itself as node_exporter does."""
    if not pattern:
        return [""]
    try:
        matches = sorted(glob.glob(pattern, include_hidden=True))
    except (OSError, ValueError):
        matches = []
    return matches or [pattern]


def _process(path: str) -> tuple[dict[str, Family], int]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        try:
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        except IsADirectoryError:
            pass  # a directory named *.prom: Go's parser sees an empty file, and so do we
        try:
            families = parse(b"".join(chunks).decode("utf-8", "surrogateescape"))
        except ParseError as exc:
            raise ParseError(f"failed to parse textfile data from {path!r}: {exc}") from None
        if any(s.timestamp is not None for fam in families.values() for s in fam.samples):
            raise ValueError(
                f"textfile {path!r} contains unsupported client-side timestamps, "
                "skipping entire file"
            )
        # stat only once parsed and valid, so that a failure does not appear fresh
        mtime_ns = os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)
    return families, int(mtime_ns / 1e9) if mtime_ns < 0 else mtime_ns // 1_000_000_000


def _convert(fam: Family, help_text: str, out: dict[str, _Out]) -> None:
    """A parsed family's samples, each checked as Gather checks them (first HELP/TYPE wins)."""
    names = sorted({label for sample in fam.samples for label in sample.labels})
    if fam.kind in KINDS:
        for sample in fam.samples:
            labels = {label: sample.labels.get(label, "") for label in names}
            _add(
                out, fam.name, help_text, fam.kind, KINDS[fam.kind], fam.name, labels, sample.value
            )
        return
    # summary / histogram: one metric per label set without quantile or le
    special = "quantile" if fam.kind == "summary" else "le"
    grouped: dict[tuple[tuple[str, str], ...], list[Sample]] = {}
    for sample in fam.samples:
        key = tuple((label, sample.labels.get(label, "")) for label in names if label != special)
        grouped.setdefault(key, []).append(sample)
    for key, samples in grouped.items():
        base = dict(key)
        total = next((s.value for s in reversed(samples) if s.suffix == "_count"), 0.0)
        total_sum = next((s.value for s in reversed(samples) if s.suffix == "_sum"), 0.0)
        points: dict[float, float] = {}
        for s in samples:
            if s.suffix == ("" if special == "quantile" else "_bucket"):
                points[go_parse_label_float(s.labels[special])] = s.value
        suffix = "" if special == "quantile" else "_bucket"
        count = float(_uint(total))
        if special == "le" and math.inf not in points:
            points[math.inf] = count
        for bound in sorted(points):
            value = points[bound] if special == "quantile" else float(_uint(points[bound]))
            labels = {**base, special: go_float(bound)}
            _add(out, fam.name, help_text, fam.kind, UNTYPED, fam.name + suffix, labels, value)
        _add(out, fam.name, help_text, fam.kind, UNTYPED, fam.name + "_sum", base, total_sum)
        _add(out, fam.name, help_text, fam.kind, UNTYPED, fam.name + "_count", base, count)


def go_parse_label_float(text: str) -> float:
    try:
        return go_parse_float(text)
    except ValueError:
        raise ValueError(f"invalid bound {text!r}") from None


def _uint(value: float) -> int:
    """Go's uint64(float64): counts of summaries and histograms are whole numbers."""
    if math.isnan(value) or value < 0:
        return 0
    return int(min(value, 2.0**64 - 1))


def _add(
    out: dict[str, _Out],
    family_name: str,
    help_text: str,
    declared: str,
    kind: str,
    series: str,
    labels: dict[str, str],
    value: float,
) -> None:
    first = out.get(family_name)
    if first is not None and (first.help, first.kind) != (help_text, declared):
        what = "help" if first.help != help_text else "type"
        log.error(
            "collected metric %s %s has %s %r but should have %r",
            series,
            labels,
            what,
            help_text if what == "help" else declared,
            first.help if what == "help" else first.kind,
        )
        return
    if first is None:
        first = out[family_name] = _Out(family_name, help_text, declared)
    for label_value in labels.values():
        try:
            label_value.encode()
        except UnicodeEncodeError:
            log.error("collected metric %s has a label value that is not valid UTF-8", series)
            return
    key = frozenset(labels.items()) | {("__name__", series)}
    if key in first.seen:
        log.error(
            "collected metric %s %s was collected before with the same name and label values",
            series,
            labels,
        )
        return
    first.seen.add(key)
    first.rows.append({"__name__": series, **labels})
    first.values.append(value)


def _families(o: _Out) -> list[MetricFamily]:
    """The exported families of one parsed name: itself, or a summary's or histogram's series."""
    kind = KINDS.get(o.kind, UNTYPED)
    help_text = o.help.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    by_series: dict[str, list[int]] = {}
    for i, row in enumerate(o.rows):
        by_series.setdefault(row["__name__"], []).append(i)
    out = []
    for series, rows in by_series.items():
        names = sorted({label for i in rows for label in o.rows[i] if label != "__name__"})
        fam = family(series, help_text, kind, *names)
        for i in rows:
            fam.add(o.values[i], *(o.rows[i].get(label, "") for label in names))
        out.append(fam)
    return out
