"""Target files are read as Prometheus 2.42 reads them (an audit's findings).

Each of these was reported as refused, and its tenant as carried by no target, while Prometheus
scrapes its targets with the tenant label: a JSON group's ``"Targets"``/``"Labels"`` (Go's
encoding/json matches field names without regard to case); a YAML file with a ``---`` after its
groups (yaml.v2 reads the first document only); a ``null`` target (Prometheus drops that target
alone, "no address"). ``CASES`` says what Prometheus scrapes from each file, as
tests/integration/test_alerting_targets_prometheus.py checks against the real one, together with
cases that already agreed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from perfanalysis.alerting.targets import (
    TargetFile,
    TargetFileError,
    read_target_file,
    scrape,
)
from tests.unit.test_alerting_receivers import changed, prometheus_dir, run

NESTED = "[" * 20_000 + "]" * 20_000  # deeper than both Go's limit (10,000) and Python's


@dataclass(frozen=True)
class Case:
    """A target file; what Prometheus scrapes from it, as targets per tenant ("": no tenant
    label), None if it refuses the file; and the groups (from 1) of targets it drops as having
    no address."""

    name: str
    text: str
    scraped: dict[str, int] | None
    no_address: tuple[int, ...] = ()


CASES = [
    # already read alike
    Case("plain.yml", "- targets: ['127.0.0.1:1', '127.0.0.1:2']\n  labels: {tenant: acme}\n",
         {"acme": 2}),
    Case(".hidden.yml", "- targets: ['127.0.0.1:3']\n  labels: {tenant: hooli}\n", {"hooli": 1}),
    Case("yes.yml", "- targets: ['127.0.0.1:4']\n  labels: {tenant: yes, n: 123}\n", {"yes": 1}),
    Case("unlabelled.yml",
         "- targets: ['127.0.0.1:5']\n- targets: ['127.0.0.1:6']\n  labels: {tenant: ~}\n",
         {"": 2}),
    Case("plain.json", '[{"targets": ["127.0.0.1:7"], "labels": {"tenant": "initech"}}]',
         {"initech": 1}),
    Case("labels_twice.json",
         '[{"targets": ["127.0.0.1:8"], "labels": {"tenant": "acme"}, "labels": {"env": "x"}}]',
         {"": 1}),
    Case("lables.yml", "- targets: ['127.0.0.1:9']\n  lables: {tenant: acme}\n", None),
    Case("capitals.yml", "- Targets: ['127.0.0.1:10']\n  labels: {tenant: acme}\n", None),
    Case("number.json", '[{"targets": ["127.0.0.1:11"], "labels": {"tenant": 1}}]', None),
    Case("null_group.yml", "- null\n- targets: ['127.0.0.1:12']\n", None),
    Case("comma.json", '[{"targets": ["127.0.0.1:13"],}]', None),
    # JSON keys as encoding/json matches them to Prometheus' fields
    Case("capitals.json", '[{"Targets": ["127.0.0.1:14"], "Labels": {"tenant": "globex"}}]',
         {"globex": 1}),
    Case("mixed_case.json", '[{"tArGeTs": ["127.0.0.1:15"], "LABELS": {"tenant": "umbrella"}}]',
         {"umbrella": 1}),
    Case("long_s.json",  # U+017F, the long s: Go folds it to s
         r'[{"target\u017f": ["127.0.0.1:16"], "label\u017f": {"tenant": "hooli"}}]',
         {"hooli": 1}),
    Case("targets_twice.json",
         '[{"targets": ["127.0.0.1:17"], "Targets": ["127.0.0.1:18"], "labels": {"tenant": "a"}}]',
         {"a": 1}),
    Case("ligature.json",  # "targeﬆ": Go's folding is the simple one, "ﬆ" is not "st"
         r'[{"targe\ufb06": ["127.0.0.1:19"]}]', None),
    Case("label_newline.json", r'[{"targets": ["127.0.0.1:20"], "labels": {"tenant\n": "x"}}]',
         None),
    Case("nested.json", f'[{{"targets": ["127.0.0.1:21"], "labels": {{"x": {NESTED}}}}}]', None),
    # YAML: the first document only
    Case("two_documents.yml",
         "- targets: ['127.0.0.1:22']\n  labels: {tenant: umbrella}\n---\n"
         "- targets: ['127.0.0.1:23']\n", {"umbrella": 1}),
    Case("trailing_start.yml", "- targets: ['127.0.0.1:24']\n  labels: {tenant: acme}\n---\n",
         {"acme": 1}),
    Case("broken_second.yml",
         "- targets: ['127.0.0.1:25']\n  labels: {tenant: b}\n---\n- targets: [unclosed\n",
         {"b": 1}),
    Case("after_end.yml", "- targets: ['127.0.0.1:26']\n  labels: {tenant: e}\n...\n]]]: [\n",
         {"e": 1}),
    Case("empty_first.yml", "---\n---\n- targets: ['127.0.0.1:27']\n  labels: {tenant: d}\n", {}),
    # a target with no address is dropped, not its group nor its file
    Case("null_target.json",
         '[{"targets": [null, "127.0.0.1:28"], "labels": {"tenant": "initech"}}]',
         {"initech": 1}, (1,)),
    Case("null_target.yml", "- targets: [~, '127.0.0.1:29']\n  labels: {tenant: f}\n",
         {"f": 1}, (1,)),
    Case("empty_target.yml",
         "- targets: ['127.0.0.1:30']\n- targets: ['', \"\"]\n  labels: {tenant: g}\n",
         {"": 1}, (2, 2)),
]  # fmt: skip


def text_of(name: str) -> str:
    return next(case.text for case in CASES if case.name == name)


def scraped(found: TargetFile) -> dict[str, int]:
    """What Prometheus scrapes from a file as targets.py read it: targets per tenant label."""
    return dict(Counter(found.tenants) + Counter({"": found.unlabelled}))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_file_is_read_as_prometheus_reads_it(tmp_path: Path, case: Case) -> None:
    path = tmp_path / case.name
    path.write_text(case.text)
    if case.scraped is None:
        with pytest.raises(TargetFileError):
            read_target_file(path)
        return
    found = read_target_file(path)
    assert scraped(found) == case.scraped
    assert found.targets == sum(case.scraped.values())
    assert tuple(found.no_address) == case.no_address


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [("ligature.json", text_of("ligature.json"), "group 1: unknown key 'targeﬆ' (a group has targets and "
      "labels only)"),
     ("label_newline.json", text_of("label_newline.json"), "group 1: 'tenant\\n' is not a valid label name"),
     ("nested.json", text_of("nested.json"), "not JSON: nested too deeply")],
)  # fmt: skip
def test_a_json_file_prometheus_refuses_is_warned_about_with_its_problem(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    directory = prometheus_dir(tmp_path)
    config = directory / "prometheus.yml"
    config.write_text(config.read_text().replace('["targets/*.yml"]', '["targets/*.json"]'))
    path = directory / "targets" / name
    path.write_text(text)
    found = scrape(directory)
    assert found is not None
    [warning] = found.problems
    assert warning.startswith(f"{path}: warning: Prometheus refuses this target file: {problem}; ")


def test_the_tenant_of_capitalised_json_keys_is_scraped_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = prometheus_dir(tmp_path)
    config = directory / "prometheus.yml"
    config.write_text(config.read_text().replace('["targets/*.yml"]', '["targets/*.json"]'))
    (directory / "targets" / "globex.json").write_text(text_of("capitals.json"))
    data = changed(tenants={"globex": {}, "demo": {}})
    status, err = run(tmp_path, yaml.safe_dump(data), capsys)
    assert (status, [line for line in err.splitlines() if "warning" in line]) == (0, [])


def test_a_second_yaml_document_is_not_read_and_its_tenant_not_counted(tmp_path: Path) -> None:
    directory = prometheus_dir(tmp_path)
    (directory / "targets" / "acme.yml").write_text(
        "- targets: [a:9100]\n  labels: {tenant: acme}\n---\n"
        "- targets: [b:9100]\n  labels: {tenant: initech}\n"
    )
    found = scrape(directory)
    assert found is not None
    assert (found.tenants, found.problems) == ({"demo", "beta", "acme"}, [])


def test_targets_with_no_address_are_warned_about_and_the_rest_of_the_file_counted(
    tmp_path: Path,
) -> None:
    directory = prometheus_dir(tmp_path)
    path = directory / "targets" / "acme.yml"
    path.write_text(
        "- targets: [~, a:9100]\n  labels: {tenant: acme}\n"
        "- targets: ['']\n  labels: {tenant: initech}\n- targets: [b:9100, '']\n"
    )
    found = scrape(directory)
    assert found is not None
    assert found.tenants == {"demo", "beta", "acme"}  # initech's only target is dropped
    assert found.problems == [
        f"{path}: warning: 3 targets with no address (null or empty) in groups 1, 2, 3: "
        'Prometheus drops them (its log says "no address"), not the rest of the group'
    ]
    path.write_text("- targets: [~, a:9100]\n  labels: {tenant: acme}\n")
    found = scrape(directory)
    assert found is not None
    assert found.problems == [
        f"{path}: warning: 1 target with no address (null or empty) in group 1: "
        'Prometheus drops it (its log says "no address"), not the rest of the group'
    ]
