"""docs/operations.md: the Watchdog's one step under Compose, as deploy/compose/alertmanager.yml
has it, and host commands that run on Debian 12 (python3: it has no `python` command)."""

from __future__ import annotations

import re

import yaml

from perfanalysis.paths import ROOT

OPERATIONS = ROOT / "docs" / "operations.md"
COMPOSE_ALERTMANAGER = ROOT / "deploy" / "compose" / "alertmanager.yml"


def watchdog_paragraph() -> str:
    text = " ".join(OPERATIONS.read_text().split())
    start = text.index("the Watchdog alert (`platform.rules.yml`) fires always")
    return text[start : text.index("Grafana's main org:", start)]


def test_compose_alertmanager_routes_the_watchdog_to_a_receiver_that_drops_it() -> None:
    config = yaml.safe_load(COMPOSE_ALERTMANAGER.read_text())
    [route] = [r for r in config["route"]["routes"] if 'alertname="Watchdog"' in r["matchers"]]
    assert route["receiver"] == "watchdog"
    assert route["repeat_interval"] == "1m"
    [receiver] = [r for r in config["receivers"] if r["name"] == "watchdog"]
    assert receiver == {"name": "watchdog"}  # no webhook_configs: the alert goes nowhere


def test_the_watchdog_step_is_to_uncomment_webhook_configs_under_watchdog() -> None:
    paragraph = watchdog_paragraph()
    assert "`deploy/compose/alertmanager.yml` already routes it" in paragraph
    assert "`repeat_interval: 1m`" in paragraph
    assert "uncomment `webhook_configs` under `watchdog`" in paragraph
    assert "`send_resolved: false`" in paragraph
    assert "every 4 hours" not in paragraph  # it never reaches the default receiver
    assert "copied from" not in paragraph  # nothing to copy: the route is there

    # the step as the paragraph says, on the file: the heartbeat's URL, never "resolved"
    lines = COMPOSE_ALERTMANAGER.read_text().splitlines()
    at = lines.index("- name: watchdog")
    commented = [line for line in lines[at + 1 :] if line.startswith("  # ")]
    assert commented, "no commented-out webhook_configs under watchdog"
    uncommented = [re.sub(r"^  # ", "  ", line).split("   #")[0] for line in commented]
    heartbeat = "https://hc-ping.example/uuid"
    uncommented = [re.sub(r"url: \S+", f"url: {heartbeat}", line) for line in uncommented]
    config = yaml.safe_load("\n".join([*lines[: at + 1], *uncommented]))
    [receiver] = [r for r in config["receivers"] if r["name"] == "watchdog"]
    assert receiver["webhook_configs"] == [{"url": heartbeat, "send_resolved": False}]


def test_no_document_runs_a_bare_python_on_the_host() -> None:
    """Debian 12 has python3 and no `python`; in the checkout the project's is .venv/bin/python."""
    documents = [ROOT / "README.md", ROOT / ".env.example", *(ROOT / "docs").glob("*.md")]
    bare = [
        f"{path.relative_to(ROOT)}: {match}"
        for path in documents
        for match in re.findall(r"(?<![\w./-])python -c [^`\n]*", path.read_text())
    ]
    assert bare == []
    assert '`python3 -c "import secrets; print(secrets.token_urlsafe(48))"`' in (
        OPERATIONS.read_text()
    )
