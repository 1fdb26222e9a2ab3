"""``alerting generate`` reads the file_sd target files for the tenants their targets really carry.

An auditor's finding: a tenant was counted as scraped when a file of its name existed, whatever
the file held. Prometheus takes a target's tenant from the file's labels (the configuration
relabels nothing), so a ``targets/globex.yml`` labelled ``tenant: globx`` or an ``acme.yml``
holding ``[]`` left the tenant unscraped without a word; and a file Prometheus refuses was
counted too. Each is warned about now; where promtool can run, it confirms which files
Prometheus refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from perfanalysis.alerting.targets import scrape, scraped_tenants
from perfanalysis.testing.servers import promtool
from tests.support.tools import tool
from tests.unit.test_alerting_receivers import changed, prometheus_dir, run


def thresholds_for(*slugs: str) -> str:
    return yaml.safe_dump(changed(tenants={slug: {} for slug in slugs}))


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": warning: " in line]


def test_a_file_named_after_the_tenant_whose_targets_carry_another_tenant_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = prometheus_dir(tmp_path)
    (directory / "targets" / "globex.yml").write_text(
        "- targets: [a:9100, b:9100]\n  labels: {tenant: globx}\n- targets: [c:9100]\n"
    )
    status, err = run(tmp_path, thresholds_for("globex", "demo", "beta"), capsys)
    assert status == 0
    assert warnings(err) == [
        'FILE: tenants.globex: warning: no Prometheus target carries tenant="globex" '
        f'({directory}/targets/globex.yml lists 3 targets: 2 labelled tenant="globx", 1 '
        "without a tenant label; Prometheus takes a target's tenant from its labels, not the "
        f"file's name; no target in {directory}/prometheus.yml is labelled so either), so these "
        "thresholds judge no host; if the slug is misspelt, the tenant's hosts get the defaults. "
        f"List its hosts in {directory}/targets/globex.yml with labels: {{tenant: globex}}, or "
        "ignore this if another Prometheus scrapes them"
    ]


@pytest.mark.parametrize("text", ["[]\n", "", "# no hosts yet\n", "- targets: []\n  labels: {tenant: acme}\n"])  # fmt: skip
def test_a_file_that_lists_no_target_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    directory = prometheus_dir(tmp_path)
    (directory / "targets" / "acme.yml").write_text(text)
    status, err = run(tmp_path, thresholds_for("acme", "demo", "beta"), capsys)
    assert status == 0
    [warning] = warnings(err)
    assert warning.startswith(
        'FILE: tenants.acme: warning: no Prometheus target carries tenant="acme" '
        f"({directory}/targets/acme.yml lists no target; no target in "
    )


def test_tenants_carried_by_labels_are_not_warned_about_whatever_the_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = prometheus_dir(tmp_path)  # beta is a label in misc.yml
    (directory / "targets" / "acme.yml").write_text(
        yaml.safe_dump([{"targets": ["a:9100"], "labels": {"tenant": "acme"}}])
    )
    status, err = run(tmp_path, thresholds_for("acme", "demo", "beta"), capsys)
    assert (status, warnings(err)) == (0, [])


def test_only_the_files_prometheus_yml_names_count(tmp_path: Path) -> None:
    """file_sd_configs names targets/*.yml: a .yaml or .json file there is not read."""
    directory = prometheus_dir(tmp_path)
    (directory / "targets" / "gamma.yaml").write_text(
        yaml.safe_dump([{"targets": ["g:9100"], "labels": {"tenant": "gamma"}}])
    )
    (directory / "targets" / "delta.json").write_text(
        json.dumps([{"targets": ["d:9100"], "labels": {"tenant": "delta"}}])
    )
    assert scraped_tenants(directory) == {"demo", "beta"}
    config = directory / "prometheus.yml"
    config.write_text(config.read_text().replace('["targets/*.yml"]', '["targets/*.json"]'))
    assert scraped_tenants(directory) == {"demo", "delta"}


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [("bad.yml", "- targets: [a:9100]\n  lables: {tenant: acme}\n",
      "group 1: unknown key 'lables' (a group has targets and labels only)"),
     ("bad.yml", "- null\n", "group 1 must be a mapping of targets and labels, not null"),
     ("bad.yml", "targets: [a:9100]\nlabels: {tenant: acme}\n",
      "it must be a list of target groups ('- targets: [...]' with 'labels: {...}'), not a "
      "mapping"),
     ("bad.yml", "- targets: [a:9100]\n  labels: {tenant: [acme]}\n",
      "group 1: label tenant: the value must be a string, not a list"),
     ("bad.yml", "- targets: [a:9100]\n  labels: {tenant-name: acme}\n",
      "group 1: 'tenant-name' is not a valid label name"),
     ("bad.yml", "- targets: [a:9100\n", "not YAML: line 2, column 1: "),
     ("bad.yml", "- targets: [a:9100]\n  targets: [b:9100]\n", "not YAML: line 2, column 3: "),
     ("bad.yml", b"- targets: [caf\xe9:9100]\n", "it is not UTF-8 text"),
     ("bad.json", '[{"targets": ["a:9100"], "labels": {"tenant": 1}}]',
      "group 1: label tenant: the value must be a string, not 1"),
     ("bad.json", '[{"targets": ["a:9100"],}]', "not JSON: line 1, column 25: ")],
)  # fmt: skip
def test_a_target_file_prometheus_refuses_is_warned_about_with_its_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str | bytes, problem: str
) -> None:
    directory = prometheus_dir(tmp_path)
    config = directory / "prometheus.yml"
    config.write_text(
        config.read_text().replace('["targets/*.yml"]', '["targets/*.yml", "targets/*.json"]')
    )
    path = directory / "targets" / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    status, err = run(tmp_path, thresholds_for("demo", "beta"), capsys)
    assert status == 0
    [warning] = warnings(err)
    assert warning.startswith(f"{path}: warning: Prometheus refuses this target file: {problem}")
    assert warning.endswith(
        "; it scrapes none of its targets (or keeps those it read before the file broke)"
    )
    checked = tool(promtool, "check", "config", config)
    assert checked.returncode == 1, checked.stdout + checked.stderr  # Prometheus agrees


def test_the_tenant_of_a_refused_file_is_not_counted_and_its_warning_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = prometheus_dir(tmp_path)
    path = directory / "targets" / "acme.yml"
    path.write_text("- targets: [a:9100]\n  labels: {tenant: acme}\n  lables: {x: y}\n")
    status, err = run(tmp_path, thresholds_for("acme", "demo", "beta"), capsys)
    assert status == 0
    refused, unscraped = warnings(err)
    assert refused.startswith(f"{path}: warning: Prometheus refuses this target file: ")
    assert unscraped.startswith(
        f'FILE: tenants.acme: warning: no Prometheus target carries tenant="acme" ({path} is '
        "refused, see above, and no target in "
    )


@pytest.mark.parametrize(
    "text",
    ["- targets: [a:9100]\n  labels: {tenant: yes, n: 123}\n", "", "[]\n",
     "- targets:\n  labels:\n", '- targets: ["a:9100"]\n  labels: {tenant: ~}\n'],
)  # fmt: skip
def test_files_prometheus_accepts_are_not_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """yaml.v2 reads a plain scalar label value as its text: ``tenant: yes`` is "yes"."""
    directory = prometheus_dir(tmp_path)
    (directory / "targets" / "other.yml").write_text(text)
    scraped = scrape(directory)
    assert scraped is not None
    assert scraped.problems == []
    if "yes" in text:
        assert "yes" in (scraped.tenants or set())
    assert tool(promtool, "check", "config", directory / "prometheus.yml").returncode == 0


def test_a_job_that_relabels_tenant_leaves_tenants_unchecked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the label becomes is Prometheus' relabelling's to say, not the files'."""
    directory = prometheus_dir(tmp_path)
    config = directory / "prometheus.yml"
    document = yaml.safe_load(config.read_text())
    document["scrape_configs"][0]["relabel_configs"] = [
        {"source_labels": ["__meta_filepath"], "regex": ".*/([^/]+)[.]yml",
         "target_label": "tenant"}
    ]  # fmt: skip
    config.write_text(yaml.safe_dump(document))
    assert scraped_tenants(directory) is None
    status, err = run(tmp_path, thresholds_for("acmee"), capsys)
    assert (status, warnings(err)) == (0, [])
