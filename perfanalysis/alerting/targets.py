"""Which tenants the Prometheus beside the rules scrapes, to catch a tenant slug with no hosts.

The rules select a tenant's hosts by the ``tenant`` label of their targets. A slug in
thresholds.yaml that no target carries judges nobody, and when it is a misspelling (``acmee:``
for ``acme:``) the real tenant silently keeps the defaults. The Prometheus configuration that loads
the rules (``rules/`` beside ``prometheus.yml``, as in provisioning/prometheus) lists targets in
``targets/<slug>.yml`` files (file_sd) and in ``prometheus.yml``'s static_configs; a slug neither
names is warned about. Other installs (Kubernetes, a Prometheus of one's own) keep no such files
beside the rules: with neither there, nothing is checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from perfanalysis.alerting.thresholds import Thresholds

PROMETHEUS_YML = "prometheus.yml"
TARGETS_DIR = "targets"


def _yaml(path: Path) -> Any:
    """The file's YAML, or None if it cannot be read: Prometheus reports a broken file itself."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _tenant_labels(groups: Any) -> Iterable[str]:
    """The ``tenant`` labels of a list of target groups (a file_sd file, a static_configs)."""
    for group in groups if isinstance(groups, list) else []:
        labels = group.get("labels") if isinstance(group, dict) else None
        if isinstance(labels, dict) and isinstance(labels.get("tenant"), str):
            yield labels["tenant"]


def scraped_tenants(prometheus_dir: Path) -> set[str] | None:
    """Tenants with a targets file, or a target labelled with them; None when the directory holds
    neither a prometheus.yml nor a targets directory (nothing to check against)."""
    config, targets = prometheus_dir / PROMETHEUS_YML, prometheus_dir / TARGETS_DIR
    if not config.is_file() and not targets.is_dir():
        return None
    found: set[str] = set()
    document = _yaml(config) if config.is_file() else None
    jobs = document.get("scrape_configs") if isinstance(document, dict) else None
    for job in jobs if isinstance(jobs, list) else []:
        static = job.get("static_configs") if isinstance(job, dict) else None
        found.update(_tenant_labels(static))
    if targets.is_dir():
        for path in sorted(targets.glob("*.yml")) + sorted(targets.glob("*.yaml")):
            found.add(path.stem)
            found.update(_tenant_labels(_yaml(path)))
    return found


def unscraped_warnings(thresholds: Thresholds, prometheus_dir: Path) -> list[str]:
    """``FILE: tenants.<slug>: warning: ...`` for each listed tenant no target carries."""
    scraped = scraped_tenants(prometheus_dir)
    if scraped is None:
        return []
    targets = prometheus_dir / TARGETS_DIR
    return [
        f"{thresholds.source}: tenants.{slug}: warning: no Prometheus target carries "
        f'tenant="{slug}" (there is no {targets / f"{slug}.yml"}, and no target in '
        f"{prometheus_dir / PROMETHEUS_YML} is labelled so), so these thresholds judge no host; "
        "if the slug is misspelt, the tenant's hosts get the defaults. List its hosts in that "
        "file, or ignore this if another Prometheus scrapes them"
        for slug in sorted(thresholds.tenants)
        if slug not in scraped
    ]
