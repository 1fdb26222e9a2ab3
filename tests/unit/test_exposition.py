import math

import pytest

from exporter.exposition import go_float, render
from exporter.model import COUNTER, GAUGE, MetricFamily, family, single


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (26442.0, "26442"),
        (999999.0, "999999"),
        (1e6, "1e+06"),
        (8885917.0, "8.885917e+06"),
        (2.70553174016e11, "2.70553174016e+11"),
        (1.7953873374341552e9, "1.7953873374341552e+09"),
        (14.036781000000001, "14.036781000000001"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (5.5544e-05, "5.5544e-05"),
        (0.000417954, "0.000417954"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (-1234567.5, "-1.2345675e+06"),
        # negative integers switch to %e at the same exponent (6) as positive ones
        (-1.0, "-1"),
        (-999999.0, "-999999"),
        (-1e6, "-1e+06"),
        (-5e6, "-5e+06"),
        (-8885917.0, "-8.885917e+06"),
        (-123456789.0, "-1.23456789e+08"),
        (-1e15, "-1e+15"),
        (-1e21, "-1e+21"),
        (-3.25, "-3.25"),
        (123456.789, "123456.789"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_go_float_matches_go_formatfloat(value: float, expected: str) -> None:
    assert go_float(value) == expected


def test_render_sorts_families_labels_and_samples() -> None:
    cpu = family("node_cpu_seconds_total", "Seconds.", COUNTER, "mode", "cpu")
    cpu.add(2.0, "user", "1")
    cpu.add(1.0, "idle", "10")
    cpu.add(3.0, "idle", "2")
    text = render([single("node_load1", "1m load average.", GAUGE, 0.5), cpu]).decode()
    assert text == (
        "# HELP node_cpu_seconds_total Seconds.\n"
        "# TYPE node_cpu_seconds_total counter\n"
        'node_cpu_seconds_total{cpu="1",mode="user"} 2\n'
        'node_cpu_seconds_total{cpu="10",mode="idle"} 1\n'
        'node_cpu_seconds_total{cpu="2",mode="idle"} 3\n'
        "# HELP node_load1 1m load average.\n"
        "# TYPE node_load1 gauge\n"
        "node_load1 0.5\n"
    )


def test_render_escapes_help_and_label_values() -> None:
    fam = family("x_info", 'Help with \\ and\nnewline "quoted".', GAUGE, "path")
    fam.add(1.0, 'C:\\dir "a"\nb')
    text = render([fam]).decode()
    assert '# HELP x_info Help with \\\\ and\\nnewline "quoted".\n' in text
    assert 'x_info{path="C:\\\\dir \\"a\\"\\nb"} 1\n' in text


def test_repeated_label_sets_are_emitted_once_first_wins() -> None:
    fam = family("node_filesystem_size_bytes", "Size.", GAUGE, "mountpoint")
    fam.add(1.0, "/")
    fam.add(2.0, "/")
    unlabelled = MetricFamily("node_load1", "Load.", GAUGE, (), [((), 1.0), ((), 2.0)])
    text = render([fam, unlabelled]).decode()
    assert text.count("node_filesystem_size_bytes{") == 1
    assert 'node_filesystem_size_bytes{mountpoint="/"} 1\n' in text
    assert text.count("\nnode_load1 ") == 1


def test_empty_families_are_not_rendered() -> None:
    assert render([family("node_empty", "Nothing.", GAUGE, "a")]) == b""
