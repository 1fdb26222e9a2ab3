"""``perfanalysis admin export-targets`` against a real Prometheus (the Debian package's): with
file_sd on the generated directory, Prometheus lists every enabled collector as a target labelled
with its tenant and collector, and drops a collector's target once it is disabled and the
directory exported again (it reads the files again by itself)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from perfanalysis.testing.servers import ServerRegistry, wait_until
from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.collectors import register_collector, set_collector_status
from tenants.models import Collector

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_password_hashing")]


def test_prometheus_discovers_the_exported_collectors(
    app: Flask, runner: Callable[..., Result], make_tenant: Any, tmp_path: Path,
    servers: ServerRegistry,
) -> None:  # fmt: skip
    registered = {"acme": ["web-1", "web-2", "db 1"], "globex": ["app-1"]}
    with app.app_context():
        db = database.session()
        for slug, names in registered.items():
            make_tenant(slug)
            tenant = tenant_for(db, system_actor(), slug)
            for name in names:
                hostname = f"{name.replace(' ', '-')}.{slug}.test"
                register_collector(db, system_actor(), tenant,
                                   {"name": name, "hostname": hostname})  # fmt: skip
    targets = tmp_path / "targets"
    targets.mkdir()
    result = runner("export-targets", str(targets), "--port", "9100")
    assert result.exit_code == 0, result.output
    prometheus = servers.prometheus({
        "global": {"scrape_interval": "1h"},  # nothing listens there: discovery is the point
        "scrape_configs": [{"job_name": "node",
                            "file_sd_configs": [{"files": [f"{targets}/*.yml"],
                                                 "refresh_interval": "1s"}]}],
    })  # fmt: skip

    def discovered(count: int) -> Callable[[], set[tuple[str, str, str]] | None]:
        def labelled() -> set[tuple[str, str, str]] | None:
            found = {(t["labels"]["instance"], t["labels"].get("tenant", ""),
                      t["labels"].get("collector", "")) for t in prometheus.targets()}  # fmt: skip
            return found if len(found) == count else None

        return labelled

    found = wait_until(discovered(4), timeout=60, interval=0.2, what="the exported targets")
    assert found == {
        ("web-1.acme.test:9100", "acme", "web-1"),
        ("web-2.acme.test:9100", "acme", "web-2"),
        ("db-1.acme.test:9100", "acme", "db 1"),
        ("app-1.globex.test:9100", "globex", "app-1"),
    }

    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "acme")
        web_2 = db.scalar(select(Collector).where(Collector.name == "web-2"))
        set_collector_status(db, system_actor(), tenant, web_2, active=False)
    assert runner("export-targets", str(targets)).exit_code == 0
    found = wait_until(discovered(3), timeout=60, interval=0.2, what="web-2 dropped")
    assert ("web-2.acme.test:9100", "acme", "web-2") not in found
