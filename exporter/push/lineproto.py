r"""Metric families as InfluxDB line protocol: one point per sample, field ``value``, one timestamp.

``node_cpu_seconds_total{cpu="0",mode="idle"} 12.5`` sampled on host ``web1`` at t becomes
``node_cpu_seconds_total,cpu=0,host=web1,mode=idle value=12.5 <t in ns>``: the measurement is the
family name, the tags are its labels plus ``host`` (sorted by key, as InfluxDB keeps them), and
the value is always a float field so its type never conflicts across points.

Escaping is what InfluxDB 1.x reads (measured on 1.6.7, and what ingest's parser implements): the
measurement escapes comma and space; tag keys and values escape comma, ``=`` and space, each with
one backslash. Every other backslash is literal and sent as it is -- ``C:\dir`` or systemd's
``\x2d`` arrive unchanged -- and a backslash before an escaped delimiter needs nothing more
(``a\`` + ``\,`` reads back as ``a\,``). The documentation's other reading, ``\\`` as one
backslash, is not what 1.x stores, so backslashes are never doubled.

What line protocol cannot carry is adapted, so that one odd label never gets a whole batch
refused: NaN and infinities are skipped and counted; empty label values are omitted (tag values
cannot be empty); control characters, which ingest refuses, are written as ``\n``, ``\t`` or
``\xNN``; trailing backslashes, which would escape the separator after the value, are dropped.
A label named ``host``, ``tenant`` or ``collector`` would collide with the tag we add or the
ones ingest forces from the key, so it is renamed ``exported_<name>`` (prefixed again while that
is another label's name), as Prometheus renames labels that collide with target labels; so is ``time``, which InfluxDB (and ingest) refuse as a
tag key: a textfile metric with such a label would otherwise get every batch refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from exporter.model import MetricFamily

RESERVED_TAGS = frozenset({"host", "tenant", "collector", "time"})
_TAG_NEEDS_WORK = re.compile(r"[\\,= \x00-\x1f\x7f]")
_MEASUREMENT_NEEDS_WORK = re.compile(r"[\\, \x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_NAMES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_TAG_SPECIAL = re.compile(r"([,= ])")
_MEASUREMENT_SPECIAL = re.compile(r"([, ])")
# Series prefixes kept between cycles: at least this many, and twice the last encode's points,
# so a big host (25,000 series with 500 veths and 300 mounts) keeps its whole set while series
# that churn (containers' veths and mounts coming and going) are dropped once twice as many.
MIN_CACHE_SIZE = 16384


def _printable(text: str) -> str:
    text = _CONTROL.sub(lambda m: _CONTROL_NAMES.get(m[0], f"\\x{ord(m[0]):02x}"), text)
    return text.rstrip("\\")


def escape_tag(text: str) -> str:
    """Escape a tag key or tag value (an empty result means: omit the tag)."""
    if not _TAG_NEEDS_WORK.search(text):
        return text
    return _TAG_SPECIAL.sub(r"\\\1", _printable(text))


def escape_measurement(text: str) -> str:
    if not _MEASUREMENT_NEEDS_WORK.search(text):
        return text
    return _MEASUREMENT_SPECIAL.sub(r"\\\1", _printable(text))


def tag_key(label: str) -> str:
    return f"exported_{label}" if label in RESERVED_TAGS else label


def tag_keys(label_names: Sequence[str]) -> list[str]:
    """Each label's tag key: a reserved one renamed ``exported_<name>``, prefixed again while the
    name is another label's (``host`` beside ``exported_host``), as Prometheus does, since a
    repeated tag key gets the whole batch refused."""
    taken = set(label_names)
    keys = []
    for label in label_names:
        key = tag_key(label)
        if key != label:
            while key in taken:
                key = f"exported_{key}"
            taken.add(key)
        keys.append(key)
    return keys


@dataclass(frozen=True, slots=True)
class _Layout:
    """A family's measurement and its tags in key order: (label index or -1 for host, escaped key)."""

    measurement: str
    tags: tuple[tuple[int, str], ...]


@dataclass(slots=True)
class Encoded:
    lines: list[str]  # each ends with "\n"
    non_finite: int  # samples skipped because line protocol cannot carry NaN or infinities


class LineEncoder:
    """Encodes scrapes for one host; caches each series' ``measurement,tags value=`` prefix."""

    def __init__(self, host: str) -> None:
        self.host = escape_tag(host)
        if not self.host:
            raise ValueError("the host tag must not be empty")
        self._layouts: dict[tuple[str, tuple[str, ...]], _Layout] = {}
        self._prefixes: dict[tuple[str, tuple[str, ...]], str] = {}
        self._cache_limit = MIN_CACHE_SIZE

    @property
    def cached_series(self) -> int:
        return len(self._prefixes)

    def encode(self, families: Iterable[MetricFamily], timestamp_ns: int) -> Encoded:
        lines: list[str] = []
        non_finite = 0
        suffix = f" {timestamp_ns}\n"
        prefixes = self._prefixes
        if len(prefixes) > self._cache_limit:  # series churn: short-lived veths or mounts
            prefixes.clear()
        isfinite = math.isfinite
        append = lines.append
        for fam in families:
            name, samples = fam.name, fam.samples
            if len(samples) == 1:  # most families: no repeated label set to look for
                labels, value = samples[0]
                if not isfinite(value):
                    non_finite += 1
                    continue
                prefix = prefixes.get((name, labels)) or self._remember(fam, labels)
                append(f"{prefix}{value!r}{suffix}")
                continue
            seen: set[tuple[str, ...]] = set()
            for labels, value in samples:
                if not isfinite(value):
                    non_finite += 1
                    continue
                if labels in seen:  # /metrics emits a repeated label set once: the first wins
                    continue
                seen.add(labels)
                prefix = prefixes.get((name, labels)) or self._remember(fam, labels)
                append(f"{prefix}{value!r}{suffix}")
        self._cache_limit = max(MIN_CACHE_SIZE, 2 * len(lines))
        return Encoded(lines, non_finite)

    def _remember(self, fam: MetricFamily, labels: tuple[str, ...]) -> str:
        prefix = self._prefix(self._layout(fam.name, fam.label_names), labels)
        self._prefixes[(fam.name, labels)] = prefix
        return prefix

    def _layout(self, name: str, label_names: tuple[str, ...]) -> _Layout:
        key = (name, label_names)
        layout = self._layouts.get(key)
        if layout is None:
            keys = [(escape_tag(key), index) for index, key in enumerate(tag_keys(label_names))]
            keys.append(("host", -1))
            tags = tuple((index, escaped) for escaped, index in sorted(keys))
            layout = self._layouts[key] = _Layout(escape_measurement(name), tags)
        return layout

    def _prefix(self, layout: _Layout, labels: Sequence[str]) -> str:
        parts = [layout.measurement]
        for index, escaped_key in layout.tags:
            value = self.host if index < 0 else escape_tag(labels[index])
            if value:
                parts.append(f"{escaped_key}={value}")
        return ",".join(parts) + " value="


def batches(lines: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive runs of at most ``size`` lines."""
    for start in range(0, len(lines), size):
        yield lines[start : start + size]
