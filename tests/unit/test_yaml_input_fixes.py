"""Bad YAML refused by the shared loader (perfanalysis.strictyaml) at every config file that uses
it -- thresholds, report config, the exporter's web config, the price file -- with the file, the
line and column or the key path, exit 2 and no traceback:

* an alias bomb ("billion laughs") hung ``alerting generate``, ``grafana`` and ``report``: their
  messages repr()'d the whole expanded value;
* an unquoted date that is no date (``2025-02-30``) and deep nesting (``[`` x 5000) ended in a
  ValueError or RecursionError traceback;
* a scalar its tag cannot be (``!!float two``, ``!!bool maybe``, a 5000-digit integer) too.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporter import webconfig
from exporter.webconfig import WebConfigError
from perfanalysis import strictyaml
from perfanalysis.alerting.generate import THRESHOLDS
from perfanalysis.alerting.thresholds import ThresholdsError, parse
from perfanalysis.alerting.thresholds import load as load_thresholds
from perfanalysis.report.config import load_config, parse_config
from perfanalysis.report.validate import ReportConfigError

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 20  # seconds: generous; the refusal takes milliseconds, the bug ran for minutes
SHORT = 1000  # characters a message about one file may take
LEVELS = "abcdefghi"


def bomb(top: str, levels: int = 9) -> str:
    """Nine levels of nine aliases each: 9**9 (387 million) strings once expanded; ``top`` uses
    a level (``defaults: *i``). Five levels (a to e) stay within MAX_ALIAS_NODES."""
    lines = ["x:", '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for before, level in itertools.pairwise(LEVELS[:levels]):
        lines.append(f"  {level}: &{level} [{', '.join([f'*{before}'] * 9)}]")
    return "\n".join([*lines, top, ""])


BOMB_MARK = "line 8, column 10: "  # the alias that takes the document past MAX_ALIAS_NODES
DEEP = "[" * 5000 + "]" * 5000 + "\n"
REPORT = "tenant: acme\nhosts: [web-01]\ntime: {last: 24h}\n"


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The command, which must return (not time out) within DEADLINE."""
    try:
        return subprocess.run(
            [sys.executable, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=DEADLINE, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                 "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args} did not return within {DEADLINE} s")


def refused_briefly(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result.stderr[:SHORT]
    assert "Traceback" not in result.stderr
    assert len(result.stderr) < SHORT, result.stderr[:SHORT]
    for text in expected:
        assert text in result.stderr


# ---- the shared loader --------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_at_the_alias_that_takes_it_too_far() -> None:
    with pytest.raises(strictyaml.AliasError) as caught:
        strictyaml.load(bomb("defaults: *i"))
    assert caught.value.problem_mark is not None
    assert (caught.value.problem_mark.line + 1, caught.value.problem_mark.column + 1) == (8, 10)
    assert "would expand the document by more than 1,000,000 nodes" in str(caught.value.problem)
    assert isinstance(caught.value, yaml.YAMLError)  # callers' existing handlers catch it


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    with pytest.raises(strictyaml.AliasError, match="the alias \\*a is inside the value"):
        strictyaml.load("a: &a {b: [*a]}\n")


def test_anchors_aliases_and_merges_within_bounds_read_as_before() -> None:
    text = "base: &base {x: 1, y: [1, 2]}\nm: {<<: *base, y: 3}\nl: [*base, *base]\n"
    text += bomb("t: *e", levels=5)  # 9**5 strings, 140,000 nodes added
    assert strictyaml.load(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        (DEEP, (1, 101), "nested too deeply: more than 100 levels of lists and mappings"),
        ("a:\n" + "".join(f"{'  ' * i}- \n" for i in range(1, 200)), (101, 201), "nested too deeply"),
        ("a: !!float two\n", (1, 4), "'two' is not a valid float"),
        ("a: !!bool maybe\n", (1, 4), "'maybe' is not a valid bool"),
        ("a: " + "1" * 5000 + "\n", (1, 4), "is not a valid int (Exceeds the limit (4300 digits)"),
    ],
)  # fmt: skip
def test_input_python_cannot_hold_is_refused_where_it_is(
    text: str, where: tuple[int, int], problem: str
) -> None:
    with pytest.raises(strictyaml.StrictYAMLError) as caught:
        strictyaml.load(text)
    mark = caught.value.problem_mark
    assert mark is not None
    assert (mark.line + 1, mark.column + 1) == where
    assert problem in str(caught.value.problem)
    assert len(str(caught.value.problem)) < SHORT


def test_python_s_recursion_limit_if_reached_first_is_refused_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MAX_DEPTH comes first, unless the caller's stack is already deep: then RecursionError."""
    monkeypatch.setattr(strictyaml, "MAX_DEPTH", 1_000_000)
    with pytest.raises(strictyaml.NestingError) as caught:
        strictyaml.load("[" * 1000)  # about 3 frames a level: past the limit of 1000
    assert caught.value.problem == "nested too deeply"
    assert caught.value.problem_mark is not None
    assert caught.value.problem_mark.line == 0


def test_one_level_short_of_too_deep_is_read() -> None:
    assert strictyaml.load("[" * 100 + "]" * 100) == yaml.safe_load("[" * 100 + "]" * 100)


def test_a_date_that_is_no_date_stays_text_and_real_ones_are_read_as_before() -> None:
    text = "a: 2025-02-30\nb: 2025-01-31T25:00:00Z\nc: !!timestamp hello\nd: 2025-01-31\n"
    loaded = strictyaml.load(text)
    assert loaded == {"a": "2025-02-30", "b": "2025-01-31T25:00:00Z", "c": "hello",
                      "d": yaml.safe_load("d: 2025-01-31")["d"]}  # fmt: skip
    good = "t: 2025-01-31T10:00:00Z\nu: 2025-01-31 10:00:00.5+02:00\n"
    assert strictyaml.load(good) == yaml.safe_load(good)


def test_show_cuts_a_value_short() -> None:
    big = strictyaml.load(bomb("t: *e", levels=5))["t"]
    assert len(strictyaml.show(big)) < 400
    assert strictyaml.show("short") == "'short'"
    assert len(strictyaml.show("x" * 10_000)) < 100


# ---- thresholds ---------------------------------------------------------------------------------


def test_an_alias_bomb_in_a_thresholds_file_is_refused_by_alerting_generate(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb("defaults: *i"))
    result = run(["-m", "perfanalysis.cli", "alerting", "generate", "--check", "--thresholds",
                  str(path)], tmp_path)  # fmt: skip
    refused_briefly(result, f"{path}: {BOMB_MARK}", "would expand the document")


def test_a_wrong_typed_value_standing_for_millions_is_shown_short() -> None:
    """Within MAX_ALIAS_NODES a list may still stand for 59,049 strings: the message says what
    it is without printing them all."""
    top = "defaults: *e\ntenants: {acme: {cpu_busy_percent: {for: *e}}}"
    data = strictyaml.load(bomb(top, levels=5))
    with pytest.raises(ThresholdsError) as caught:
        parse(data, "thresholds.yaml")
    shown = "thresholds.yaml: defaults: must be a mapping, got list [[["
    assert any(error.startswith(shown) for error in caught.value.errors), caught.value.errors
    assert all(len(error) < SHORT for error in caught.value.errors)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when: 2025-02-30\n", "{path}: (top).when: unknown key"),
        ("defaults: {cpu_busy_percent: {for: 2025-02-30}}\n",
         "{path}: defaults.cpu_busy_percent.for: "),
        ("defaults: " + DEEP, "{path}: line 1, column 110: nested too deeply"),
        ("defaults: {cpu_busy_percent: {warning: !!float x}}\n",
         "{path}: line 1, column 40: 'x' is not a valid float"),
    ],
)  # fmt: skip
def test_a_thresholds_file_python_could_not_load_is_refused_by_name(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text(text)
    with pytest.raises(ThresholdsError) as caught:
        load_thresholds(path)
    assert any(e.startswith(message.format(path=path)) for e in caught.value.errors), caught.value
    assert all(len(error) < SHORT for error in caught.value.errors)


def test_the_project_thresholds_file_still_loads() -> None:
    assert load_thresholds(THRESHOLDS).defaults


# ---- report configuration ------------------------------------------------------------------------


def test_an_alias_bomb_in_a_report_config_is_refused_by_report(tmp_path: Path) -> None:
    path = tmp_path / "report.yaml"
    path.write_text(bomb("tenant: *i\nhosts: [a]\ntime: {last: 1d}"))
    result = run(["-m", "perfanalysis.cli", "report", "--config", str(path)], tmp_path)
    refused_briefly(result, f"{path}: {BOMB_MARK}")


def test_a_wrong_typed_tenant_is_named_by_its_type() -> None:
    data = strictyaml.load(bomb("tenant: *e\nhosts: [a]\ntime: {last: 1d}", levels=5))
    with pytest.raises(ReportConfigError) as caught:
        parse_config(data, "report.yaml", {})
    assert caught.value.errors == [
        "report.yaml: x: unknown key; allowed: title, tenant, hosts, time, devices, percentiles, "
        "thresholds, influxdb",
        "report.yaml: tenant: expected a tenant slug: 1-40 lowercase letters, digits and inner "
        "hyphens, e.g. acme-prod; got a list",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (REPORT.replace("{last: 24h}", "{start: 2025-02-30T00:00:00Z, end: 2025-03-02T00:00:00Z}"),
         "{path}: line 3: time.start: '2025-02-30T00:00:00Z' is not an RFC 3339 time"),
        (REPORT.replace("{last: 24h}", DEEP), "{path}: line 3, column 106: not valid YAML: "
                                              "nested too deeply"),
        (REPORT.replace("[web-01]", "[!!int x]"),
         "{path}: line 2, column 9: not valid YAML: 'x' is not a valid int"),
    ],
)  # fmt: skip
def test_a_report_config_python_could_not_load_is_refused_by_name(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "report.yaml"
    path.write_text(text)
    with pytest.raises(ReportConfigError) as caught:
        load_config(path, {})
    assert caught.value.errors[0].startswith(message.format(path=path)), caught.value.errors
    assert all(len(error) < SHORT for error in caught.value.errors)


def test_the_report_command_refuses_a_date_that_is_no_date_without_a_traceback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "report.yaml"
    path.write_text(REPORT.replace("{last: 24h}", "{start: 2025-02-30T00:00:00Z, end: x}"))
    result = run(["-m", "perfanalysis.cli", "report", "--config", str(path)], tmp_path)
    refused_briefly(result, f"{path}: line 3: time.start: ")


# ---- the exporter's web config -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("basic_auth_users:\n  alice: 2025-02-30\n", "basic_auth_users.alice: not a bcrypt hash"),
        ("tls_server_config: " + DEEP, "{path}: line 1, column 119: nested too deeply"),
        (bomb("tls_server_config: *i"), "{path}: " + BOMB_MARK),
        ("http_server_config: {http2: !!bool maybe}\n",
         "{path}: line 1, column 29: 'maybe' is not a valid bool"),
    ],
)  # fmt: skip
def test_a_web_config_python_could_not_load_is_refused_by_name(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(WebConfigError) as caught:
        webconfig.load(str(path))
    assert caught.value.problems[0].startswith(message.format(path=path)), caught.value.problems
    assert all(len(problem) < SHORT for problem in caught.value.problems)


def test_the_exporter_refuses_a_deeply_nested_web_config_without_a_traceback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "web.yml"
    path.write_text("tls_server_config: " + DEEP)
    result = run(["-m", "exporter.main", "--web.listen-address=127.0.0.1:0",
                  f"--web.config.file={path}"], tmp_path)  # fmt: skip
    refused_briefly(result, "line 1, column 119: nested too deeply")


# ---- the price file keeps its own messages through the shared loader ------------------------------


def test_the_price_file_gets_the_same_refusals(tmp_path: Path) -> None:
    from tenants.errors import Invalid
    from tenants.loadtests.prices import read_seed

    path = tmp_path / "prices.yaml"
    path.write_text(bomb("prices: *i"))
    with pytest.raises(Invalid) as caught:
        read_seed(path)
    assert caught.value.message.startswith(f"cannot read the price file {path}: {BOMB_MARK}")
