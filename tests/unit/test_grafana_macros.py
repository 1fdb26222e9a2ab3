"""Grafana's macro and variable expansion (perfanalysis.grafana.macros), against Grafana's docs and
sources: rangeutil.ts (roundInterval, calculateInterval, secondsToHms), gtime.go (RoundInterval,
FormatInterval), promlib (step, $__rate_interval), the InfluxDB backend ($timeFilter) and the
"Advanced variable format options" page."""

# ruff: noqa: S608 -- InfluxQL for dashboards, built from constants; no input reaches it

from __future__ import annotations

import pytest

from perfanalysis.grafana import intervals
from perfanalysis.grafana.macros import (
    ALL,
    TimeRange,
    expand_influxql,
    expand_promql,
    regex_escape,
    variable,
)

NOW = 1_700_000_000_000
HOUR = TimeRange.last("1h", NOW)


@pytest.mark.parametrize(
    ("ms", "rounded"),
    [(9, 1), (10, 10), (1800, 2000), (3499, 2000), (3500, 5000), (12499, 10000), (14999, 15000),
     (60000, 60000), (89999, 60000), (90000, 120000), (3_600_000, 3_600_000),
     (86_400_000, 86_400_000), (7 * 86_400_000, 7 * 86_400_000)],
)  # fmt: skip
def test_round_interval_follows_rangeutil(ms: int, rounded: int) -> None:
    assert intervals.round_interval(ms) == rounded


def test_backend_rounding_uses_less_or_equal() -> None:
    assert intervals.round_interval(10) == 10
    assert intervals.round_interval_backend(10) == 1
    assert intervals.round_interval_backend(90_000) == 60_000
    assert intervals.round_interval_backend(2 * 86_400_000) == 86_400_000


@pytest.mark.parametrize(
    ("ms", "text"),
    [(500, "500ms"), (1000, "1s"), (15000, "15s"), (90000, "1m"), (3_600_000, "1h"),
     (86_400_000, "1d"), (31_536_000_000, "1y"), (0, "1ms")],
)  # fmt: skip
def test_format_interval_keeps_the_largest_whole_unit(ms: int, text: str) -> None:
    assert intervals.format_interval(ms) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [(60000, "1m0s"), (75000, "1m15s"), (3_600_000, "1h0m0s"), (500, "500ms"), (15000, "15s")],
)
def test_go_duration_string(ms: int, text: str) -> None:
    assert intervals.go_duration(ms) == text


@pytest.mark.parametrize(
    ("text", "ms"), [("15s", 15000), ("1m30s", 90000), ("2h", 7_200_000), ("1d", 86_400_000),
                     ("30", 30000), ("100ms", 100), (">10s", 10000)],
)  # fmt: skip
def test_parse_duration(text: str, ms: int) -> None:
    assert intervals.parse_duration(text) == ms


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a Grafana interval"):
        intervals.parse_duration("5 minutes")


def test_interval_example_from_the_docs() -> None:
    # Grafana docs, $__interval: a one hour range on a 2000 pixel wide graph gives 2s
    assert intervals.calculate_interval(3_600_000, 2000) == intervals.Interval(2000, "2s")


def test_interval_never_below_the_min_interval() -> None:
    assert intervals.calculate_interval(3_600_000, 2000, "20s") == intervals.Interval(20000, "20s")


def test_time_filter_is_epoch_milliseconds_inclusive() -> None:
    query = expand_influxql("SELECT 1 FROM m WHERE $timeFilter", HOUR)
    assert query == f"SELECT 1 FROM m WHERE time >= {NOW - 3_600_000}ms and time <= {NOW}ms"


def test_influxql_interval_macros() -> None:
    text = "GROUP BY time($__interval) $__interval_ms time($interval)"
    assert expand_influxql(text, HOUR, max_data_points=2000) == "GROUP BY time(2s) 2000 time(2s)"
    assert expand_influxql(text, HOUR, max_data_points=2000, min_interval="20s") == (
        "GROUP BY time(20s) 20000 time(20s)"
    )


def test_influxql_multi_value_becomes_an_escaped_alternation() -> None:
    hosts = variable("host", ["web.1", "db/2"], multi=True)
    text = expand_influxql('"host" =~ /^$host$/', HOUR, [hosts])
    assert text == '"host" =~ /^(web\\.1|db\\/2)$/'


def test_influxql_single_value_of_a_multi_variable_has_no_parentheses() -> None:
    assert (
        expand_influxql("/^$host$/", HOUR, [variable("host", ["a.b"], multi=True)]) == "/^a\\.b$/"
    )


def test_influxql_single_value_variable_is_escaped_unless_numeric() -> None:
    assert expand_influxql("/^$host$/", HOUR, [variable("host", "a.b")]) == "/^a\\.b$/"
    # influxRegularEscape: JavaScript's parseFloat reads "10.0.0.1" as a number, so no escaping
    assert expand_influxql("/^$host$/", HOUR, [variable("host", "10.0.0.1")]) == "/^10.0.0.1$/"


def test_all_uses_the_custom_all_value_unescaped() -> None:
    hosts = variable("host", ALL, multi=True, include_all=True, all_value=".*", options=["a", "b"])
    assert expand_influxql("/^$host$/", HOUR, [hosts]) == "/^.*$/"


def test_all_without_custom_value_expands_every_option() -> None:
    devices = variable("device", ALL, multi=True, include_all=True, options=["sda", "nvme0n1"])
    assert expand_influxql("/^$device$/", HOUR, [devices]) == "/^(sda|nvme0n1)$/"


@pytest.mark.parametrize(
    ("syntax", "expected"),
    # the docs' example: servers = ["test1.", "test2"]
    [("${servers:regex}", "(test1\\.|test2)"), ("${servers:pipe}", "test1.|test2"),
     ("${servers:csv}", "test1.,test2"), ("${servers:raw}", "test1.,test2"),
     ("${servers:singlequote}", "'test1.','test2'"), ("${servers:doublequote}", '"test1.","test2"'),
     ("[[servers]]", "(test1\\.|test2)"), ("${servers}", "(test1\\.|test2)")],
)  # fmt: skip
def test_variable_syntaxes_and_formats(syntax: str, expected: str) -> None:
    servers = variable("servers", ["test1.", "test2"], multi=True)
    assert expand_influxql(syntax, HOUR, [servers]) == expected


def test_unknown_variables_stay_as_written() -> None:
    assert expand_influxql("$nothing and ${other}", HOUR) == "$nothing and ${other}"


def test_range_builtins() -> None:
    text = "$__range $__range_s $__range_ms $__from $__to"
    assert expand_influxql(text, HOUR) == f"3600s 3600 3600000 {NOW - 3_600_000} {NOW}"


def test_rate_interval_docs_formula() -> None:
    # $__rate_interval = max($__interval + scrape interval, 4 * scrape interval)
    assert intervals.rate_interval(15000, "15s") == 60000
    assert intervals.rate_interval(60000, "15s") == 75000
    assert intervals.rate_interval(15000, "1m") == 240000


def test_promql_expansion_and_step() -> None:
    instance = variable("instance", ["web.1:9100", "db:9100"], multi=True, include_all=True)
    query = expand_promql(
        'rate(x{instance=~"$instance"}[$__rate_interval]) $__interval $__range', HOUR, [instance],
        max_data_points=2000,
    )  # fmt: skip
    # the frontend interval is 2s, raised to the 15s scrape interval; rate = max(15+15, 60) s
    assert query.expr == 'rate(x{instance=~"(web\\\\.1:9100|db:9100)"}[1m0s]) 15s 3600s'
    assert query.step == 15
    assert query.start % 15 == 0
    assert query.end % 15 == 0
    assert query.end <= NOW / 1000
    assert query.params()["step"] == "15"


def test_promql_long_range_steps_coarser() -> None:
    week = TimeRange.last("7d", NOW)
    query = expand_promql("rate(x[$__rate_interval])", week, max_data_points=1000)
    # 604800 s / 1000 points = 604.8 s -> 10m by the frontend; step 10m; rate = 10m + 15s
    assert query.step == 600
    assert query.expr == "rate(x[10m15s])"


def test_promql_single_value_escapes_quotes_only() -> None:
    job = variable("job", "it's")
    assert expand_promql('up{job="$job"}', HOUR, [job]).expr == 'up{job="it\\\\\'s"}'


def test_instant_query_params() -> None:
    query = expand_promql("up", HOUR, instant=True)
    assert set(query.params()) == {"query", "time"}


def test_regex_escape_matches_grafana() -> None:
    assert regex_escape("a.b*c/d(e)") == "a\\.b\\*c\\/d\\(e\\)"
