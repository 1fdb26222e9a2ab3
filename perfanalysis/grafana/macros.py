"""Expand a panel query as Grafana does before it reaches InfluxDB or Prometheus.

Two stages, as in Grafana 11/12:

1. The frontend's template service replaces dashboard variables (``$host``, ``${host}``,
   ``[[host]]``, ``${host:regex}``) and the range built-ins (``$__range``, ``$__range_s``,
   ``$__range_ms``, ``$__from``, ``$__to``), formatting each value for the data source: a
   multi-value or include-all variable becomes a regex alternation ``(a|b)`` of escaped values; a
   custom "All" value (``.*``) is inserted as it is.
2. The data source's backend replaces its macros: InfluxQL ``$timeFilter`` (``time >= <from>ms and
   time <= <to>ms``), ``$__interval``, ``$__interval_ms`` and ``$interval``; PromQL ``$__interval``,
   ``$__interval_ms``, ``$__rate_interval``, ``$__rate_interval_ms`` and ``$__range*``, and the step.

One deliberate difference: InfluxDB multi-values are escaped with one backslash and grouped in
parentheses, ``/^(web\\.1|db)$/``, the documented ``regex`` format. Some Grafana 11 builds write
``web\\\\.1|db`` there instead (double backslash, no parentheses), which cannot match a dotted host.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from perfanalysis.grafana import intervals
from perfanalysis.grafana.intervals import (
    DEFAULT_MAX_DATA_POINTS,
    DEFAULT_SCRAPE_INTERVAL,
    calculate_interval,
    format_interval,
    go_duration,
    parse_duration,
    prometheus_step,
    rate_interval,
)

ALL = "$__all"  # Grafana's value for "All" selected

# TemplateSrv's variableRegex: $name | [[name:format]] | ${name.path:format}
VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")
_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_PROM_SPECIALS = re.compile(r"[$^*{}\[\]+?.()|]")
_JS_FLOAT_PREFIX = re.compile(r"\s*[+-]?(Infinity|\d+\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?)", re.I)


@dataclass(frozen=True)
class TimeRange:
    """A dashboard time range in epoch milliseconds (``from`` is a keyword, hence start/end)."""

    start_ms: int
    end_ms: int

    @classmethod
    def last(cls, duration: str, now_ms: int) -> TimeRange:
        return cls(now_ms - parse_duration(duration), now_ms)

    @property
    def range_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class Variable:
    """A dashboard variable with its current selection (``ALL`` for "All")."""

    name: str
    current: tuple[str, ...]
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    options: tuple[str, ...] = ()  # what "All" stands for when there is no custom all value

    def selected(self) -> tuple[str, ...] | str:
        """The value Grafana formats: a custom all value (string), else the values."""
        if self.current == (ALL,):
            return self.all_value if self.all_value else self.options
        return self.current


def variable(
    name: str,
    value: str | Sequence[str],
    *,
    multi: bool = False,
    include_all: bool = False,
    all_value: str | None = None,
    options: Sequence[str] = (),
) -> Variable:
    current = (value,) if isinstance(value, str) else tuple(value)
    return Variable(name, current, multi, include_all, all_value, tuple(options))


@dataclass(frozen=True)
class PromQuery:
    """An expanded PromQL query with the parameters Grafana sends to Prometheus."""

    expr: str
    start: float
    end: float
    step: float
    instant: bool = False
    interval_ms: int = 0
    rate_interval_ms: int = 0

    def params(self) -> dict[str, str]:
        """Parameters for ``/api/v1/query_range`` (or ``/api/v1/query`` when instant)."""
        if self.instant:
            return {"query": self.expr, "time": _num(self.end)}
        return {"query": self.expr, "start": _num(self.start), "end": _num(self.end),
                "step": _num(self.step)}  # fmt: skip


@dataclass
class _Context:
    variables: Mapping[str, Variable]
    builtins: Mapping[str, str] = field(default_factory=dict)


def regex_escape(value: str) -> str:
    """Grafana's ``escapeRegex``: a backslash before each regex metacharacter and ``/``."""
    return _REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), value)


def influx_regular_escape(value: str) -> str:
    """``influxRegularEscape``: regex-escape unless JavaScript's parseFloat reads a number."""
    return value if _JS_FLOAT_PREFIX.match(value) else regex_escape(value)


def prometheus_regular_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def prometheus_regex_escape(value: str) -> str:
    escaped = value.replace("\\", "\\\\\\\\")
    return _PROM_SPECIALS.sub(lambda m: "\\\\" + m.group(0), escaped)


def _alternation(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else "(" + "|".join(values) + ")"


def format_influx(var: Variable) -> str:
    value = var.selected()
    if isinstance(value, str):  # a custom all value is never escaped
        return value
    if not var.multi and not var.include_all:
        return influx_regular_escape(value[0]) if value else ""
    return _alternation([regex_escape(v) for v in value]) if value else ""


def format_prometheus(var: Variable) -> str:
    value = var.selected()
    if isinstance(value, str):
        return value
    if not var.multi and not var.include_all:
        return prometheus_regular_escape(value[0]) if value else ""
    return _alternation([prometheus_regex_escape(v) for v in value]) if value else ""


def format_explicit(var: Variable, fmt: str) -> str:
    """The ``${var:format}`` formats: raw, regex, pipe, csv, singlequote, doublequote."""
    value = var.selected()
    values = [value] if isinstance(value, str) else list(value)
    if fmt == "raw" or fmt == "text":
        return ",".join(values)
    if fmt == "regex":
        return value if isinstance(value, str) else _alternation([regex_escape(v) for v in values])
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    raise ValueError(f"unsupported variable format {fmt!r}")


def _range_builtins(time_range: TimeRange) -> dict[str, str]:
    seconds = round(time_range.range_ms / 1000)
    return {"__range_ms": str(time_range.range_ms), "__range_s": str(seconds),
            "__range": f"{seconds}s", "__from": str(time_range.start_ms),
            "__to": str(time_range.end_ms)}  # fmt: skip


def replace_variables(text: str, context: _Context, default_format: str) -> str:
    """Stage 1: the template service. Unknown names (macros left to the backend) stay as written."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in context.builtins:
            return context.builtins[name]
        var = context.variables.get(name)
        if var is None:
            return match.group(0)
        if fmt:
            return format_explicit(var, fmt)
        return format_influx(var) if default_format == "influx" else format_prometheus(var)

    return VARIABLE.sub(substitute, text)


def _by_name(variables: Iterable[Variable]) -> dict[str, Variable]:
    return {v.name: v for v in variables}


def expand_influxql(
    query: str,
    time_range: TimeRange,
    variables: Iterable[Variable] = (),
    *,
    max_data_points: int = DEFAULT_MAX_DATA_POINTS,
    min_interval: str = "",
) -> str:
    """An InfluxQL panel query as Grafana sends it to InfluxDB.

    ``min_interval`` is the panel's "Min interval", else the data source's ``timeInterval``.
    """
    context = _Context(_by_name(variables), _range_builtins(time_range))
    text = replace_variables(query, context, "influx")
    interval = calculate_interval(time_range.range_ms, max_data_points, min_interval)
    time_filter = f"time >= {time_range.start_ms}ms and time <= {time_range.end_ms}ms"
    for macro, value in (("$timeFilter", time_filter), ("$interval", interval.text),
                         ("$__interval_ms", str(interval.ms)), ("$__interval", interval.text)):  # fmt: skip
        text = text.replace(macro, value)
    return text


def expand_promql(
    expr: str,
    time_range: TimeRange,
    variables: Iterable[Variable] = (),
    *,
    max_data_points: int = DEFAULT_MAX_DATA_POINTS,
    scrape_interval: str = DEFAULT_SCRAPE_INTERVAL,
    min_step: str = "",
    instant: bool = False,
) -> PromQuery:
    """A PromQL panel query as Grafana sends it: expression, range and step.

    ``scrape_interval`` is the data source's ``timeInterval`` ("Scrape interval", default 15s);
    ``min_step`` the query's "Min step" (``interval`` in the target JSON).
    """
    context = _Context(_by_name(variables), _range_builtins(time_range))
    text = replace_variables(expr, context, "prometheus")
    range_ms = time_range.range_ms
    query_interval = calculate_interval(range_ms, max_data_points, scrape_interval).ms
    step = prometheus_step(range_ms, max_data_points, query_interval, min_step)
    rate = rate_interval(query_interval, min_step or scrape_interval)
    seconds = round(range_ms / 1000)
    for macro, value in (("$__interval_ms", str(step)), ("$__interval", format_interval(step)),
                         ("$__range_ms", str(range_ms)), ("$__range_s", str(seconds)),
                         ("$__range", f"{seconds}s"), ("$__rate_interval_ms", str(rate)),
                         ("$__rate_interval", go_duration(rate))):  # fmt: skip
        text = text.replace(macro, value).replace("${" + macro[1:] + "}", value)
    start = math.floor(time_range.start_ms / step) * step / 1000
    end = math.floor(time_range.end_ms / step) * step / 1000
    return PromQuery(text, start, end, step / 1000, instant, query_interval, rate)


def _num(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


__all__ = ["ALL", "PromQuery", "TimeRange", "Variable", "expand_influxql", "expand_promql",
           "intervals", "regex_escape", "variable"]  # fmt: skip
