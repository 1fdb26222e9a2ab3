"""docs/configuration.md is what `python -m deploy.configref` generates from the parsers."""

from __future__ import annotations

import subprocess
import sys

from deploy.configref import (
    COMPONENTS,
    OTHER_VARIABLES,
    OUTPUT,
    ROOT,
    component_of,
    render,
    variables_read_by,
)


def test_the_committed_reference_is_the_generated_one() -> None:
    assert OUTPUT.read_text() == render(), (
        "docs/configuration.md is stale: run python -m deploy.configref"
    )


def test_every_setting_of_every_component_is_in_the_reference() -> None:
    text = OUTPUT.read_text()
    for component in COMPONENTS:
        spec = component.build()
        for setting in spec.settings:
            assert f"`{setting.env_name(spec.env_prefix)}`" in text
            assert f"{setting.flag}`" in text


def test_every_component_the_readme_documents_is_in_the_reference() -> None:
    """README.md sends readers to docs/configuration.md for every setting."""
    from perfanalysis.configdoc import SPECS

    assert set(SPECS) <= {component.name for component in COMPONENTS}
    assert "`PERFANALYSIS_REPORT_INFLUXDB_URL`" in OUTPUT.read_text()


def test_variables_read_outside_the_parsers_are_really_read_where_it_says() -> None:
    for variable in OTHER_VARIABLES:
        source = (ROOT / variable.source).read_text()
        assert variable.name in source, f"{variable.source} does not mention {variable.name}"
        for reader in variable.readers:
            assert variable.name in variables_read_by(reader)


def test_commands_map_to_components() -> None:
    def name(command: list[str]) -> str | None:
        found = component_of(command)
        return found.name if found else None

    assert name(["exporter", "--path.procfs=/host/proc"]) == "exporter"
    assert name(["perfanalysis", "ingest"]) == "ingest"
    assert name(["admin", "init-db"]) == "admin"
    assert name(["grafana", "sync"]) == "grafana"
    assert name(["grafana", "generate"]) is None
    assert name(["loadtest", "upload", "result.json"]) == "loadtest-upload"
    assert "PERFANALYSIS_ADMIN_SECRET_KEY" in variables_read_by("grafana")
    assert "PERFANALYSIS_ADMIN_SECRET_KEY" not in variables_read_by("ingest")


def test_check_mode_exits_zero_on_a_fresh_file() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.configref", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
